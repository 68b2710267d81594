#![no_main]
//! Client certificates (DER) through the mapping: never panics; a subject
//! DN written as a search base parses back to the same typed values, and
//! every filter built from certificate values is one balanced RFC 4515
//! filter.
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use portcullis_certmap::dn::MAX_DN_LEN;
use portcullis_certmap::{CertMapConfig, ClientCert, Dn, SearchBase, default_plan};

/// `attr` applies to every certificate whose issuer is not `corp`'s.
static CONF: LazyLock<CertMapConfig> = LazyLock::new(|| {
    CertMapConfig::parse(
        "certmap default default\n\
         default:DNComps cn,ou,o,dc\n\
         default:FilterComps uid e cn\n\
         default:CmapLdapAttr certSubjectDN\n\
         certmap corp CN=Corp CA,O=Corp\n",
    )
    .expect("the fixed certmap.conf parses")
});

/// Parentheses outside escapes balance and the filter is one expression.
fn balanced(filter: &str) {
    assert!(filter.starts_with('(') && filter.ends_with(')'), "{filter}");
    let mut depth = 0i64;
    for (i, c) in filter.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                assert!(depth > 0 || i + 1 == filter.len(), "{filter}");
            }
            _ => {}
        }
    }
    assert_eq!(depth, 0, "{filter}");
}

fuzz_target!(|data: &[u8]| {
    let Ok(cert) = ClientCert::from_der(data) else {
        return;
    };
    for dn in [cert.subject(), cert.issuer()] {
        let written = dn.to_string();
        if written.len() <= MAX_DN_LEN {
            let again = Dn::parse(&written).expect("a certificate's DN re-parses");
            assert_eq!(again.rdns(), dn.rdns(), "{written}");
        }
    }
    if let Ok(plan) = default_plan(&cert) {
        balanced(&plan.filter);
    }
    if let Ok(plan) = CONF.plan(&cert) {
        balanced(&plan.filter);
        if let SearchBase::Dn(base) = &plan.base
            && base.len() <= MAX_DN_LEN
        {
            Dn::parse(base).expect("the search base parses");
        }
        let check = plan.subject_attr.expect("CmapLdapAttr is set");
        let subject = cert.subject().to_string();
        assert!(subject.len() > MAX_DN_LEN || check.matches(subject.as_bytes()));
    }
});
