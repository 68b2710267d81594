//! Helpers shared by the integration tests.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::collections::BTreeMap;

use portcullis_sasl::{
    Authenticated, ClientContext, ClientSession, Credentials, Error, Mechanism, MemoryBackend,
    ServerContext, ServerSession, Step,
};

/// Reads `tests/vectors/<name>`: `key = value` lines, `\0` is NUL.
pub fn vector(name: &str) -> BTreeMap<String, String> {
    let path = format!("{}/tests/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("vector file");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l.split_once(" =").expect("key = value");
            (
                k.trim().to_owned(),
                v.strip_prefix(' ').unwrap_or(v).replace("\\0", "\0"),
            )
        })
        .collect()
}

/// Runs a server from `step` to the end, answering requests from `backend`
/// and challenges with `respond`.
pub fn drive(
    server: &mut ServerSession,
    mut step: Result<Step, Error>,
    backend: &MemoryBackend,
    mut respond: impl FnMut(&[u8]) -> Result<Vec<u8>, Error>,
) -> Result<Authenticated, Error> {
    for _ in 0..32 {
        step = match step? {
            Step::Challenge(c) => {
                let r = respond(&c)?;
                server.step(&r)
            }
            Step::Verify(req) => server.answer(backend.answer(&req)),
            Step::Done(a) => return Ok(a),
            _ => panic!("unknown step"),
        };
    }
    panic!("exchange did not end");
}

/// Our client against our server.
pub fn exchange(
    mechanism: Mechanism,
    server_ctx: &ServerContext,
    client_ctx: &ClientContext,
    credentials: Credentials,
    backend: &MemoryBackend,
) -> (Result<Authenticated, Error>, Option<ClientSession>) {
    let mut client = match ClientSession::new(mechanism, credentials, client_ctx) {
        Ok(c) => c,
        Err(e) => return (Err(e), None),
    };
    let mut server = match ServerSession::new(mechanism, server_ctx) {
        Ok(s) => s,
        Err(e) => return (Err(e), Some(client)),
    };
    let initial = match client.initial_response() {
        Ok(i) => i,
        Err(e) => return (Err(e), Some(client)),
    };
    let start = server.start(initial.as_deref());
    let result = drive(&mut server, start, backend, |c| client.step(c));
    (result, Some(client))
}

pub fn backend() -> MemoryBackend {
    MemoryBackend::new()
        .with_user("alice", "alice-pw")
        .and_then(|b| b.with_user("admin", "admin-pw"))
        .and_then(|b| b.with_user("bob", "bob-pw"))
        .expect("backend")
        .with_proxy_admin("admin")
}
