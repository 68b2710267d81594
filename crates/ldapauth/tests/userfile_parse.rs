//! Properties of the users-file parser: it never panics, whatever the
//! bytes, and well-formed lines keep what they say.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use portcullis_ldapauth::Users;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Arbitrary bytes: a parse or an error, never a panic.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(users) = Users::parse(&bytes) {
            for u in users.iter() {
                let _ = u.status_check();
                let _ = users.find(&u.name, Some("example.com"));
            }
        }
    }

    /// Lines made of the format's own punctuation and scheme names, which
    /// random bytes rarely hit.
    #[test]
    fn structured_noise_never_panics(
        parts in proptest::collection::vec(
            prop_oneof![
                Just(":".to_owned()), Just("{".to_owned()), Just("}".to_owned()),
                Just("$".to_owned()), Just(",".to_owned()), Just("=".to_owned()),
                Just(" ".to_owned()), Just("\n".to_owned()), Just("#".to_owned()),
                Just("[13]".to_owned()), Just(".HEX".to_owned()), Just(".B64".to_owned()),
                Just("{SCRAM-SHA-256}".to_owned()), Just("{PBKDF2}$1$".to_owned()),
                Just("{SHA512-CRYPT}$6$".to_owned()), Just("{ARGON2ID}$argon2id$".to_owned()),
                Just("{PLAIN}".to_owned()), Just("{MD5}$1$".to_owned()), Just("{SSHA}".to_owned()),
                Just("status=".to_owned()), Just("admin=".to_owned()), Just("nologin".to_owned()),
                Just("mailalternateaddress=".to_owned()), Just("@".to_owned()),
                "[a-zA-Z0-9+/=]{0,12}", "\\PC{0,4}",
            ],
            0..64,
        )
    ) {
        let text = parts.concat();
        if let Ok(users) = Users::parse(text.as_bytes()) {
            for u in users.iter() {
                let _ = users.find(&u.user, None);
            }
        }
    }

    /// A well-formed line parses to the user, attributes and status it
    /// says, and the user is found by its name in any case.
    #[test]
    fn well_formed_lines_keep_their_fields(
        user in "[a-z][a-z0-9._-]{0,15}(@[a-z]{1,8}\\.[a-z]{2,3})?",
        password in "[!-9;-~]{1,20}",
        host in "[a-z]{1,10}\\.example\\.com",
        active in any::<bool>(),
        extra in proptest::collection::btree_map("x[a-z]{1,6}", "[a-z0-9:/]{0,8}", 0..4),
    ) {
        let mut line = format!(
            "{user}:{{PLAIN}}{password}:1000:1000::/home/{user}::mailhost={host} status={}",
            if active { "active" } else { "inactive" }
        );
        for (k, v) in &extra {
            line.push_str(&format!(" {k}={v}"));
        }
        let users = Users::parse(line.as_bytes()).unwrap();
        let u = users.find(&user.to_uppercase(), None).unwrap();
        prop_assert_eq!(&u.name, &user);
        prop_assert_eq!(u.mail_host.as_deref(), Some(host.as_str()));
        prop_assert_eq!(u.status_check().is_ok(), active);
        let home = format!("/home/{user}");
        prop_assert_eq!(u.home.as_deref(), Some(home.as_str()));
        for (k, v) in &extra {
            prop_assert_eq!(u.attributes.get(k).map(Vec::as_slice), Some(std::slice::from_ref(v)));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Whatever the user name's characters, a user the parser keeps is
    /// found again by the name it was stored under.
    #[test]
    fn every_kept_user_is_found_by_its_own_name(name in "\\PC{1,6}") {
        let line = format!("{name}:{{PLAIN}}secret\n");
        if let Ok(users) = Users::parse(line.as_bytes()) {
            for u in users.iter() {
                prop_assert!(users.find(&u.user, None).is_some(), "{:?} not found", u.user);
            }
        }
    }
}

/// A capital letter whose lower case is newer than SASLprep's Unicode 3.2
/// (found by the `userfile_parse` fuzz target): the lower case would be a
/// key no login could reach, so the name is refused.
#[test]
fn a_name_whose_lower_case_saslprep_refuses_is_not_a_name() {
    let users = Users::parse("\u{13ce}:{PLAIN}secret\nbob:{PLAIN}secret\n".as_bytes());
    if let Ok(users) = users {
        for u in users.iter() {
            assert!(
                users.find(&u.user, None).is_some(),
                "{:?} not found",
                u.user
            );
        }
        assert!(users.find("bob", None).is_some());
    }
}
