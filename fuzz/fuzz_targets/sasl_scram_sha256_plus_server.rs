//! Fuzz the SCRAM-SHA-256-PLUS server exchange with arbitrary client messages.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_sasl::Mechanism;

#[path = "sasl_common.rs"]
mod common;

fuzz_target!(|input: (u8, Option<Vec<u8>>, Vec<Vec<u8>>)| {
    let (mode, initial, messages) = input;
    common::run(
        Mechanism::ScramSha256Plus,
        mode,
        initial.as_deref(),
        &messages,
    );
});
