#![no_main]
//! certmap.conf parser: never panics; whatever parses selects a map for any
//! issuer and the selection is stable; issuer DNs are written back to
//! strings that parse to the same typed values.
use libfuzzer_sys::fuzz_target;
use portcullis_certmap::dn::MAX_DN_LEN;
use portcullis_certmap::{CertMapConfig, Dn};

/// `dn` written and read again gives the same values of the same types.
fn round_trips(dn: &Dn) {
    let written = dn.to_string();
    if written.len() > MAX_DN_LEN {
        return;
    }
    let again = Dn::parse(&written).expect("display re-parses");
    assert_eq!(again.rdns(), dn.rdns(), "{written}");
    assert_eq!(&again, dn);
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(conf) = CertMapConfig::parse(text) {
        assert_eq!(conf.maps()[0].name, "default");
        for m in conf.maps() {
            if let Some(issuer) = &m.issuer {
                assert_eq!(conf.select(issuer).name, m.name);
                round_trips(issuer);
            }
        }
    }
    // The DN parser on its own (certmap_dn checks it further).
    if let Ok(dn) = Dn::parse(text) {
        round_trips(&dn);
    }
});
