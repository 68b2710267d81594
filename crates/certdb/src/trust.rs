//! NSS trust flags: `SSL,email,objsign`, each a set of the letters
//! `p P c C T u w`.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

/// One NSS trust letter.
const LETTERS: [(char, u8); 7] = [
    ('p', 1 << 0),
    ('P', 1 << 1),
    ('c', 1 << 2),
    ('C', 1 << 3),
    ('T', 1 << 4),
    ('u', 1 << 5),
    ('w', 1 << 6),
];

/// The trust letters of one category.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TrustSet(u8);

impl TrustSet {
    /// `p`: valid peer.
    pub const VALID_PEER: TrustSet = TrustSet(1);
    /// `P`: trusted peer.
    pub const TRUSTED_PEER: TrustSet = TrustSet(2);
    /// `c`: valid CA.
    pub const VALID_CA: TrustSet = TrustSet(4);
    /// `C`: trusted CA (issues server certificates; for email/objsign, the
    /// category's CA trust).
    pub const TRUSTED_CA: TrustSet = TrustSet(8);
    /// `T`: trusted CA for client authentication.
    pub const TRUSTED_CLIENT_CA: TrustSet = TrustSet(16);
    /// `u`: the private key is in the database or on a token.
    pub const USER: TrustSet = TrustSet(32);
    /// `w`: send a warning.
    pub const WARN: TrustSet = TrustSet(64);

    /// No letters.
    pub const fn empty() -> Self {
        TrustSet(0)
    }
    /// Whether every letter of `other` is set.
    pub const fn contains(self, other: TrustSet) -> bool {
        self.0 & other.0 == other.0
    }
    /// Adds letters.
    pub fn insert(&mut self, other: TrustSet) {
        self.0 |= other.0;
    }
    /// Removes letters.
    pub fn remove(&mut self, other: TrustSet) {
        self.0 &= !other.0;
    }
    /// Whether no letter is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn parse(s: &str, whole: &str) -> Result<Self, Error> {
        let mut set = 0u8;
        for ch in s.chars() {
            let bit = LETTERS
                .iter()
                .find(|(c, _)| *c == ch)
                .map(|(_, b)| *b)
                .ok_or_else(|| {
                    Error::BadTrust(whole.to_owned(), "letters are p, P, c, C, T, u, w")
                })?;
            set |= bit;
        }
        Ok(TrustSet(set))
    }
}

impl fmt::Display for TrustSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (c, b) in LETTERS {
            if self.0 & b != 0 {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// Trust flags of a certificate, written `SSL,email,objsign` as NSS's
/// `certutil -t` does (for example `CT,,` or `u,u,u`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TrustFlags {
    /// TLS (SSL) trust.
    pub ssl: TrustSet,
    /// S/MIME trust.
    pub email: TrustSet,
    /// Object-signing trust.
    pub objsign: TrustSet,
}

impl TrustFlags {
    /// `CT,,`: a trusted CA for TLS, both for server and client certificates
    /// (what `msgcert add-cert -C` sets).
    pub const fn trusted_ca() -> Self {
        TrustFlags {
            ssl: TrustSet(8 | 16),
            email: TrustSet(0),
            objsign: TrustSet(0),
        }
    }

    /// Adds or removes `u` in all three categories.
    pub fn set_user(&mut self, has_key: bool) {
        for s in [&mut self.ssl, &mut self.email, &mut self.objsign] {
            if has_key {
                s.insert(TrustSet::USER);
            } else {
                s.remove(TrustSet::USER);
            }
        }
    }

    /// Whether the TLS category has `C` (trusted to issue server certificates).
    pub const fn is_trusted_server_ca(&self) -> bool {
        self.ssl.contains(TrustSet::TRUSTED_CA)
    }

    /// Whether the TLS category has `T` (trusted to issue client certificates).
    pub const fn is_trusted_client_ca(&self) -> bool {
        self.ssl.contains(TrustSet::TRUSTED_CLIENT_CA)
    }
}

impl FromStr for TrustFlags {
    type Err = Error;

    /// Parses `SSL,email,objsign`. Missing trailing categories are empty
    /// (`C` means `C,,`), as `certutil` accepts.
    fn from_str(s: &str) -> Result<Self, Error> {
        let parts: Vec<&str> = s.split(',').collect();
        if parts.len() > 3 {
            return Err(Error::BadTrust(
                s.to_owned(),
                "at most three comma-separated fields",
            ));
        }
        let get = |i: usize| -> Result<TrustSet, Error> {
            parts
                .get(i)
                .map_or(Ok(TrustSet::empty()), |p| TrustSet::parse(p, s))
        };
        Ok(TrustFlags {
            ssl: get(0)?,
            email: get(1)?,
            objsign: get(2)?,
        })
    }
}

impl fmt::Display for TrustFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{},{}", self.ssl, self.email, self.objsign)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        for (input, out) in [
            ("CT,,", "CT,,"),
            ("TC,C,C", "CT,C,C"),
            ("u,u,u", "u,u,u"),
            (",,", ",,"),
            ("C", "C,,"),
            ("pPcCTuw,w,", "pPcCTuw,w,"),
        ] {
            let t: TrustFlags = input.parse().unwrap();
            assert_eq!(t.to_string(), out, "{input}");
        }
        for bad in ["x,,", "C,,,", "CT;,", "c t,,"] {
            assert!(bad.parse::<TrustFlags>().is_err(), "{bad}");
        }
    }

    #[test]
    fn user_and_ca_bits() {
        let mut t: TrustFlags = "CT,,".parse().unwrap();
        assert!(t.is_trusted_server_ca() && t.is_trusted_client_ca());
        t.set_user(true);
        assert_eq!(t.to_string(), "CTu,u,u");
        t.set_user(false);
        assert_eq!(t, TrustFlags::trusted_ca());
        let c: TrustFlags = "C,,".parse().unwrap();
        assert!(c.is_trusted_server_ca() && !c.is_trusted_client_ca());
    }
}
