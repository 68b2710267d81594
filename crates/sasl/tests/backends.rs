//! The backend traits, used as `Arc<dyn …>` through `Backends::resolve`
//! (ldapauth implements the same traits against the directory).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use portcullis_sasl::{
    Answer, Backends, ExternalIdentity, Mechanism, MemoryBackend, ServerContext, ServerSession,
    Service, Step,
};

/// Polls a future that is ready at once (the in-memory backend never waits).
fn now<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("in-memory backend is never pending"),
    }
}

fn run(
    backends: &Backends,
    m: Mechanism,
    ctx: &ServerContext,
    initial: &[u8],
) -> Result<String, portcullis_sasl::Error> {
    let mut s = ServerSession::new(m, ctx)?;
    let mut step = s.start(Some(initial))?;
    loop {
        step = match step {
            Step::Verify(r) => s.answer(now(backends.resolve(&r)))?,
            Step::Done(a) => return Ok(a.identity().to_owned()),
            Step::Challenge(_) => panic!("no challenge expected"),
            _ => panic!(),
        };
    }
}

#[test]
fn backends_dispatch_every_request() {
    let memory = Arc::new(
        MemoryBackend::new()
            .with_user("alice", "pw")
            .unwrap()
            .with_user("admin", "apw")
            .unwrap()
            .with_proxy_admin("admin")
            .with_identity(ExternalIdentity::Name("cert".into()), "alice"),
    );
    let mut backends = Backends::new(memory.clone());
    let ctx =
        ServerContext::new(Service::Imap, "h").with_external(ExternalIdentity::Name("cert".into()));
    assert_eq!(
        run(&backends, Mechanism::Plain, &ctx, b"\0alice\0pw").unwrap(),
        "alice"
    );
    // Default proxy authorizer: nobody may proxy.
    assert!(run(&backends, Mechanism::Plain, &ctx, b"alice\0admin\0apw").is_err());
    // No identity mapper: EXTERNAL is rejected.
    assert!(run(&backends, Mechanism::External, &ctx, b"").is_err());
    backends.proxy = memory.clone();
    backends.identities = Some(memory.clone());
    assert_eq!(
        run(&backends, Mechanism::Plain, &ctx, b"alice\0admin\0apw").unwrap(),
        "alice"
    );
    assert_eq!(
        run(&backends, Mechanism::External, &ctx, b"").unwrap(),
        "alice"
    );
    // Outage through the traits.
    let mut down = (*memory).clone();
    down.set_unavailable(true);
    let down = Backends::new(Arc::new(down));
    assert_eq!(
        run(&down, Mechanism::Plain, &ctx, b"\0alice\0pw"),
        Err(portcullis_sasl::Error::Unavailable)
    );
    // The default trait methods reject cleartext and SCRAM lookups.
    #[derive(Debug)]
    struct OnlyVerify;
    impl portcullis_sasl::CredentialVerifier for OnlyVerify {
        fn verify_password<'a>(
            &'a self,
            _r: &'a portcullis_sasl::VerifyPassword,
        ) -> portcullis_sasl::BoxFuture<'a, portcullis_sasl::Verdict<portcullis_sasl::Account>>
        {
            Box::pin(async { portcullis_sasl::Verdict::Accept(portcullis_sasl::Account::new("x")) })
        }
    }
    let only = Backends::new(Arc::new(OnlyVerify));
    let mut s = ServerSession::new(Mechanism::ScramSha256, &ctx).unwrap();
    let Step::Verify(r) = s.start(Some(b"n,,n=alice,r=abc")).unwrap() else {
        panic!()
    };
    assert!(matches!(now(only.resolve(&r)), Answer::Reject));
}
