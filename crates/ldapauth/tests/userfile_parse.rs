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
