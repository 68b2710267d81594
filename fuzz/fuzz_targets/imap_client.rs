//! Fuzz the IMAP client toward the store with arbitrary store replies: no
//! panic, and no login reported without a tagged OK to the login.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_imap_proto::{ClientConfig, ClientEvent, ClientSession, Login, Password};

fuzz_target!(|input: (u8, Vec<Vec<u8>>)| {
    let (flags, pieces) = input;
    let login = if flags & 1 != 0 {
        Login::Plain {
            authzid: "user".to_owned(),
            authcid: "admin".to_owned(),
            password: Password::new("secret"),
        }
    } else {
        Login::Login {
            user: "user".to_owned(),
            password: Password::new("pass\r\nword"),
        }
    };
    let mut config = ClientConfig::new(login);
    config.starttls = flags & 2 != 0;
    if flags & 4 != 0 {
        config.id = vec![("x-originating-ip".to_owned(), "192.0.2.1".to_owned())];
    }
    let mut s = ClientSession::new(config);
    let mut sent_login = false;
    if flags & 8 != 0 {
        // Start past the greeting, so the input exercises what follows.
        s.feed(b"* OK [CAPABILITY IMAP4rev1 STARTTLS SASL-IR ID LITERAL+ AUTH=PLAIN] hi\r\n");
        let _ = s.poll();
        let _ = s.take_output();
    }
    for p in pieces {
        s.feed(&p);
        match s.poll() {
            ClientEvent::StartTls { .. } => {
                s.tls_established().expect("pending STARTTLS");
            }
            ClientEvent::LoggedIn => {
                assert!(sent_login, "logged in before any login was sent");
                return;
            }
            ClientEvent::Refused(_) | ClientEvent::Failed(_) => return,
            _ => {}
        }
        let out = s.take_output();
        if out.windows(6).any(|w| w == b" LOGIN" || w == b"AUTHEN") {
            sent_login = true;
        }
    }
});
