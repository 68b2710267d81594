//! RFC test vectors (data in `tests/vectors/`, sources named there).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{drive, vector};
use portcullis_sasl::danger::FixedNonce as _;
use portcullis_sasl::{
    ClientContext, ClientSession, Credentials, Mechanism, MemoryBackend, Password, ScramAlgorithm,
    ScramSecret, ServerContext, ServerSession, Service, Step,
};

#[test]
fn rfc4616_plain_examples() {
    let v = vector("rfc4616-plain.txt");
    for ex in ["example1", "example2"] {
        let get = |k: &str| v[&format!("{ex}.{k}")].clone();
        let backend = MemoryBackend::new()
            .with_user(&get("authcid"), &get("password"))
            .unwrap()
            .with_proxy_admin(&get("authcid"));
        let ctx = ServerContext::new(Service::Imap, "mail.example");
        let mut server = ServerSession::new(Mechanism::Plain, &ctx).unwrap();
        let start = server.start(Some(get("message").as_bytes()));
        let auth = drive(&mut server, start, &backend, |_| panic!("no challenge")).unwrap();
        assert_eq!(auth.authcid(), get("authcid"));
        let authzid = get("authzid");
        assert_eq!(
            auth.authzid(),
            (!authzid.is_empty()).then_some(authzid.as_str())
        );

        // Our client produces the same message.
        let mut creds = Credentials::new(get("authcid"), get("password"));
        if !authzid.is_empty() {
            creds = creds.with_authzid(authzid);
        }
        let ctx = ClientContext::new(Service::Imap, "mail.example");
        let mut client = ClientSession::new(Mechanism::Plain, creds, &ctx).unwrap();
        assert_eq!(
            client.initial_response().unwrap().unwrap(),
            get("message").as_bytes()
        );
    }
}

#[test]
fn rfc2195_cram_md5() {
    let v = vector("rfc2195-cram-md5.txt");
    assert_eq!(STANDARD.encode(&v["challenge"]), v["challenge.base64"]);
    assert_eq!(STANDARD.encode(&v["response"]), v["response.base64"]);
    let backend = MemoryBackend::new()
        .with_user(&v["user"], &v["password"])
        .unwrap();
    let ctx = ServerContext::new(Service::Imap, "postoffice.reston.mci.net")
        .dangerous_fixed_nonce(v["challenge"].clone());
    let mut server = ServerSession::new(Mechanism::CramMd5, &ctx).unwrap();
    let start = server.start(None);
    let auth = drive(&mut server, start, &backend, |c| {
        assert_eq!(c, v["challenge"].as_bytes());
        Ok(v["response"].clone().into_bytes())
    })
    .unwrap();
    assert_eq!(auth.authcid(), "tim");

    let ctx = ClientContext::new(Service::Imap, "postoffice.reston.mci.net");
    let creds = Credentials::new(v["user"].clone(), v["password"].clone());
    let mut client = ClientSession::new(Mechanism::CramMd5, creds, &ctx).unwrap();
    assert_eq!(client.initial_response().unwrap(), None);
    assert_eq!(
        client.step(v["challenge"].as_bytes()).unwrap(),
        v["response"].as_bytes()
    );
}

#[test]
fn rfc2831_digest_md5() {
    let v = vector("rfc2831-digest-md5.txt");
    let backend = MemoryBackend::new()
        .with_user(&v["user"], &v["password"])
        .unwrap();
    let ctx = ServerContext::new(Service::Imap, v["host"].clone())
        .dangerous_fixed_nonce(v["nonce"].clone());
    let mut server = ServerSession::new(Mechanism::DigestMd5, &ctx).unwrap();
    let mut round = 0;
    let start = server.start(None);
    let auth = drive(&mut server, start, &backend, |c| {
        round += 1;
        let c = std::str::from_utf8(c).unwrap();
        if round == 1 {
            assert!(c.contains("nonce=\"OA6MG9tEQGm2hh\""), "{c}");
            assert!(c.contains("qop=\"auth\""));
            Ok(v["response"].clone().into_bytes())
        } else {
            assert_eq!(c, v["final"]);
            Ok(Vec::new())
        }
    })
    .unwrap();
    assert_eq!(auth.authcid(), "chris");

    // Client: the RFC's challenge and cnonce give the RFC's response value
    // and accept the RFC's rspauth.
    let ctx = ClientContext::new(Service::Imap, v["host"].clone())
        .dangerous_fixed_nonce(v["cnonce"].clone());
    let creds = Credentials::new(v["user"].clone(), v["password"].clone());
    let mut client = ClientSession::new(Mechanism::DigestMd5, creds, &ctx).unwrap();
    assert_eq!(client.initial_response().unwrap(), None);
    let resp = String::from_utf8(client.step(v["challenge"].as_bytes()).unwrap()).unwrap();
    assert!(
        resp.contains(&format!("response={}", v["response.value"])),
        "{resp}"
    );
    assert!(resp.contains("digest-uri=\"imap/elwood.innosoft.com\""));
    assert!(!client.is_complete());
    assert_eq!(client.step(v["final"].as_bytes()).unwrap(), b"");
    assert!(client.is_complete());
}

fn scram_vector(file: &str, mechanism: Mechanism, algorithm: ScramAlgorithm) {
    let v = vector(file);
    let salt = STANDARD.decode(&v["salt"]).unwrap();
    let iterations: u32 = v["iterations"].parse().unwrap();
    let secret = ScramSecret::derive(
        algorithm,
        &Password::new(v["password"].clone()),
        &salt,
        iterations,
    )
    .unwrap();
    // The server verifies from the stored keys only: the backend has no
    // cleartext password for this user.
    let backend = MemoryBackend::new().with_scram_secret(&v["user"], secret);
    let ctx = ServerContext::new(Service::Imap, "mail.example")
        .dangerous_fixed_nonce(v["server_nonce"].clone());
    let mut server = ServerSession::new(mechanism, &ctx).unwrap();
    let mut round = 0;
    let start = server.start(Some(v["client_first"].as_bytes()));
    let auth = drive(&mut server, start, &backend, |c| {
        round += 1;
        let c = std::str::from_utf8(c).unwrap();
        if round == 1 {
            assert_eq!(c, v["server_first"]);
            Ok(v["client_final"].clone().into_bytes())
        } else {
            assert_eq!(c, v["server_final"]);
            Ok(Vec::new())
        }
    })
    .unwrap();
    assert_eq!(auth.authcid(), v["user"]);
    assert_eq!(auth.mechanism(), mechanism);

    let ctx = ClientContext::new(Service::Imap, "mail.example")
        .dangerous_fixed_nonce(v["client_nonce"].clone());
    let creds = Credentials::new(v["user"].clone(), v["password"].clone());
    let mut client = ClientSession::new(mechanism, creds, &ctx).unwrap();
    assert_eq!(
        client.initial_response().unwrap().unwrap(),
        v["client_first"].as_bytes()
    );
    assert_eq!(
        client.step(v["server_first"].as_bytes()).unwrap(),
        v["client_final"].as_bytes()
    );
    assert!(!client.is_complete());
    assert_eq!(client.step(v["server_final"].as_bytes()).unwrap(), b"");
    assert!(client.is_complete());
}

#[test]
fn rfc5802_scram_sha_1() {
    scram_vector(
        "rfc5802-scram-sha-1.txt",
        Mechanism::ScramSha1,
        ScramAlgorithm::Sha1,
    );
}

#[test]
fn rfc7677_scram_sha_256() {
    scram_vector(
        "rfc7677-scram-sha-256.txt",
        Mechanism::ScramSha256,
        ScramAlgorithm::Sha256,
    );
}

#[test]
fn rfc1939_apop() {
    let v = vector("rfc1939-apop.txt");
    assert!(v["greeting"].ends_with(&v["timestamp"]));
    let backend = MemoryBackend::new()
        .with_user(&v["user"], &v["password"])
        .unwrap();
    let ctx = ServerContext::new(Service::Pop, "dbc.mtview.ca.us")
        .dangerous_fixed_nonce(v["timestamp"].clone());
    let mut server = ServerSession::new(Mechanism::Apop, &ctx).unwrap();
    assert_eq!(server.apop_timestamp().unwrap(), v["timestamp"]);
    let args = v["command"].strip_prefix("APOP ").unwrap();
    let start = server.start(Some(args.as_bytes()));
    let auth = drive(&mut server, start, &backend, |_| panic!("no challenge")).unwrap();
    assert_eq!(auth.authcid(), "mrose");

    let ctx = ClientContext::new(Service::Pop, "dbc.mtview.ca.us");
    let creds = Credentials::new(v["user"].clone(), v["password"].clone());
    let mut client = ClientSession::new(Mechanism::Apop, creds, &ctx).unwrap();
    assert_eq!(client.initial_response().unwrap(), None);
    assert_eq!(
        client.step(v["timestamp"].as_bytes()).unwrap(),
        args.as_bytes()
    );
}

#[test]
fn server_step_after_done_is_refused() {
    let backend = common::backend();
    let ctx = ServerContext::new(Service::Imap, "mail.example");
    let mut server = ServerSession::new(Mechanism::Plain, &ctx).unwrap();
    let Step::Verify(req) = server.start(Some(b"\0alice\0alice-pw")).unwrap() else {
        panic!("expected a request")
    };
    assert!(matches!(
        server.answer(backend.answer(&req)),
        Ok(Step::Done(_))
    ));
    assert!(server.is_finished());
    assert!(server.step(b"\0alice\0alice-pw").is_err());
}
