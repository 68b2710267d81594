//! md5-crypt (`$1$salt$hash`), the FreeBSD/glibc MD5-based crypt(3).
//! Verification only: new values are never written in this scheme.

use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

const ITOA64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn to64(out: &mut String, mut v: u32, n: usize) {
    for _ in 0..n {
        out.push(char::from(ITOA64[(v & 0x3f) as usize]));
        v >>= 6;
    }
}

/// The 22-character hash part for `password` and `salt` (≤ 8 bytes).
pub(crate) fn hash(password: &[u8], salt: &[u8]) -> String {
    let mut ctx = Md5::new();
    ctx.update(password);
    ctx.update(b"$1$");
    ctx.update(salt);
    let mut alt = Md5::new();
    alt.update(password);
    alt.update(salt);
    alt.update(password);
    let alt = alt.finalize();
    let mut left = password.len();
    while left > 0 {
        let n = left.min(16);
        ctx.update(&alt[..n]);
        left -= n;
    }
    let mut i = password.len();
    while i > 0 {
        if i & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(&password[..1]);
        }
        i >>= 1;
    }
    let mut fin = ctx.finalize();
    for r in 0..1000 {
        let mut c = Md5::new();
        if r & 1 == 1 {
            c.update(password);
        } else {
            c.update(fin);
        }
        if r % 3 != 0 {
            c.update(salt);
        }
        if r % 7 != 0 {
            c.update(password);
        }
        if r & 1 == 1 {
            c.update(fin);
        } else {
            c.update(password);
        }
        fin = c.finalize();
    }
    let f = |i: usize| u32::from(fin[i]);
    let mut out = String::with_capacity(22);
    for (a, b, c) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        to64(&mut out, (f(a) << 16) | (f(b) << 8) | f(c), 4);
    }
    to64(&mut out, f(11), 2);
    out
}

/// Checks `password` against `$1$salt$hash`; `None` if malformed.
pub(crate) fn verify(password: &[u8], stored: &str) -> Option<bool> {
    let rest = stored.strip_prefix("$1$")?;
    let (salt, h) = rest.split_once('$')?;
    if salt.len() > 8 || h.len() != 22 {
        return None;
    }
    let computed = hash(password, salt.as_bytes());
    Some(bool::from(computed.as_bytes().ct_eq(h.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        // `openssl passwd -1 -salt saltstri password`
        assert_eq!(
            verify(b"password", "$1$saltstri$qQY4WxjABChYG1ccLpfkz/"),
            Some(true)
        );
        assert_eq!(
            verify(b"passwore", "$1$saltstri$qQY4WxjABChYG1ccLpfkz/"),
            Some(false)
        );
        assert_eq!(verify(b"x", "$1$toolongsalt$qQY4WxjABChYG1ccLpfkz/"), None);
    }
}
