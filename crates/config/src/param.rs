//! Typed keys: a parameter together with the Rust type its value reads as.

use std::fmt;
use std::marker::PhantomData;

use crate::registry::{Kind, Parameter};
use crate::{Config, Error, FilterValue};

/// A typed key for one parameter of the registry; see [`crate::params`].
///
/// `config.get(key)` returns a `T`; the registry's tests check that every
/// key's `T` fits its parameter's kind, so a key can only be used as what
/// it is.
pub struct Param<T> {
    param: Parameter,
    value: PhantomData<fn() -> T>,
}

impl<T> Param<T> {
    pub(crate) const fn new(param: Parameter) -> Self {
        Self {
            param,
            value: PhantomData,
        }
    }

    /// The parameter's canonical name.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        self.param.name
    }

    /// The parameter: name, kind, default, description.
    #[must_use]
    pub const fn parameter(&self) -> &Parameter {
        &self.param
    }

    pub(crate) const fn parameter_const(&self) -> Parameter {
        self.param
    }
}

impl<T> Clone for Param<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Param<T> {}

impl<T> fmt::Debug for Param<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Param").field(&self.param.name).finish()
    }
}

mod sealed {
    pub trait Sealed {}
}

/// A Rust type a parameter's value reads as (sealed: the registry decides
/// which types exist).
pub trait ParamType: Sized + sealed::Sealed {
    /// Reads the parameter `name` from `config`.
    #[doc(hidden)]
    fn read(config: &Config, name: &'static str) -> Result<Self, Error>;
    /// Whether this type can hold a parameter of `kind`.
    #[doc(hidden)]
    fn fits(kind: &Kind) -> bool;
}

macro_rules! param_type {
    ($ty:ty, |$config:ident, $name:ident| $read:expr, $kind:pat) => {
        impl sealed::Sealed for $ty {}
        impl ParamType for $ty {
            fn read($config: &Config, $name: &'static str) -> Result<Self, Error> {
                $read
            }
            fn fits(kind: &Kind) -> bool {
                matches!(kind, $kind)
            }
        }
    };
}

// Flags written as 0/1 read as booleans too.
param_type!(
    bool,
    |c, n| c.boolean(n),
    Kind::Bool | Kind::Integer { min: 0, max: 1 }
);
param_type!(Option<i64>, |c, n| c.integer(n), Kind::Integer { .. });
param_type!(
    i64,
    |c, n| c.integer(n)?.ok_or_else(|| Error::WrongType {
        name: n.to_owned(),
        expected: "integer with a default",
    }),
    Kind::Integer { .. }
);
param_type!(String, |c, n| c.string(n), Kind::String | Kind::Secret);
param_type!(Vec<String>, |c, n| c.list(n), Kind::List | Kind::CommaList);
param_type!(FilterValue, |c, n| c.filters(n), Kind::Filter);

impl Config {
    /// A parameter's value through its typed key (the value the file sets,
    /// else the default).
    ///
    /// ```
    /// use portcullis_config::{Config, params};
    ///
    /// let config = Config::parse("mmp.preauth = \"yes\"\nlocal.ugldapport = 636\n")?;
    /// assert!(config.get(params::MMP_PREAUTH)?);
    /// assert_eq!(config.get(params::LOCAL_UGLDAPPORT)?, 636);
    /// assert_eq!(config.get(params::SERVICE_IMAP_PLAINTEXTMINCIPHER)?, None);
    /// assert!(config.get(params::SERVICE_IMAP_DOMAINALLOWED)?.entries().is_empty());
    /// # Ok::<(), portcullis_config::Error>(())
    /// ```
    ///
    /// # Errors
    /// None for the keys of [`crate::params`] on a configuration that
    /// parsed (the registry's tests read every key); the [`Error`] is that
    /// of the untyped accessor it stands for.
    pub fn get<T: ParamType>(&self, key: Param<T>) -> Result<T, Error> {
        T::read(self, key.name())
    }
}
