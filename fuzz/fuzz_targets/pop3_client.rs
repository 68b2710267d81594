//! Fuzz the client toward the store with arbitrary store replies: no
//! panic, no login reported without a final `+OK`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_pop3_proto::{ClientConfig, ClientEvent, ClientSession, Login, Password};

fuzz_target!(|input: (bool, Vec<Vec<u8>>)| {
    let (stls, pieces) = input;
    let mut config = ClientConfig::new(Login::Plain {
        authzid: "user".to_owned(),
        authcid: "admin".to_owned(),
        password: Password::new("secret"),
    });
    config.stls = stls;
    config.xclient = vec![("ADDR".to_owned(), "192.0.2.1".to_owned())];
    let mut s = ClientSession::new(config);
    for p in pieces {
        s.feed(&p);
        match s.poll() {
            ClientEvent::StartTls { .. } => {
                s.tls_established().expect("pending STLS");
            }
            ClientEvent::LoggedIn | ClientEvent::Refused(_) | ClientEvent::Failed(_) => return,
            _ => {}
        }
        let _ = s.take_output();
    }
});
