//! RFC 9051, 3501, 4959, 2971 and 7888 examples, from `tests/data/`, run
//! whole and split at every byte.

mod common;

const TRANSCRIPTS: &[(&str, &str)] = &[
    ("rfc9051_login", include_str!("data/rfc9051_login.txt")),
    (
        "rfc9051_capability_noop_logout",
        include_str!("data/rfc9051_capability_noop_logout.txt"),
    ),
    (
        "rfc3501_starttls",
        include_str!("data/rfc3501_starttls.txt"),
    ),
    ("rfc4959_sasl_ir", include_str!("data/rfc4959_sasl_ir.txt")),
    (
        "rfc4959_continuation",
        include_str!("data/rfc4959_continuation.txt"),
    ),
    ("rfc2971_id", include_str!("data/rfc2971_id.txt")),
    ("rfc2971_id_ours", include_str!("data/rfc2971_id_ours.txt")),
    (
        "rfc7888_literals",
        include_str!("data/rfc7888_literals.txt"),
    ),
    (
        "rfc7888_literal_minus",
        include_str!("data/rfc7888_literal_minus.txt"),
    ),
];

#[test]
fn transcripts_whole_lines() {
    for (name, text) in TRANSCRIPTS {
        eprintln!("{name}");
        common::run(text, usize::MAX);
    }
}

#[test]
fn transcripts_byte_by_byte() {
    for (name, text) in TRANSCRIPTS {
        eprintln!("{name}");
        for chunk in [1, 2, 3, 7] {
            common::run(text, chunk);
        }
    }
}
