#![no_main]
//! A value read back from Redis: never a panic, and whatever is accepted
//! is a user name `AuthCache::record` would have written, which encodes
//! back to the same value.
use libfuzzer_sys::fuzz_target;
use portcullis_popbeforesmtp::cache::redis::{decode_value, encode_value};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(entry) = decode_value(text) {
        assert!(!entry.user.is_empty());
        assert!(!entry.user.chars().any(char::is_control));
        assert_eq!(encode_value(entry.expires, &entry.user), text);
    }
});
