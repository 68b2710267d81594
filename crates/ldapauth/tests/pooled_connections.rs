//! Pooled connections against a slapd of the test's own: a restarted
//! server is used again without an error reaching the caller, and a
//! connection whose re-bind as the service account failed is never reused.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{directory, settings};
use portcullis_ldapauth::{Error, Password, Reject};
use portcullis_test_support::slapd::Slapd;

const ALICE: &str = "uid=alice,ou=People,o=example.com,o=example";

#[tokio::test]
async fn logins_go_on_across_a_server_restart() {
    let mut slapd = Slapd::start().unwrap();
    let mut s = settings(&slapd);
    // Every reuse is checked; one connection, so the login after the
    // restart gets the one that was idle across it.
    s.idle_check_after = Duration::ZERO;
    s.pool_size = 1;
    let d = directory(s);
    let password: Password = "alice-pw".into();
    let login = || d.verify_password("alice@example.com", &password);
    assert_eq!(login().await.unwrap().dn, ALICE);

    for _ in 0..2 {
        slapd.restart().unwrap();
        assert_eq!(login().await.unwrap().dn, ALICE);
        assert_eq!(
            d.lookup("bob@example.com").await.unwrap().dn,
            "uid=bob,ou=People,o=example.com,o=example"
        );
        assert_eq!(
            d.verify_password("alice@example.com", &"wrong".into())
                .await
                .unwrap_err(),
            Error::Rejected(Reject::BadPassword)
        );
        // The dead connection was not a server failure.
        assert!(d.server_status().iter().all(|(_, up)| *up));
    }
}

fn set_service_password(slapd: &Slapd, password: &str) {
    slapd
        .modify_ldif(&format!(
            "dn: {}\nchangetype: modify\nreplace: userPassword\nuserPassword: {password}\n",
            slapd.service_dn()
        ))
        .unwrap();
}

/// After a user bind the connection is re-bound as the service account;
/// when that fails it is closed, not returned to the pool, where the next
/// search would run as the user.
#[tokio::test]
async fn a_connection_whose_rebind_failed_is_never_reused() {
    let slapd = Slapd::start().unwrap();
    let mut s = settings(&slapd);
    s.pool_size = 1;
    let d = directory(s);
    d.lookup("bob@example.com").await.unwrap();

    // The service account's password changes under the pooled connection,
    // which stays bound as before.
    set_service_password(&slapd, "changed-service-secret");
    // The user's bind succeeds; the re-bind with the old password fails.
    assert_eq!(
        d.verify_password("alice@example.com", &"alice-pw".into())
            .await
            .unwrap()
            .dn,
        ALICE
    );
    // Searching needs a new connection, whose service bind is refused:
    // a temporary failure, not a search bound as alice.
    let e = d.lookup("bob@example.com").await.unwrap_err();
    assert!(e.is_temporary(), "{e:?}");

    // With the password back, the server is used again.
    set_service_password(&slapd, slapd.service_password());
    d.lookup("bob@example.com").await.unwrap();
    assert!(d.server_status().iter().all(|(_, up)| *up));
}
