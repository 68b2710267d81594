//! Server side of each SASL exchange, from the first client message to
//! `Done`, with an in-memory backend. The server nonce is fixed so the client
//! messages can be computed once, outside the measurement.
//!
//! `sasl/scram_sha256_derive_4096` is the PBKDF2 a server would pay per
//! login if it kept only the password; the SCRAM exchanges verify from the
//! stored keys instead.
//!
//! `sasl/scram_sha256_fail/{wrong_password,unknown_user}` compare the cost of
//! a failed SCRAM exchange for a real user with a wrong password and for a
//! user who does not exist: a ratio near 1 means the timing does not tell
//! them apart.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis_sasl::danger::FixedNonce as _;
use portcullis_sasl::{
    ClientContext, ClientSession, Credentials, ExternalIdentity, Mechanism, MemoryBackend,
    Password, ScramAlgorithm, ScramSecret, ServerContext, ServerSession, Service, Step, TlsState,
    TlsVersion,
};

const NONCE: &str = "<1896.697170952@mail.example>";

fn tls() -> TlsState {
    TlsState::new(TlsVersion::Tls13, false).with_tls_exporter(vec![7; 32])
}

fn server_ctx() -> ServerContext {
    ServerContext::new(Service::Imap, "mail.example")
        .with_tls(tls())
        .with_external(ExternalIdentity::Name("cert".into()))
        .dangerous_fixed_nonce(NONCE)
}

/// One server exchange; panics unless it succeeds.
fn serve(
    m: Mechanism,
    ctx: &ServerContext,
    backend: &MemoryBackend,
    initial: Option<&[u8]>,
    msgs: &[Vec<u8>],
) {
    let mut server = ServerSession::new(m, ctx).expect("mechanism available");
    let mut step = server.start(initial).expect("first step");
    let mut msgs = msgs.iter();
    loop {
        step = match step {
            Step::Challenge(_) => server
                .step(msgs.next().expect("enough messages"))
                .expect("step"),
            Step::Verify(r) => server.answer(backend.answer(&r)).expect("answer"),
            Step::Done(a) => {
                black_box(a);
                return;
            }
            _ => unreachable!("no other steps"),
        };
    }
}

/// Records what our client sends to a server with the fixed nonce.
fn record(m: Mechanism, backend: &MemoryBackend) -> (Option<Vec<u8>>, Vec<Vec<u8>>) {
    let mut cctx = ClientContext::new(Service::Imap, "mail.example").with_tls(tls());
    cctx.server_offers_plus = true;
    let creds = if m == Mechanism::External {
        Credentials::external(None)
    } else if m == Mechanism::Anonymous {
        Credentials::anonymous("bench@example")
    } else {
        Credentials::new("alice", "correct horse battery")
    };
    let mut client = ClientSession::new(m, creds, &cctx).expect("client");
    let ctx = server_ctx();
    let mut server = ServerSession::new(m, &ctx).expect("server");
    if m == Mechanism::Apop {
        let cmd = client
            .step(server.apop_timestamp().expect("timestamp").as_bytes())
            .expect("apop");
        return (Some(cmd), Vec::new());
    }
    let initial = client.initial_response().expect("initial");
    let mut msgs = Vec::new();
    let mut step = server.start(initial.as_deref()).expect("start");
    loop {
        step = match step {
            Step::Challenge(c) => {
                let r = client.step(&c).expect("client step");
                msgs.push(r.clone());
                server.step(&r).expect("server step")
            }
            Step::Verify(r) => server.answer(backend.answer(&r)).expect("answer"),
            Step::Done(_) => return (initial, msgs),
            _ => unreachable!("no other steps"),
        };
    }
}

/// The client messages of a SCRAM-SHA-256 exchange that fails at the proof
/// (`user` unknown, or `password` wrong).
fn record_failing(user: &str, password: &str, backend: &MemoryBackend) -> (Vec<u8>, Vec<u8>) {
    let m = Mechanism::ScramSha256;
    let cctx = ClientContext::new(Service::Imap, "mail.example");
    let mut client =
        ClientSession::new(m, Credentials::new(user, password), &cctx).expect("client");
    let ctx = server_ctx();
    let mut server = ServerSession::new(m, &ctx).expect("server");
    let first = client
        .initial_response()
        .expect("initial")
        .expect("client-first");
    let Step::Verify(r) = server.start(Some(&first)).expect("start") else {
        unreachable!("SCRAM asks for the secret")
    };
    let Step::Challenge(c) = server.answer(backend.answer(&r)).expect("answer") else {
        unreachable!("server-first")
    };
    let last = client.step(&c).expect("client-final");
    assert!(server.step(&last).is_err(), "the exchange must fail");
    (first, last)
}

/// One failing server exchange.
fn serve_failing(ctx: &ServerContext, backend: &MemoryBackend, first: &[u8], last: &[u8]) {
    let mut server = ServerSession::new(Mechanism::ScramSha256, ctx).expect("server");
    let Ok(Step::Verify(r)) = server.start(Some(first)) else {
        unreachable!("SCRAM asks for the secret")
    };
    let Ok(Step::Challenge(_)) = server.answer(backend.answer(&r)) else {
        unreachable!("server-first")
    };
    black_box(server.step(last).is_err());
}

fn bench(c: &mut Criterion) {
    let backend = MemoryBackend::new()
        .with_user("alice", "correct horse battery")
        .expect("user")
        .with_identity(ExternalIdentity::Name("cert".into()), "alice");
    let ctx = server_ctx();
    for (name, m) in [
        ("plain", Mechanism::Plain),
        ("login", Mechanism::Login),
        ("cram_md5", Mechanism::CramMd5),
        ("digest_md5", Mechanism::DigestMd5),
        ("apop", Mechanism::Apop),
        ("anonymous", Mechanism::Anonymous),
        ("external", Mechanism::External),
        ("scram_sha1", Mechanism::ScramSha1),
        ("scram_sha256", Mechanism::ScramSha256),
        ("scram_sha256_plus", Mechanism::ScramSha256Plus),
    ] {
        let (initial, msgs) = record(m, &backend);
        c.bench_function(&format!("sasl/server/{name}"), |b| {
            b.iter(|| serve(m, &ctx, &backend, initial.as_deref(), black_box(&msgs)));
        });
    }
    for (name, user, password) in [
        ("wrong_password", "alice", "wrong horse"),
        ("unknown_user", "mallory", "wrong horse"),
    ] {
        let (first, last) = record_failing(user, password, &backend);
        c.bench_function(&format!("sasl/scram_sha256_fail/{name}"), |b| {
            b.iter(|| serve_failing(&ctx, &backend, black_box(&first), black_box(&last)));
        });
    }
    let pw = Password::new("correct horse battery");
    c.bench_function("sasl/scram_sha256_derive_4096", |b| {
        b.iter(|| {
            ScramSecret::derive(
                ScramAlgorithm::Sha256,
                black_box(&pw),
                b"0123456789abcdef",
                4096,
            )
        });
    });
    c.bench_function("sasl/scram_sha1_derive_4096", |b| {
        b.iter(|| {
            ScramSecret::derive(
                ScramAlgorithm::Sha1,
                black_box(&pw),
                b"0123456789abcdef",
                4096,
            )
        });
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
