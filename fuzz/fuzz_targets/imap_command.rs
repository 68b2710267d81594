//! Fuzz the IMAP command parser: arbitrary bytes never panic, and a parsed
//! command encodes back to bytes that parse to the same tag and command.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_imap_proto::Command;

fuzz_target!(|data: &[u8]| {
    if let Ok((tag, command)) = Command::parse(data)
        && let Ok(bytes) = command.encode(&tag)
    {
        let (tag2, again) = Command::parse(&bytes).expect("re-parse");
        assert_eq!(tag2, tag);
        assert_eq!(again, command);
    }
});
