#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod edit;
mod error;
mod file;
mod filter;
mod param;
pub mod registry;
mod value;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use toml_edit::{DocumentMut, Item, Table};

pub use crate::error::Error;
pub use crate::file::update_file;
pub use crate::filter::{FilterValue, SERVICE_PARAMETER_NAMES, ServiceFilters, parameter_service};
pub use crate::param::{Param, ParamType};
pub use crate::registry::{Kind, PARAMETERS, Parameter, params};
pub use crate::value::Value;

/// A parsed configuration file.
///
/// Keeps the document itself (comments, order, formatting) next to the typed
/// values, so [`Config::set`] changes one value and nothing else.
#[derive(Clone)]
pub struct Config {
    doc: DocumentMut,
    values: BTreeMap<&'static str, Value>,
    /// Where each set parameter is in the document: its keys as the file
    /// spells them (`["service", "imap", "domainallowed"]`, or one quoted
    /// `["service.imap.domainallowed"]`).
    keys: BTreeMap<&'static str, Vec<String>>,
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
            keys: BTreeMap::new(),
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
        let mut found = Found::default();
        let mut path = Vec::new();
        collect(doc.as_table(), &mut path, &mut found)?;
        Ok(Self {
            doc,
            values: found.values,
            keys: found.keys,
        })
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

    /// A parameter as text (lists joined as written, the entries of a
    /// filter array one per line); empty when unset without a default.
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
        if known(name)?.kind == Kind::Filter {
            return Err(Error::WrongType {
                name: name.to_owned(),
                expected: "list",
            });
        }
        match self.value(name)? {
            Some(Value::List(l)) => Ok(l),
            None => Ok(Vec::new()),
            Some(_) => Err(Error::WrongType {
                name: name.to_owned(),
                expected: "list",
            }),
        }
    }

    /// An access filter parameter, as its entries (a string is one, an
    /// array one per item); see [`FilterValue`].
    ///
    /// # Errors
    /// [`Error::UnknownParameter`], or [`Error::WrongType`] when the
    /// parameter is not an access filter.
    pub fn filters(&self, name: &str) -> Result<FilterValue, Error> {
        if known(name)?.kind != Kind::Filter {
            return Err(Error::WrongType {
                name: name.to_owned(),
                expected: "access filter",
            });
        }
        Ok(FilterValue::from_value(self.value(name)?.as_ref()))
    }

    /// Every parameter the file sets, by canonical name.
    pub fn iter_set(&self) -> impl Iterator<Item = (&'static str, &Value)> {
        self.values.iter().map(|(k, v)| (*k, v))
    }

    /// Sets a parameter from its textual form (as `configutil -v` takes it),
    /// keeping every other line of the document as it was. An empty value
    /// removes the parameter, so its default applies again.
    ///
    /// A parameter the file already sets is changed where it is, however
    /// it is spelled (a dotted key, a key in a `[table]`, a quoted
    /// `"service.imap.domainallowed"` key, a key in an inline table). A new
    /// one is added where it fits: into the inline table or `[table]` that
    /// holds its siblings, else as a new line or section at the end.
    ///
    /// The edited document is read back before it is accepted: it must
    /// parse, name every parameter once, and hold exactly the old values
    /// with this one change.
    ///
    /// # Errors
    /// [`Error::UnknownParameter`] or [`Error::InvalidValue`], or
    /// [`Error::EditRefused`] when the edited document would not read back
    /// as intended; on error nothing changes.
    pub fn set(&mut self, name: &str, raw: &str) -> Result<(), Error> {
        let param = known(name)?;
        if raw.is_empty() {
            return self.unset(param.name);
        }
        let value = Value::parse(param, raw)?;
        let toml = value.to_toml(param.kind);
        let mut expected = self.values.clone();
        expected.insert(param.name, value);
        let next = self.edited(&expected, false, |doc| match self.keys.get(param.name) {
            Some(path) => edit::replace(doc, path, toml),
            None => edit::insert(doc, param.name, toml),
        })?;
        *self = next;
        Ok(())
    }

    /// Removes a parameter from the document (its default applies again),
    /// with the tables that held only it. Removing a parameter that is not
    /// set does nothing. The comments at the top of the file stay, even
    /// when the parameter was its first line (see the crate docs).
    ///
    /// # Errors
    /// [`Error::EditRefused`] when the edited document would not read back
    /// as intended; then nothing changes.
    pub fn unset(&mut self, name: &str) -> Result<(), Error> {
        let Some(param) = registry::lookup(name) else {
            return Ok(());
        };
        let Some(path) = self.keys.get(param.name) else {
            return Ok(());
        };
        let mut expected = self.values.clone();
        expected.remove(param.name);
        let next = self.edited(&expected, true, |doc| {
            edit::remove(doc, path);
            Ok(())
        })?;
        *self = next;
        Ok(())
    }

    /// Applies `change` to a copy of the document and reads the result
    /// back; it must hold exactly `expected`. A removal keeps the file's
    /// header comment.
    fn edited(
        &self,
        expected: &BTreeMap<&'static str, Value>,
        removal: bool,
        change: impl FnOnce(&mut DocumentMut) -> Result<(), Error>,
    ) -> Result<Self, Error> {
        let mut doc = self.doc.clone();
        change(&mut doc)?;
        let mut text = doc.to_string();
        if removal {
            text = edit::keep_header(&self.doc.to_string(), text);
        }
        let next = Self::parse(&text).map_err(|e| Error::EditRefused {
            reason: e.to_string(),
        })?;
        next.check_holds(expected)?;
        Ok(next)
    }

    /// Whether this configuration holds exactly `expected` (no value is
    /// named, as one may be a secret).
    fn check_holds(&self, expected: &BTreeMap<&'static str, Value>) -> Result<(), Error> {
        let names = self.values.keys().chain(expected.keys());
        for name in names {
            if self.values.get(name) != expected.get(name) {
                return Err(Error::EditRefused {
                    reason: format!("`{name}` would not read back as intended"),
                });
            }
        }
        Ok(())
    }

    /// Checks that `text` (this configuration, written out) reads back as
    /// exactly this configuration.
    pub(crate) fn check_reads_back(&self, text: &str) -> Result<(), Error> {
        let again = Self::parse(text).map_err(|e| Error::EditRefused {
            reason: e.to_string(),
        })?;
        again.check_holds(&self.values)
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

/// What [`collect`] finds: the values and where each is.
#[derive(Default)]
struct Found {
    values: BTreeMap<&'static str, Value>,
    keys: BTreeMap<&'static str, Vec<String>>,
}

fn collect(table: &Table, path: &mut Vec<String>, out: &mut Found) -> Result<(), Error> {
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
                if out.values.insert(param.name, value).is_some() {
                    return Err(Error::Duplicate { name });
                }
                out.keys.insert(param.name, path.clone());
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

#[cfg(test)]
mod tests;
