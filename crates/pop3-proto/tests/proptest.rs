//! Property tests: command and response round trips, xtext, and the
//! server never panics and never logs in by itself.

use portcullis_pop3_proto::command::{xtext_decode, xtext_encode};
use portcullis_pop3_proto::{Command, Event, Password, Response, ServerConfig, ServerSession};
use proptest::prelude::*;

fn arg() -> impl Strategy<Value = String> {
    "[!-~]{1,20}"
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        arg().prop_map(Command::User),
        "[ -~]{1,30}"
            .prop_filter("non-empty", |p| !p.is_empty())
            .prop_map(|p| Command::Pass(Password::new(p))),
        (arg(), "[0-9a-f]{32}").prop_map(|(user, digest)| Command::Apop { user, digest }),
        (
            "[A-Z0-9-]{1,20}",
            proptest::option::of("[A-Za-z0-9+/=]{1,40}")
        )
            .prop_map(|(m, ir)| {
                Command::Auth {
                    mechanism: Some(m),
                    initial_response: ir,
                }
            }),
        Just(Command::Stls),
        Just(Command::Capa),
        Just(Command::Quit),
        prop::collection::vec(("[A-Z]{1,8}", "\\PC{0,12}"), 1..4).prop_map(Command::Xclient),
    ]
}

proptest! {
    #[test]
    fn command_round_trip(c in command()) {
        let bytes = c.encode().expect("encode");
        prop_assert_eq!(Command::parse(&bytes).expect("parse"), c);
    }

    #[test]
    fn xtext_round_trip(s in "\\PC{0,40}") {
        prop_assert_eq!(xtext_decode(&xtext_encode(&s)).expect("decode"), s);
    }

    #[test]
    fn response_round_trip(line in "(\\+OK|-ERR)( \\[[A-Z/-]{1,10}\\])?( [ -~]{0,40})?") {
        let r = Response::parse(line.as_bytes()).expect("parse");
        prop_assert_eq!(Response::parse(&r.encode()).expect("reparse"), r);
    }

    #[test]
    fn command_parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = Command::parse(&bytes);
    }

    #[test]
    fn server_never_grants_by_itself(input in prop::collection::vec(any::<u8>(), 0..2000)) {
        let mut c = ServerConfig::default();
        c.stls_available = true;
        let mut s = ServerSession::new(c).expect("session");
        s.feed(&input);
        for _ in 0..200 {
            match s.poll() {
                Event::LoggedIn => prop_assert!(false, "logged in without the caller"),
                Event::NeedMoreInput | Event::Close | Event::Quit => break,
                Event::Waiting => { let _ = s.reject(None, "no"); }
                _ => {}
            }
        }
    }
}
