//! Property tests: command and response-code round trips through
//! imap-codec, and the sessions never panic and never log in by
//! themselves.

use portcullis_imap_proto::{
    ClientConfig, ClientEvent, ClientSession, Command, Event, Login, Password, ResponseCode,
    ServerConfig, ServerSession,
};
use proptest::prelude::*;

fn tag() -> impl Strategy<Value = String> {
    "[A-Za-z0-9.]{1,10}"
}

fn text() -> impl Strategy<Value = String> {
    // Printable ASCII, some Latin-1 letters, and CR/LF (which need a literal).
    "[ -~äöü\r\n]{1,24}"
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        Just(Command::Capability),
        Just(Command::Noop),
        Just(Command::Logout),
        Just(Command::StartTls),
        (text(), text()).prop_map(|(user, p)| Command::Login {
            user,
            password: Password::new(p),
        }),
        (
            "[A-Z][A-Z0-9-]{0,19}",
            proptest::option::of(prop::collection::vec(any::<u8>(), 0..40))
        )
            .prop_map(|(mechanism, ir)| Command::Authenticate {
                mechanism,
                initial_response: ir.map(|d| {
                    zeroize::Zeroizing::new(portcullis_sasl::framing::encode_initial_response(&d))
                }),
            }),
        proptest::option::of(prop::collection::vec(
            ("[a-z-]{1,30}", proptest::option::of("[ -~]{0,40}")),
            1..6
        ))
        .prop_map(Command::Id),
    ]
}

proptest! {
    #[test]
    fn command_round_trip(t in tag(), c in command()) {
        let bytes = c.encode(&t).expect("encode");
        let (t2, c2) = Command::parse(&bytes).expect("parse");
        prop_assert_eq!(t2, t);
        prop_assert_eq!(c2, c);
    }

    #[test]
    fn response_code_round_trip(code in "[A-Z]{1,12}( [!-Z^-~]{1,10}){0,3}") {
        let c = ResponseCode::parse(&code).expect("parse");
        prop_assert_eq!(ResponseCode::parse(&c.to_text()).expect("reparse"), c);
    }

    #[test]
    fn command_parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = Command::parse(&bytes);
    }

    #[test]
    fn server_never_grants_by_itself(input in prop::collection::vec(
        prop_oneof![
            any::<u8>(),
            Just(b'\r'), Just(b'\n'), Just(b'{'), Just(b'}'), Just(b'+'), Just(b' ')
        ], 0..2000)
    ) {
        let mut c = ServerConfig::default();
        c.starttls_available = true;
        c.literal_plus = true;
        let mut s = ServerSession::new(c).expect("session");
        s.feed(b"a1 CAPABILITY\r\n");
        s.feed(&input);
        for _ in 0..400 {
            match s.poll() {
                Event::LoggedIn => prop_assert!(false, "logged in without the caller"),
                Event::NeedMoreInput | Event::Close | Event::Logout => break,
                Event::Waiting => { let _ = s.reject(None, "no"); }
                Event::AuthResponse { .. } => { let _ = s.auth_fail(b"a BAD no\r\n"); }
                _ => {}
            }
        }
    }

    #[test]
    fn client_never_logs_in_on_garbage(input in prop::collection::vec(any::<u8>(), 0..2000)) {
        let mut s = ClientSession::new(ClientConfig::new(Login::Login {
            user: "u".into(),
            password: Password::new("p"),
        }));
        s.feed(&input);
        prop_assert!(s.poll() != ClientEvent::LoggedIn);
    }
}
