#![no_main]
//! Users-file parser: never panics, whatever the bytes; whatever parses has
//! unique names, each found again by its own name and canonical name, and
//! a status check that never panics.
use libfuzzer_sys::fuzz_target;
use portcullis_ldapauth::Users;

fuzz_target!(|data: &[u8]| {
    let Ok(users) = Users::parse(data) else {
        return;
    };
    for u in users.iter() {
        let found = users
            .find(&u.user, None)
            .expect("a user is found by its name");
        assert_eq!(found.line, u.line);
        let _ = users.find(&u.name, Some("example.com"));
        let _ = u.status_check();
        let _ = u.addresses().count();
    }
});
