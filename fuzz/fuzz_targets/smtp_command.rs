//! Parse → encode → parse: a checked MAIL FROM or RCPT TO re-encodes to a
//! line that parses to the same command; anything else gets a 5xx reply.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_smtp_proto::Command;

fuzz_target!(|data: &[u8]| {
    match Command::parse(data) {
        Ok(Command::Mail(m)) => {
            let line = m.to_line();
            assert_eq!(
                Command::parse(line.as_bytes()),
                Ok(Command::Mail(m)),
                "{line}"
            );
        }
        Ok(Command::Rcpt(r)) => {
            let line = r.to_line();
            assert_eq!(
                Command::parse(line.as_bytes()),
                Ok(Command::Rcpt(r)),
                "{line}"
            );
        }
        Ok(_) => {}
        Err(reply) => assert!((500..=599).contains(&reply.code())),
    }
});
