#![no_main]
//! PKCS#12 import (`msgcert import-cert`): arbitrary bytes under a fixed
//! password. Must never panic; whatever parses must hold a key matching its
//! certificate.
use libfuzzer_sys::fuzz_target;
use portcullis_certdb::{CertInfo, Password, parse_pkcs12};

fuzz_target!(|data: &[u8]| {
    if let Ok(entries) = parse_pkcs12(data, &Password::new("fuzz")) {
        for e in entries {
            let leaf = CertInfo::parse(&e.chain[0]).expect("parsed leaf");
            assert_eq!(leaf.spki, e.key.public_key_info());
        }
    }
});
