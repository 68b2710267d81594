//! Parse → encode → parse must give the same command and response.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_pop3_proto::{Command, Response};

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = Command::parse(data)
        && let Ok(bytes) = c.encode()
    {
        assert_eq!(Command::parse(&bytes).expect("re-parse"), c);
    }
    if let Ok(r) = Response::parse(data) {
        let again = Response::parse(&r.encode()).expect("re-parse");
        // Control characters in the text become spaces; after one pass
        // the encoding is stable.
        assert_eq!(Response::parse(&again.encode()).expect("re-parse"), again);
    }
});
