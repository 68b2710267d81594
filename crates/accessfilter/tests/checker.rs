//! `lint::Checker`: the report `filtercheck` prints, and its exit status.

use portcullis_accessfilter::lint::{Checker, EXIT_ERRORS, EXIT_WARNINGS};

#[test]
fn a_clean_value_reports_nothing() {
    let mut c = Checker::new(false);
    c.files(
        Some(("allow", "imap, pop: .example.com 192.0.2.0/24\n")),
        Some(("deny", "ALL: ALL\n")),
    );
    assert_eq!(c.finish(), ("no problems found\n".to_owned(), 0));
}

#[test]
fn syntax_errors_name_their_source_and_stop_the_set_checks() {
    let mut c = Checker::new(false);
    c.files(
        Some(("allow.txt", "imap: 10.0.0.0/33\n")),
        Some(("deny.txt", "ALL: ALL\n")),
    );
    let (report, code) = c.finish();
    assert_eq!(code, EXIT_ERRORS);
    assert!(report.starts_with("allow.txt:1:"), "{report}");
    assert!(report.ends_with("1 error(s), 0 warning(s)\n"), "{report}");
}

#[test]
fn warnings_are_counted_and_unreadable_sources_are_errors() {
    let mut c = Checker::new(false);
    c.files(Some(("allow.txt", "imap: @staff\n")), None);
    let (report, code) = c.finish();
    assert_eq!(code, EXIT_WARNINGS, "{report}");
    assert!(report.contains("netgroup"), "{report}");
    assert!(report.ends_with(" warning(s)\n"), "{report}");

    let mut c = Checker::new(true);
    c.files(Some(("allow.txt", "imap: @staff\n")), None);
    assert!(!c.finish().0.contains("netgroup"));

    let mut c = Checker::new(false);
    c.unreadable();
    assert_eq!(
        c.finish(),
        ("1 error(s), 0 warning(s)\n".to_owned(), EXIT_ERRORS)
    );
}
