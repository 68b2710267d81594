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
    /// Text (strings, secrets and access filters).
    String(String),
    /// A list of words.
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
        if raw.contains(['\n', '\r', '\0']) {
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
        match self {
            Self::Bool(b) => toml_edit::Value::from(*b),
            Self::Integer(i) => toml_edit::Value::from(*i),
            Self::String(_) | Self::List(_) => {
                toml_edit::Value::from(self.to_config_string_for(kind))
            }
        }
    }

    /// The value in `configutil` syntax for a parameter of `kind` (comma
    /// lists joined with commas).
    #[must_use]
    pub fn to_config_string_for(&self, kind: Kind) -> String {
        match (self, kind) {
            (Self::List(l), Kind::CommaList) => l.join(","),
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
