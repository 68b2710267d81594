#![no_main]
//! Certificate import (`msgcert add-cert`): PEM or DER bytes, then the
//! `show-cert` description of whatever parsed. Must never panic.
use libfuzzer_sys::fuzz_target;
use portcullis_certdb::{TrustFlags, decode_certificates, describe};

fuzz_target!(|data: &[u8]| {
    if let Ok(ders) = decode_certificates(data) {
        for der in ders {
            let text = describe("fuzz", &der, TrustFlags::default())
                .expect("decoded certificates describe");
            assert!(text.contains("Fingerprint (SHA-256):"));
        }
    }
    // Trust flags come from the command line too.
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(t) = s.parse::<TrustFlags>() {
            assert_eq!(t.to_string().parse::<TrustFlags>().ok(), Some(t));
        }
    }
});
