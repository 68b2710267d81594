//! Changing one value of a TOML document and nothing else.

use toml_edit::{DocumentMut, InlineTable, Item, Table, TableLike, Value};

use crate::Error;

fn find_key<'a>(mut keys: impl Iterator<Item = &'a str>, segment: &str) -> Option<&'a str> {
    keys.find(|k| k.eq_ignore_ascii_case(segment))
}

fn invalid(name: &str, reason: impl Into<String>) -> Error {
    Error::InvalidValue {
        name: name.to_owned(),
        reason: reason.into(),
    }
}

/// The item at `path`, the keys exactly as the document spells them,
/// through tables and inline tables alike.
fn item_mut<'a>(table: &'a mut Table, path: &[String]) -> Option<&'a mut Item> {
    let (last, parents) = path.split_last()?;
    let mut t: &mut dyn TableLike = table;
    for seg in parents {
        t = t.get_mut(seg)?.as_table_like_mut()?;
    }
    t.get_mut(last)
}

/// Gives `new` the decoration of `old` (the blanks around the value and a
/// trailing comment) and puts it in `old`'s place.
fn replace_value(old: &mut Value, mut new: Value) {
    *new.decor_mut() = old.decor().clone();
    *old = new;
}

/// Replaces the value at `path` (as the document spells it) in place: the
/// key keeps its decoration (comments above it), the value its own.
pub(crate) fn replace(doc: &mut DocumentMut, path: &[String], value: Value) -> Result<(), Error> {
    let name = path.join(".");
    match item_mut(doc.as_table_mut(), path) {
        Some(Item::Value(old)) => {
            replace_value(old, value);
            Ok(())
        }
        Some(_) => Err(invalid(&name, "the file holds a table under this name")),
        None => Err(invalid(
            &name,
            "the parameter is no longer where it was read",
        )),
    }
}

/// Adds a parameter the document does not set yet.
pub(crate) fn insert(doc: &mut DocumentMut, name: &str, value: Value) -> Result<(), Error> {
    let segments: Vec<&str> = name.split('.').collect();
    let (last, parents) = segments
        .split_last()
        .ok_or_else(|| invalid(name, "empty name"))?;
    let next_position = max_position(doc.as_table()).map_or(0, |p| p + 1);
    let mut table = doc.as_table_mut();
    let mut is_root = true;
    for (i, seg) in parents.iter().enumerate() {
        let key = find_key(table.iter().map(|(k, _)| k), seg)
            .map_or_else(|| (*seg).to_owned(), str::to_owned);
        if !table.contains_key(&key) {
            let mut t = Table::new();
            if header_context(table, is_root) {
                // A document with `[section]`s: a new section at the end,
                // so the new line lands neither above the file's leading
                // comments nor inside an unrelated section.
                t.set_implicit(false);
                t.set_position(Some(next_position));
            } else {
                t.set_implicit(true);
                t.set_dotted(true);
            }
            table.insert(&key, Item::Table(t));
        }
        is_root = false;
        let item = table
            .get_mut(&key)
            .ok_or_else(|| invalid(name, "could not create the parameter's table"))?;
        table = match item {
            Item::Table(t) => t,
            // An inline table cannot be extended elsewhere: the new key
            // goes inside it, and the table keeps its one-line layout.
            Item::Value(Value::InlineTable(inline)) => {
                return insert_inline(inline, &segments[i + 1..], value, name);
            }
            _ => return Err(invalid(name, format!("`{seg}` holds a value, not a table"))),
        };
    }
    let key = find_key(table.iter().map(|(k, _)| k), last)
        .map_or_else(|| (*last).to_owned(), str::to_owned);
    match table.get_mut(&key) {
        Some(Item::Value(old)) => replace_value(old, value),
        Some(_) => return Err(invalid(name, "the file holds a table under this name")),
        None => {
            if table.is_implicit() && !table.is_dotted() && !is_root {
                // A table that so far only parented `[a.b]` sections gets
                // its own header, placed at the end of the file.
                table.set_implicit(false);
                table.set_position(Some(next_position));
            }
            table.insert(&key, Item::Value(value));
        }
    }
    Ok(())
}

/// Adds `segments` (the rest of the name) inside an inline table, creating
/// inline tables for missing parents.
fn insert_inline(
    mut table: &mut InlineTable,
    segments: &[&str],
    value: Value,
    name: &str,
) -> Result<(), Error> {
    let (last, parents) = segments
        .split_last()
        .ok_or_else(|| invalid(name, "the file holds a table under this name"))?;
    for seg in parents {
        let key = find_key(table.iter().map(|(k, _)| k), seg)
            .map_or_else(|| (*seg).to_owned(), str::to_owned);
        if !table.contains_key(&key) {
            push_inline(table, &key, Value::InlineTable(InlineTable::new()));
        }
        table = match table.get_mut(&key) {
            Some(Value::InlineTable(t)) => t,
            _ => return Err(invalid(name, format!("`{seg}` holds a value, not a table"))),
        };
    }
    let key = find_key(table.iter().map(|(k, _)| k), last)
        .map_or_else(|| (*last).to_owned(), str::to_owned);
    match table.get_mut(&key) {
        Some(Value::InlineTable(_)) => {
            return Err(invalid(name, "the file holds a table under this name"));
        }
        Some(old) => replace_value(old, value),
        None => push_inline(table, &key, value),
    }
    Ok(())
}

/// Appends `key = value` to an inline table: the blanks that closed the
/// old last value (`{ a = 1 }`) now close the new one (`{ a = 1, b = 2 }`).
fn push_inline(table: &mut InlineTable, key: &str, mut value: Value) {
    if let Some((_, last)) = table.iter_mut().last() {
        let closing = last
            .decor()
            .suffix()
            .and_then(|s| s.as_str())
            .filter(|s| s.chars().all(|c| c == ' ' || c == '\t'))
            .map(str::to_owned);
        if let Some(closing) = closing {
            last.decor_mut().set_suffix("");
            value.decor_mut().set_prefix(" ");
            value.decor_mut().set_suffix(closing);
        }
    }
    table.insert(key, value);
}

/// Whether a new child of `table` should be a `[section]` of its own.
fn header_context(table: &Table, is_root: bool) -> bool {
    if is_root {
        has_header_tables(table)
    } else {
        table.is_implicit() && !table.is_dotted()
    }
}

fn max_position(table: &Table) -> Option<isize> {
    table
        .iter()
        .filter_map(|(_, item)| match item {
            Item::Table(t) => t.position().max(max_position(t)),
            _ => None,
        })
        .max()
}

fn has_header_tables(table: &Table) -> bool {
    table
        .iter()
        .any(|(_, item)| matches!(item, Item::Table(t) if !t.is_dotted()))
}

/// Removes the value at `path` (as the document spells it), and the tables
/// that existed only to hold it: dotted and implicit tables and inline
/// tables left empty. An explicit `[section]` stays, even when empty.
pub(crate) fn remove(doc: &mut DocumentMut, path: &[String]) {
    remove_in(doc.as_table_mut(), path);
}

fn remove_in(table: &mut dyn TableLike, path: &[String]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if rest.is_empty() {
        table.remove(first);
        return;
    }
    let drop_child = match table.get_mut(first) {
        Some(item) => {
            let only_holds = match &*item {
                Item::Table(t) => t.is_implicit() || t.is_dotted(),
                Item::Value(Value::InlineTable(_)) => true,
                _ => false,
            };
            match item.as_table_like_mut() {
                Some(child) => {
                    remove_in(child, rest);
                    only_holds && child.is_empty()
                }
                None => false,
            }
        }
        None => false,
    };
    if drop_child {
        table.remove(first);
    }
}

/// The comment lines (and blank lines among them) that open `text`,
/// before its first key or section.
fn leading_comments(text: &str) -> &str {
    let mut end = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        if !(t.is_empty() || t.starts_with('#')) {
            break;
        }
        end += line.len();
    }
    &text[..end]
}

/// Keeps the file's header comment when an edit removed the first line of
/// the document, whose decoration holds it.
///
/// The header is the comment block at the top of `before`; if that block
/// has a blank line in it, only the part above its last blank line is the
/// header (the comments right above the removed line were its own and go
/// with it). `after` is returned with the header put back in front.
pub(crate) fn keep_header(before: &str, after: String) -> String {
    let block = leading_comments(before);
    if after.starts_with(block) {
        return after;
    }
    let header = block
        .split_inclusive('\n')
        .scan(0, |end, line| {
            *end += line.len();
            Some((*end, line.trim().is_empty()))
        })
        .filter(|&(_, blank)| blank)
        .last()
        .map_or(block, |(end, _)| &block[..end]);
    if !header.contains('#') {
        return after;
    }
    let mut kept = header.to_owned();
    if !kept.ends_with('\n') {
        kept.push('\n');
    }
    kept.push_str(&after);
    kept
}
