//! Fuzz the IMAP/POP3/SMTP AUTH framing: mechanism name, initial response
//! and client lines. Every reply must be exactly one CRLF-terminated line.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use portcullis_sasl::framing::{AuthExchange, Event, Protocol};
use portcullis_sasl::{MemoryBackend, Policy, PolicyConfig, ServerContext, Service};

static BACKEND: LazyLock<MemoryBackend> = LazyLock::new(|| {
    MemoryBackend::new()
        .with_user("user", "pencil")
        .expect("static user")
});

fuzz_target!(|input: (u8, Vec<u8>, Option<Vec<u8>>, Vec<Vec<u8>>)| {
    let (proto, name, initial, lines) = input;
    let protocol = [Protocol::Imap, Protocol::Pop3, Protocol::Smtp][usize::from(proto % 3)];
    let mut config = PolicyConfig::default();
    config.has_plain_passwords = true;
    config.has_scram_secrets = true;
    config.imap_allow_anonymous = true;
    let Ok(policy) = Policy::new(&config) else {
        return;
    };
    let ctx = ServerContext::new(Service::Imap, "h");
    let (mut ex, mut event) = AuthExchange::start(
        protocol,
        Some("a1"),
        &name,
        initial.as_deref(),
        &policy,
        &ctx,
    );
    let mut lines = lines.iter();
    for _ in 0..16 {
        event = match event {
            Event::Send(_) => match lines.next() {
                Some(l) => ex.line(l),
                None => return,
            },
            Event::Verify(r) => ex.answer(BACKEND.answer(&r)),
            Event::Success { reply, .. } | Event::Failure { reply, .. } => {
                assert!(reply.ends_with(b"\r\n"));
                assert_eq!(reply.iter().filter(|b| **b == b'\n').count(), 1);
                return;
            }
            _ => return,
        };
    }
});
