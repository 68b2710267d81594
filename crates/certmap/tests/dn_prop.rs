//! Properties of DN and filter escaping: any value survives a round trip
//! through an RFC 4514 string, and an escaped filter value never contains
//! a character that could end or extend the assertion.

use portcullis_certmap::Dn;
use portcullis_certmap::escape::{dn_value, filter_value};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn dn_values_round_trip(v in "\\PC*", w in any::<String>()) {
        for value in [v, w] {
            let s = format!("CN={},O=Example", dn_value(&value));
            let dn = Dn::parse(&s).map_err(|e| TestCaseError::fail(format!("{s:?}: {e}")))?;
            prop_assert_eq!(dn.rdns().len(), 2);
            prop_assert_eq!(&dn.rdns()[0][0].value, &value);
            prop_assert_eq!(&dn.rdns()[1][0].value, "Example");
            let again = Dn::parse(&dn.to_string()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(again, dn);
        }
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
