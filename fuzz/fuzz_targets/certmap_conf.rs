#![no_main]
//! certmap.conf parser: never panics; whatever parses selects a map for any
//! issuer and the selection is stable.
use libfuzzer_sys::fuzz_target;
use portcullis_certmap::{CertMapConfig, Dn};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(conf) = CertMapConfig::parse(text) {
        assert_eq!(conf.maps()[0].name, "default");
        for m in conf.maps() {
            if let Some(issuer) = &m.issuer {
                assert_eq!(conf.select(issuer).name, m.name);
                let again = Dn::parse(&issuer.to_string()).expect("display re-parses");
                assert_eq!(&again, issuer);
            }
        }
    }
    // The DN parser on its own.
    if let Ok(dn) = Dn::parse(text) {
        let again = Dn::parse(&dn.to_string()).expect("display re-parses");
        assert_eq!(again, dn);
    }
});
