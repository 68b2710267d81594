//! Properties of DNs and filter escaping: any DN of typed values survives
//! a round trip through its RFC 4514 string with every value and its type
//! intact, and an escaped filter value never contains a character that
//! could end or extend the assertion.
#![allow(clippy::unwrap_used)]

use der::Encode;
use der::asn1::{OctetString, Utf8StringRef};
use portcullis_certmap::escape::{dn_value, filter_value};
use portcullis_certmap::{AttributeType, AttributeValue, Ava, Dn};
use proptest::prelude::*;

fn attribute_type() -> impl Strategy<Value = AttributeType> {
    prop_oneof![
        Just(AttributeType::CN),
        Just(AttributeType::O),
        Just(AttributeType::OU),
        Just(AttributeType::UID),
        Just(AttributeType::EMAIL),
        Just(AttributeType::from_name("DC").unwrap()),
        Just(AttributeType::from_name("serialNumber").unwrap()),
        Just(AttributeType::from_name("title").unwrap()),
        // Not in the database: written as a dotted OID.
        (0u32..1000)
            .prop_map(|n| AttributeType::from_name(&format!("1.3.6.1.4.1.32473.{n}")).unwrap()),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "\\PC*",
        // Looks like the #hex form.
        "#[0-9a-fA-F]{0,8}",
        // Spaces and specials where they need escaping.
        " {0,3}[a-z#,+;\"\\\\<>= \\x00]{0,6} {0,3}",
    ]
}

fn value() -> impl Strategy<Value = AttributeValue> {
    prop_oneof![
        3 => text().prop_map(AttributeValue::Text),
        1 => proptest::collection::vec(any::<u8>(), 0..40)
            .prop_map(|b| AttributeValue::Ber(OctetString::new(b).unwrap().to_der().unwrap())),
        1 => "\\PC{0,10}".prop_map(|s| AttributeValue::Ber(
            Utf8StringRef::new(&s).unwrap().to_der().unwrap()
        )),
    ]
}

fn dn() -> impl Strategy<Value = Dn> {
    let ava = (attribute_type(), value()).prop_map(|(attr, value)| Ava { attr, value });
    proptest::collection::vec(proptest::collection::vec(ava, 1..4), 0..5)
        .prop_map(|rdns| Dn::from_rdns(rdns).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn typed_dns_round_trip(dn in dn()) {
        let s = dn.to_string();
        let again = Dn::parse(&s).map_err(|e| TestCaseError::fail(format!("{s:?}: {e}")))?;
        // Same values of the same types, not only an equal DN.
        prop_assert_eq!(again.rdns(), dn.rdns(), "{}", s);
        prop_assert_eq!(&again, &dn);
        prop_assert_eq!(again.to_string(), s);
    }

    #[test]
    fn dn_values_round_trip(v in text()) {
        let s = format!("CN={},O=Example", dn_value(&v));
        let dn = Dn::parse(&s).map_err(|e| TestCaseError::fail(format!("{s:?}: {e}")))?;
        prop_assert_eq!(dn.rdns().len(), 2);
        prop_assert_eq!(&dn.rdns()[0][0].value, &AttributeValue::Text(v));
        prop_assert_eq!(&dn.rdns()[1][0].value, &AttributeValue::Text("Example".into()));
    }

    #[test]
    fn filter_values_hold_no_specials(v in any::<String>()) {
        let e = filter_value(&v);
        prop_assert!(!e.contains(['*', '(', ')', '\0']));
        // Every backslash starts a two-digit hex escape.
        let b = e.as_bytes();
        for (i, c) in b.iter().enumerate() {
            if *c == b'\\' {
                prop_assert!(b.len() > i + 2 && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit());
            }
        }
    }
}
