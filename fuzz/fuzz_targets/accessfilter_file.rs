//! Fuzzes the access filter parser (file form): never panics; whatever parses
//! displays as text that parses back to the same filters; evaluation of the
//! parsed set never panics and the index agrees with the naive evaluator.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_accessfilter::{Action, FilterSet, NameLookup, Query, UserLookup, parse_file};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(filters) = parse_file(text, Action::Allow) {
        let shown: String = filters.iter().map(|f| format!("{f}\n")).collect();
        let again = parse_file(&shown, Action::Allow).expect("display output parses");
        assert_eq!(filters.len(), again.len());
        for (a, b) in filters.iter().zip(&again) {
            assert!(a.same_as(b), "{a} vs {b}");
        }
        let set = FilterSet::builder().filters("fuzz", filters).build();
        for (service, addr, name) in [
            (
                "imap",
                "10.0.0.1",
                NameLookup::Verified("a.example.com".into()),
            ),
            ("pop", "2001:db8::1", NameLookup::NotDone),
            ("smtp", "192.168.1.1", NameLookup::Tempfail),
        ] {
            let q = Query::for_connection(
                service,
                std::net::SocketAddr::new(addr.parse().expect("address"), 40000),
                "192.0.2.254:143".parse().expect("address"),
            )
            .client_name(name)
            .user_lookup(UserLookup::Known("alice".into()));
            assert_eq!(set.evaluate(&q), set.evaluate_naive(&q));
        }
    }
});
