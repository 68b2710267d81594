//! Typed parameter values.

use std::fmt;

use crate::Error;
use crate::registry::{Kind, Parameter};

/// The value of one parameter.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Value {
    /// A boolean.
    Bool(bool),
    /// An integer.
    Integer(i64),
    /// Text (strings, secrets and access filters; an access filter may
    /// hold several lines, one filter each).
    String(String),
    /// A list of words, or the entries of an access filter written as a
    /// TOML array of strings.
    List(Vec<String>),
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bool(b) => write!(f, "{b}"),
            Self::Integer(i) => write!(f, "{i}"),
            Self::String(s) => write!(f, "{s:?}"),
            Self::List(l) => write!(f, "{l:?}"),
        }
    }
}

impl Value {
    /// Parses the textual form of a value for `param` (what `configutil -v`
    /// takes).
    ///
    /// # Errors
    /// [`Error::InvalidValue`] naming the parameter and what was expected.
    pub fn parse(param: &Parameter, raw: &str) -> Result<Self, Error> {
        let invalid = |reason: String| Error::InvalidValue {
            name: param.name.to_owned(),
            reason,
        };
        // Filters may have several lines (one filter each); other values
        // are one line.
        let forbidden: &[char] = match param.kind {
            Kind::Filter => &['\0'],
            _ => &['\n', '\r', '\0'],
        };
        if raw.contains(forbidden) {
            return Err(invalid("values are one line of text".to_owned()));
        }
        match param.kind {
            Kind::Bool => match raw.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(Self::Bool(true)),
                "0" | "false" | "no" | "off" => Ok(Self::Bool(false)),
                _ => Err(invalid(format!(
                    "expected a boolean (true/false, yes/no, 1/0), got `{raw}`"
                ))),
            },
            Kind::Integer { min, max } => {
                let i: i64 = raw
                    .trim()
                    .parse()
                    .map_err(|_| invalid(format!("expected an integer, got `{raw}`")))?;
                check_range(param, i, min, max)
            }
            Kind::String | Kind::Secret => Ok(Self::String(raw.to_owned())),
            Kind::Filter => {
                crate::filter::validate(raw).map_err(invalid)?;
                Ok(Self::String(raw.to_owned()))
            }
            Kind::List => Ok(Self::List(
                raw.split_ascii_whitespace().map(str::to_owned).collect(),
            )),
            Kind::CommaList => Ok(Self::List(
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
            )),
        }
    }

    /// Reads a value as the configuration file holds it.
    pub(crate) fn from_toml(param: &Parameter, v: &toml_edit::Value) -> Result<Self, Error> {
        match (param.kind, v) {
            (Kind::Bool, toml_edit::Value::Boolean(b)) => Ok(Self::Bool(*b.value())),
            (Kind::Integer { min, max }, toml_edit::Value::Integer(i)) => {
                check_range(param, *i.value(), min, max)
            }
            (Kind::Bool, toml_edit::Value::Integer(i)) => {
                Self::parse(param, &i.value().to_string())
            }
            (Kind::Filter, toml_edit::Value::Array(a)) => a
                .iter()
                .enumerate()
                .map(|(i, item)| match item {
                    toml_edit::Value::String(s) => {
                        let entry = Self::parse(param, s.value()).map_err(|e| match e {
                            Error::InvalidValue { name, reason } => Error::InvalidValue {
                                name,
                                reason: format!("array item {}: {reason}", i + 1),
                            },
                            other => other,
                        })?;
                        Ok(entry.to_config_string())
                    }
                    _ => Err(Error::InvalidValue {
                        name: param.name.to_owned(),
                        reason: "filter array items must be strings".to_owned(),
                    }),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Self::List),
            (Kind::List | Kind::CommaList, toml_edit::Value::Array(a)) => a
                .iter()
                .map(|item| match item {
                    toml_edit::Value::String(s) => Ok(s.value().clone()),
                    _ => Err(Error::InvalidValue {
                        name: param.name.to_owned(),
                        reason: "list items must be strings".to_owned(),
                    }),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Self::List),
            (_, toml_edit::Value::String(s)) => Self::parse(param, s.value()),
            (kind, other) => Err(Error::InvalidValue {
                name: param.name.to_owned(),
                reason: format!(
                    "expected {}, got a TOML {}",
                    kind.describe(),
                    other.type_name()
                ),
            }),
        }
    }

    /// The value as the configuration file will hold it.
    pub(crate) fn to_toml(&self, kind: Kind) -> toml_edit::Value {
        match (self, kind) {
            (Self::Bool(b), _) => toml_edit::Value::from(*b),
            (Self::Integer(i), _) => toml_edit::Value::from(*i),
            (Self::List(entries), Kind::Filter) => entries
                .iter()
                .map(|e| multi_line(e))
                .collect::<toml_edit::Array>()
                .into(),
            (Self::String(s), Kind::Filter) => multi_line(s),
            (Self::String(_) | Self::List(_), _) => {
                toml_edit::Value::from(self.to_config_string_for(kind))
            }
        }
    }

    /// The value in `configutil` syntax for a parameter of `kind` (comma
    /// lists joined with commas, the entries of a filter array one per
    /// line).
    #[must_use]
    pub fn to_config_string_for(&self, kind: Kind) -> String {
        match (self, kind) {
            (Self::List(l), Kind::CommaList) => l.join(","),
            (Self::List(l), Kind::Filter) => l.join("\n"),
            _ => self.to_config_string(),
        }
    }

    /// The value in `configutil` syntax (lists joined with blanks).
    #[must_use]
    pub fn to_config_string(&self) -> String {
        match self {
            Self::Bool(b) => b.to_string(),
            Self::Integer(i) => i.to_string(),
            Self::String(s) => s.clone(),
            Self::List(l) => l.join(" "),
        }
    }
}

/// A TOML string for `s`: a multi-line literal string (`'''`, one
/// filter per line, as a person writes it) when `s` has several lines and
/// can be written so, else a basic string.
fn multi_line(s: &str) -> toml_edit::Value {
    let literal_ok = s.contains('\n')
        && !s.contains("'''")
        && !s.ends_with('\'')
        && s.chars().all(|c| c == '\n' || c == '\t' || !c.is_control());
    if literal_ok
        && let Ok(mut v) = format!("'''\n{s}'''").parse::<toml_edit::Value>()
        && v.as_str() == Some(s)
    {
        v.decor_mut().clear();
        return v;
    }
    toml_edit::Value::from(s)
}

fn check_range(param: &Parameter, i: i64, min: i64, max: i64) -> Result<Value, Error> {
    if (min..=max).contains(&i) {
        Ok(Value::Integer(i))
    } else {
        Err(Error::InvalidValue {
            name: param.name.to_owned(),
            reason: format!("{i} is out of range ({})", param.kind.describe()),
        })
    }
}
