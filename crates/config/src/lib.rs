#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
mod file;
mod filter;
pub mod registry;
mod value;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use toml_edit::{DocumentMut, Item, Table};

pub use crate::error::Error;
pub use crate::file::update_file;
pub use crate::filter::{SERVICE_PARAMETER_NAMES, ServiceFilters, parameter_service};
pub use crate::registry::{Kind, PARAMETERS, Parameter};
pub use crate::value::Value;

/// A parsed configuration file.
///
/// Keeps the document itself (comments, order, formatting) next to the typed
/// values, so [`Config::set`] changes one value and nothing else.
#[derive(Clone)]
pub struct Config {
    doc: DocumentMut,
    values: BTreeMap<&'static str, Value>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (name, value) in &self.values {
            match registry::lookup(name).map(|p| p.kind) {
                Some(Kind::Secret) => m.entry(name, &"<redacted>"),
                _ => m.entry(name, value),
            };
        }
        m.finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            doc: DocumentMut::new(),
            values: BTreeMap::new(),
        }
    }
}

impl Config {
    /// Parses configuration text (TOML whose keys are parameter names; both
    /// `a.b.c = v` and `[a.b]` tables work).
    ///
    /// # Errors
    /// [`Error::Syntax`] for text that is not TOML, [`Error::UnknownParameter`]
    /// for a name the registry does not know, [`Error::InvalidValue`] for a
    /// value of the wrong type, [`Error::Duplicate`] when one parameter is
    /// given twice under different spellings.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
            let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((0, 0));
            Error::Syntax {
                line,
                column,
                message: e.message().to_owned(),
            }
        })?;
        let mut values = BTreeMap::new();
        let mut path = Vec::new();
        collect(doc.as_table(), &mut path, &mut values)?;
        Ok(Self { doc, values })
    }

    /// Reads and parses a configuration file. A missing file is an error.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read, else as [`Config::parse`].
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text)
    }

    /// The value of a parameter: the one set in the file, else its default;
    /// `None` when it is unset and has no default.
    ///
    /// # Errors
    /// [`Error::UnknownParameter`] for a name the registry does not know.
    pub fn value(&self, name: &str) -> Result<Option<Value>, Error> {
        let param = known(name)?;
        if let Some(v) = self.values.get(param.name) {
            return Ok(Some(v.clone()));
        }
        param
            .default
            .map(|d| Value::parse(param, d))
            .transpose()
            .map_err(|e| e.in_default())
    }

    /// Whether the file sets the parameter (as opposed to using its default).
    #[must_use]
    pub fn is_set(&self, name: &str) -> bool {
        registry::lookup(name).is_some_and(|p| self.values.contains_key(p.name))
    }

    /// A parameter as text (lists joined as written); empty when unset
    /// without a default.
    ///
    /// # Errors
    /// [`Error::UnknownParameter`].
    pub fn string(&self, name: &str) -> Result<String, Error> {
        let kind = known(name)?.kind;
        Ok(self
            .value(name)?
            .map(|v| v.to_config_string_for(kind))
            .unwrap_or_default())
    }

    /// A boolean parameter (integers 0/1 count too).
    ///
    /// # Errors
    /// [`Error::UnknownParameter`], or [`Error::WrongType`] when the
    /// parameter is not boolean.
    pub fn boolean(&self, name: &str) -> Result<bool, Error> {
        match self.value(name)? {
            Some(Value::Bool(b)) => Ok(b),
            Some(Value::Integer(i)) => Ok(i != 0),
            None => Ok(false),
            Some(_) => Err(Error::WrongType {
                name: name.to_owned(),
                expected: "boolean",
            }),
        }
    }

    /// An integer parameter; `None` when unset without a default.
    ///
    /// # Errors
    /// [`Error::UnknownParameter`], or [`Error::WrongType`].
    pub fn integer(&self, name: &str) -> Result<Option<i64>, Error> {
        match self.value(name)? {
            Some(Value::Integer(i)) => Ok(Some(i)),
            None => Ok(None),
            Some(_) => Err(Error::WrongType {
                name: name.to_owned(),
                expected: "integer",
            }),
        }
    }

    /// A list parameter (blank- or comma-separated, as its kind says).
    ///
    /// # Errors
    /// [`Error::UnknownParameter`], or [`Error::WrongType`].
    pub fn list(&self, name: &str) -> Result<Vec<String>, Error> {
        match self.value(name)? {
            Some(Value::List(l)) => Ok(l),
            None => Ok(Vec::new()),
            Some(_) => Err(Error::WrongType {
                name: name.to_owned(),
                expected: "list",
            }),
        }
    }

    /// Every parameter the file sets, by canonical name.
    pub fn iter_set(&self) -> impl Iterator<Item = (&'static str, &Value)> {
        self.values.iter().map(|(k, v)| (*k, v))
    }

    /// Sets a parameter from its textual form (as `configutil -v` takes it),
    /// keeping every other line of the document as it was. An empty value
    /// removes the parameter, so its default applies again.
    ///
    /// # Errors
    /// [`Error::UnknownParameter`] or [`Error::InvalidValue`]; on error
    /// nothing changes.
    pub fn set(&mut self, name: &str, raw: &str) -> Result<(), Error> {
        let param = known(name)?;
        if raw.is_empty() {
            self.unset(param.name);
            return Ok(());
        }
        let value = Value::parse(param, raw)?;
        edit::set(&mut self.doc, param.name, value.to_toml(param.kind))?;
        self.values.insert(param.name, value);
        Ok(())
    }

    /// Removes a parameter from the document (its default applies again).
    /// Removing a parameter that is not set does nothing.
    pub fn unset(&mut self, name: &str) {
        if let Some(param) = registry::lookup(name) {
            edit::remove(&mut self.doc, param.name);
            self.values.remove(param.name);
        }
    }
}

impl fmt::Display for Config {
    /// The document, with its comments and layout.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.doc)
    }
}

fn known(name: &str) -> Result<&'static Parameter, Error> {
    registry::lookup(name).ok_or_else(|| Error::UnknownParameter {
        name: name.to_owned(),
        suggestion: registry::closest(name),
    })
}

fn collect(
    table: &Table,
    path: &mut Vec<String>,
    out: &mut BTreeMap<&'static str, Value>,
) -> Result<(), Error> {
    for (key, item) in table {
        path.push(key.to_owned());
        match item {
            Item::Table(t) => collect(t, path, out)?,
            Item::Value(toml_edit::Value::InlineTable(t)) => {
                collect(&t.clone().into_table(), path, out)?;
            }
            Item::Value(v) => {
                let name = path.join(".");
                let param = known(&name)?;
                let value = Value::from_toml(param, v)?;
                if out.insert(param.name, value).is_some() {
                    return Err(Error::Duplicate { name });
                }
            }
            Item::ArrayOfTables(_) => {
                return Err(Error::InvalidValue {
                    name: path.join("."),
                    reason: "arrays of tables are not parameters".to_owned(),
                });
            }
            Item::None => {}
        }
        path.pop();
    }
    Ok(())
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
    (line, column)
}

mod edit {
    //! Changing one value of a TOML document and nothing else.

    use toml_edit::{DocumentMut, Item, Table, Value};

    use crate::Error;

    fn find_key<'a>(table: &'a Table, segment: &str) -> Option<&'a str> {
        table
            .iter()
            .map(|(k, _)| k)
            .find(|k| k.eq_ignore_ascii_case(segment))
    }

    pub(crate) fn set(doc: &mut DocumentMut, name: &str, value: Value) -> Result<(), Error> {
        let segments: Vec<&str> = name.split('.').collect();
        let (last, parents) = segments.split_last().ok_or_else(|| Error::InvalidValue {
            name: name.to_owned(),
            reason: "empty name".to_owned(),
        })?;
        let next_position = max_position(doc.as_table()).map_or(0, |p| p + 1);
        let mut table = doc.as_table_mut();
        let mut is_root = true;
        for seg in parents {
            let key = find_key(table, seg).map_or_else(|| (*seg).to_owned(), str::to_owned);
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
            let item = table.get_mut(&key).ok_or_else(|| Error::InvalidValue {
                name: name.to_owned(),
                reason: "could not create the parameter's table".to_owned(),
            })?;
            if let Item::Value(Value::InlineTable(inline)) = item {
                let t = std::mem::take(inline).into_table();
                *item = Item::Table(t);
            }
            table = match item {
                Item::Table(t) => t,
                _ => {
                    return Err(Error::InvalidValue {
                        name: name.to_owned(),
                        reason: format!("`{seg}` holds a value, not a table"),
                    });
                }
            };
        }
        let key = find_key(table, last).map_or_else(|| (*last).to_owned(), str::to_owned);
        let mut value = value;
        match table.get_mut(&key) {
            // Replace the value in place: the key keeps its decoration
            // (comments above it), the value keeps its own (trailing comment).
            Some(item @ Item::Value(_)) => {
                if let Item::Value(old) = &*item {
                    *value.decor_mut() = old.decor().clone();
                }
                *item = Item::Value(value);
            }
            Some(_) => {
                return Err(Error::InvalidValue {
                    name: name.to_owned(),
                    reason: "the file holds a table under this name".to_owned(),
                });
            }
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

    pub(crate) fn remove(doc: &mut DocumentMut, name: &str) {
        let segments: Vec<&str> = name.split('.').collect();
        remove_in(doc.as_table_mut(), &segments);
    }

    /// Removes the path; returns whether `table` is now an empty implicit
    /// table that the caller may drop.
    fn remove_in(table: &mut Table, segments: &[&str]) -> bool {
        let Some((first, rest)) = segments.split_first() else {
            return false;
        };
        let Some(key) = find_key(table, first).map(str::to_owned) else {
            return false;
        };
        if rest.is_empty() {
            table.remove(&key);
        } else {
            let drop_child = match table.get_mut(&key) {
                Some(Item::Table(child)) => {
                    remove_in(child, rest) && (child.is_implicit() || child.is_dotted())
                }
                _ => false,
            };
            if drop_child {
                table.remove(&key);
            }
        }
        table.is_empty()
    }
}

#[cfg(test)]
mod tests;
