#![no_main]
//! RFC 4514 DN strings, as a directory hands them back (CmapLdapAttr
//! values) or certmap.conf names issuers: never panics; whatever parses is
//! written back to a string that parses to the same typed values, and
//! writing is stable.
use libfuzzer_sys::fuzz_target;
use portcullis_certmap::dn::MAX_DN_LEN;
use portcullis_certmap::{Dn, SubjectAttr};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(dn) = Dn::parse(text) else {
        return;
    };
    let written = dn.to_string();
    if written.len() > MAX_DN_LEN {
        // Escaping made it longer than a DN string may be.
        return;
    }
    let again = Dn::parse(&written).expect("display re-parses");
    assert_eq!(again.rdns(), dn.rdns(), "{written}");
    assert_eq!(again, dn);
    assert_eq!(again.to_string(), written);
    // A stored value equal to the subject matches it.
    let check = SubjectAttr {
        attr: "certSubjectDN".into(),
        subject: dn,
    };
    assert!(check.matches(text.as_bytes()));
    assert!(check.matches(written.as_bytes()));
});
