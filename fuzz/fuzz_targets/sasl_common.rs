//! Shared driver for the SASL fuzz targets: a deterministic backend and a
//! loop feeding the fuzzer's messages to one server exchange.

use std::sync::LazyLock;

use portcullis_sasl::danger::FixedNonce as _;
use portcullis_sasl::{
    Answer, ExternalIdentity, Mechanism, MemoryBackend, ServerContext, ServerSession, Service,
    Step, TlsState, TlsVersion,
};

static BACKEND: LazyLock<MemoryBackend> = LazyLock::new(|| {
    MemoryBackend::new()
        .with_user("user", "pencil")
        .and_then(|b| b.with_user("admin", "admin"))
        .expect("static users")
        .with_proxy_admin("admin")
        .with_identity(ExternalIdentity::Name("cert".into()), "user")
});

/// Fixed nonces let the fuzzer reach the later rounds.
pub fn context() -> ServerContext {
    ServerContext::new(Service::Imap, "h")
        .with_tls(
            TlsState::new(TlsVersion::Tls13, false)
                .with_tls_exporter(vec![1; 32])
                .with_tls_server_end_point(vec![2; 32]),
        )
        .with_external(ExternalIdentity::Name("cert".into()))
        // Everything advertised, -PLUS included (the downgrade check runs).
        .advertising(&Mechanism::ALL)
        .dangerous_fixed_nonce("<1.2@h>")
}

/// `mode` picks how requests are answered: from the backend, always
/// rejected, always unavailable, or with a wrong-kind answer.
pub fn run(mechanism: Mechanism, mode: u8, initial: Option<&[u8]>, messages: &[Vec<u8>]) {
    let Ok(mut server) = ServerSession::new(mechanism, &context()) else {
        return;
    };
    let mut step = server.start(initial);
    let mut messages = messages.iter();
    // Whether a verification request was answered with a refusal.
    let mut refused = false;
    for _ in 0..16 {
        step = match step {
            Ok(Step::Challenge(_)) => match messages.next() {
                Some(m) => server.step(m),
                None => return,
            },
            Ok(Step::Verify(request)) => server.answer(match mode % 4 {
                0 => BACKEND.answer(&request),
                1 => {
                    refused = true;
                    Answer::Reject
                }
                2 => {
                    refused = true;
                    Answer::Unavailable
                }
                _ => Answer::accept("fuzz-user"),
            }),
            Ok(Step::Done(auth)) => {
                // A refused verification can never end in success.
                assert!(!refused, "success after a refusal: {auth:?}");
                return;
            }
            _ => return,
        };
    }
}
