//! Property: a value substituted into a filter template, whatever it
//! holds, never changes the filter's structure — it arrives as exactly the
//! assertion value it was.
#![allow(clippy::unwrap_used)]

use portcullis_ldapauth::DEFAULT_SEARCH_FILTER;
use portcullis_ldapauth::filter::{Filter, FilterTemplate, parse_filter};
use proptest::prelude::*;

fn hostile() -> impl Strategy<Value = String> {
    // Bias towards the characters that matter, plus arbitrary Unicode.
    prop_oneof![
        proptest::collection::vec(
            prop_oneof![
                Just('*'),
                Just('('),
                Just(')'),
                Just('\\'),
                Just('\0'),
                Just('&'),
                Just('|'),
                Just('!'),
                Just('='),
                Just('~'),
                Just('<'),
                Just('>'),
                Just(':'),
                Just('%'),
                any::<char>(),
                Just('a'),
            ],
            0..24
        )
        .prop_map(|v| v.into_iter().collect()),
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn default_template_keeps_its_shape(u in hostile()) {
        let t = FilterTemplate::parse(DEFAULT_SEARCH_FILTER).unwrap();
        let f = parse_filter(&t.expand(&u, "example.com", "ignored")).unwrap();
        prop_assert_eq!(f, Filter::And(vec![
            Filter::Equal("uid".into(), u.as_bytes().to_vec()),
            Filter::Equal("objectclass".into(), b"inetmailuser".to_vec()),
        ]));
    }

    #[test]
    fn every_token_keeps_its_shape(u in hostile(), d in hostile(), o in hostile()) {
        let t = FilterTemplate::parse("(|(&(uid=%U)(associatedDomain=%D))(!(mail=%o))(cn=%U@%D))").unwrap();
        let f = parse_filter(&t.expand(&u, &d, &o)).unwrap();
        let mut at = u.as_bytes().to_vec();
        at.push(b'@');
        at.extend_from_slice(d.as_bytes());
        prop_assert_eq!(f, Filter::Or(vec![
            Filter::And(vec![
                Filter::Equal("uid".into(), u.as_bytes().to_vec()),
                Filter::Equal("associatedDomain".into(), d.as_bytes().to_vec()),
            ]),
            Filter::Not(Box::new(Filter::Equal("mail".into(), o.as_bytes().to_vec()))),
            Filter::Equal("cn".into(), at),
        ]));
    }

    #[test]
    fn ldap3_agrees_the_filter_is_valid(u in hostile()) {
        let t = FilterTemplate::parse(DEFAULT_SEARCH_FILTER).unwrap();
        prop_assert!(ldap3::parse_filter(t.expand(&u, "", "")).is_ok());
    }
}
