//! Negative cases per mechanism, table-driven: each row is a mechanism, a
//! connection, the client's messages and the error the server must give.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::drive;
use portcullis_sasl::danger::FixedNonce as _;
use portcullis_sasl::{
    Authenticated, ClientContext, ClientSession, Credentials, Error, ExternalIdentity, Mechanism,
    MemoryBackend, Password, ScramAlgorithm, ScramSecret, ServerContext, ServerSession, Service,
    TlsState, TlsVersion,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Ok,
    Malformed,
    Protocol,
    ChannelBinding,
    Bad,
    Authz,
    Unavailable,
    TooLong,
    Saslprep,
    NoMechanism,
    Aborted,
}

fn classify(r: &Result<Authenticated, Error>) -> Expect {
    match r {
        Ok(_) => Expect::Ok,
        Err(Error::Malformed { .. }) => Expect::Malformed,
        Err(Error::Protocol { .. }) => Expect::Protocol,
        Err(Error::ChannelBinding { .. }) => Expect::ChannelBinding,
        Err(Error::BadCredentials) => Expect::Bad,
        Err(Error::AuthorizationFailed) => Expect::Authz,
        Err(Error::Unavailable) => Expect::Unavailable,
        Err(Error::TooLong) => Expect::TooLong,
        Err(Error::Saslprep) => Expect::Saslprep,
        Err(Error::MechanismUnavailable) => Expect::NoMechanism,
        Err(e) => panic!("unexpected error {e:?}"),
    }
}

const HOST: &str = "elwood.innosoft.com";
const DIGEST_NONCE: &str = "OA6MG9tEQGm2hh";
const SCRAM_SNONCE: &str = "3rfcNHYJY1ZVvWVs7j";
const CB: &[u8] = b"exporter-data-exporter-data-0123";

fn backend() -> MemoryBackend {
    let secret = ScramSecret::derive(
        ScramAlgorithm::Sha1,
        &Password::new("pencil"),
        b"A%\xc2G\xe4:\xb1\xe9<m\xffv",
        4096,
    )
    .unwrap();
    common::backend()
        .with_user("chris", "secret")
        .unwrap()
        .with_scram_secret("user", secret)
        .with_identity(ExternalIdentity::Name("cert-alice".into()), "alice")
}

fn ctx() -> ServerContext {
    ServerContext::new(Service::Imap, HOST)
}

fn run(
    m: Mechanism,
    ctx: &ServerContext,
    backend: &MemoryBackend,
    initial: Option<&[u8]>,
    responses: &[&[u8]],
) -> Result<Authenticated, Error> {
    let mut server = ServerSession::new(m, ctx)?;
    let mut it = responses.iter();
    let start = server.start(initial);
    drive(&mut server, start, backend, |_| {
        it.next().map(|r| r.to_vec()).ok_or(Error::Aborted)
    })
}

/// The RFC 2831 response with `from` replaced by `to`.
fn digest(from: &str, to: &str) -> Vec<u8> {
    const GOOD: &str = r#"charset=utf-8,username="chris",realm="elwood.innosoft.com",nonce="OA6MG9tEQGm2hh",nc=00000001,cnonce="OA6MHXh6VqTrRk",digest-uri="imap/elwood.innosoft.com",response=d388dad90d4bbd760a152321f2143af7,qop=auth"#;
    assert!(from.is_empty() || GOOD.contains(from), "{from}");
    if from.is_empty() {
        GOOD.as_bytes().to_vec()
    } else {
        GOOD.replacen(from, to, 1).into_bytes()
    }
}

const SCRAM_FIRST: &[u8] = b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL";
const SCRAM_FINAL: &str =
    "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=";

fn scram_final(from: &str, to: &str) -> Vec<u8> {
    assert!(SCRAM_FINAL.contains(from));
    SCRAM_FINAL.replacen(from, to, 1).into_bytes()
}

#[test]
fn negative_table() {
    let b = backend();
    let mut down = backend();
    down.set_unavailable(true);
    let scram_ctx = ctx().dangerous_fixed_nonce(SCRAM_SNONCE);
    let digest_ctx = ctx().dangerous_fixed_nonce(DIGEST_NONCE);
    let tls13 = TlsState::new(TlsVersion::Tls13, false).with_tls_exporter(CB.to_vec());
    let plus_ctx = scram_ctx
        .clone()
        .with_tls(tls13)
        .advertising(&[Mechanism::ScramSha1Plus, Mechanism::ScramSha1]);
    let tls12_no_ems = TlsState::new(TlsVersion::Tls12, false)
        .with_tls_exporter(CB.to_vec())
        .with_tls_server_end_point(vec![7; 32]);
    let plus12_ctx = scram_ctx.clone().with_tls(tls12_no_ems);
    let ext_ctx = ctx().with_external(ExternalIdentity::Name("cert-alice".into()));
    let long = vec![b'a'; 2000];
    let long_plain = [b"\0".as_slice(), &long, b"\0pw"].concat();
    let d = digest;
    let f = scram_final;

    type Row<'a> = (
        &'a str,
        Mechanism,
        &'a ServerContext,
        &'a MemoryBackend,
        Option<&'a [u8]>,
        Vec<Vec<u8>>,
        Expect,
    );
    let c = ctx();
    let rows: Vec<Row<'_>> = vec![
        // PLAIN
        (
            "plain ok",
            Mechanism::Plain,
            &c,
            &b,
            Some(b"\0alice\0alice-pw"),
            vec![],
            Expect::Ok,
        ),
        (
            "plain one NUL",
            Mechanism::Plain,
            &c,
            &b,
            Some(b"alice\0alice-pw"),
            vec![],
            Expect::Malformed,
        ),
        (
            "plain no NUL",
            Mechanism::Plain,
            &c,
            &b,
            Some(b"alice"),
            vec![],
            Expect::Malformed,
        ),
        (
            "plain three NULs",
            Mechanism::Plain,
            &c,
            &b,
            Some(b"\0alice\0alice-pw\0"),
            vec![],
            Expect::Malformed,
        ),
        (
            "plain empty authcid",
            Mechanism::Plain,
            &c,
            &b,
            Some(b"\0\0alice-pw"),
            vec![],
            Expect::Malformed,
        ),
        (
            "plain empty password",
            Mechanism::Plain,
            &c,
            &b,
            Some(b"\0alice\0"),
            vec![],
            Expect::Malformed,
        ),
        (
            "plain empty message",
            Mechanism::Plain,
            &c,
            &b,
            Some(b""),
            vec![],
            Expect::Malformed,
        ),
        (
            "plain bad UTF-8",
            Mechanism::Plain,
            &c,
            &b,
            Some(b"\0al\xffce\0pw"),
            vec![],
            Expect::Malformed,
        ),
        (
            "plain SASLprep prohibited",
            Mechanism::Plain,
            &c,
            &b,
            Some(b"\0al\x07ice\0pw"),
            vec![],
            Expect::Saslprep,
        ),
        (
            "plain field too long",
            Mechanism::Plain,
            &c,
            &b,
            Some(&long_plain),
            vec![],
            Expect::TooLong,
        ),
        (
            "plain wrong password",
            Mechanism::Plain,
            &c,
            &b,
            Some(b"\0alice\0nope"),
            vec![],
            Expect::Bad,
        ),
        (
            "plain unknown user",
            Mechanism::Plain,
            &c,
            &b,
            Some(b"\0mallory\0alice-pw"),
            vec![],
            Expect::Bad,
        ),
        (
            "plain directory down",
            Mechanism::Plain,
            &c,
            &down,
            Some(b"\0alice\0alice-pw"),
            vec![],
            Expect::Unavailable,
        ),
        (
            "plain proxy refused",
            Mechanism::Plain,
            &c,
            &b,
            Some(b"admin\0alice\0alice-pw"),
            vec![],
            Expect::Authz,
        ),
        (
            "plain proxy allowed",
            Mechanism::Plain,
            &c,
            &b,
            Some(b"alice\0admin\0admin-pw"),
            vec![],
            Expect::Ok,
        ),
        (
            "plain no IR",
            Mechanism::Plain,
            &c,
            &b,
            None,
            vec![b"\0alice\0alice-pw".to_vec()],
            Expect::Ok,
        ),
        // LOGIN
        (
            "login ok",
            Mechanism::Login,
            &c,
            &b,
            None,
            vec![b"alice".to_vec(), b"alice-pw".to_vec()],
            Expect::Ok,
        ),
        (
            "login empty user",
            Mechanism::Login,
            &c,
            &b,
            None,
            vec![b"".to_vec()],
            Expect::Malformed,
        ),
        (
            "login NUL in user",
            Mechanism::Login,
            &c,
            &b,
            None,
            vec![b"al\0ice".to_vec()],
            Expect::Malformed,
        ),
        (
            "login empty password",
            Mechanism::Login,
            &c,
            &b,
            Some(b"alice"),
            vec![b"".to_vec()],
            Expect::Malformed,
        ),
        (
            "login wrong password",
            Mechanism::Login,
            &c,
            &b,
            Some(b"alice"),
            vec![b"x".to_vec()],
            Expect::Bad,
        ),
        // CRAM-MD5
        (
            "cram initial response",
            Mechanism::CramMd5,
            &c,
            &b,
            Some(b"alice 0123"),
            vec![],
            Expect::Malformed,
        ),
        (
            "cram no space",
            Mechanism::CramMd5,
            &c,
            &b,
            None,
            vec![b"alice".to_vec()],
            Expect::Malformed,
        ),
        (
            "cram short digest",
            Mechanism::CramMd5,
            &c,
            &b,
            None,
            vec![b"alice 0123".to_vec()],
            Expect::Malformed,
        ),
        (
            "cram non-hex digest",
            Mechanism::CramMd5,
            &c,
            &b,
            None,
            vec![b"alice zz3456789012345678901234567890".to_vec()],
            Expect::Malformed,
        ),
        (
            "cram empty user",
            Mechanism::CramMd5,
            &c,
            &b,
            None,
            vec![b" 01234567890123456789012345678901".to_vec()],
            Expect::Malformed,
        ),
        (
            "cram wrong digest",
            Mechanism::CramMd5,
            &c,
            &b,
            None,
            vec![b"alice 01234567890123456789012345678901".to_vec()],
            Expect::Bad,
        ),
        (
            "cram unknown user",
            Mechanism::CramMd5,
            &c,
            &b,
            None,
            vec![b"mallory 01234567890123456789012345678901".to_vec()],
            Expect::Bad,
        ),
        (
            "cram directory down",
            Mechanism::CramMd5,
            &c,
            &down,
            None,
            vec![b"alice 01234567890123456789012345678901".to_vec()],
            Expect::Unavailable,
        ),
        // DIGEST-MD5
        (
            "digest ok",
            Mechanism::DigestMd5,
            &digest_ctx,
            &b,
            None,
            vec![d("", ""), vec![]],
            Expect::Ok,
        ),
        (
            "digest initial response",
            Mechanism::DigestMd5,
            &digest_ctx,
            &b,
            Some(b"x"),
            vec![],
            Expect::Malformed,
        ),
        (
            "digest qop=auth-int",
            Mechanism::DigestMd5,
            &digest_ctx,
            &b,
            None,
            vec![d("qop=auth", "qop=auth-int")],
            Expect::Protocol,
        ),
        (
            "digest qop=auth-conf",
            Mechanism::DigestMd5,
            &digest_ctx,
            &b,
            None,
            vec![d("qop=auth", "qop=auth-conf,cipher=rc4")],
            Expect::Protocol,
        ),
        (
            "digest cipher",
            Mechanism::DigestMd5,
            &digest_ctx,
            &b,
            None,
            vec![d("qop=auth", "qop=auth,cipher=3des")],
            Expect::Protocol,
        ),
        (
            "digest duplicate username",
            Mechanism::DigestMd5,
            &digest_ctx,
            &b,
            None,
            vec![d("qop=auth", "qop=auth,username=\"chris\"")],
            Expect::Protocol,
        ),
        (
            "digest duplicate nc",
            Mechanism::DigestMd5,
            &digest_ctx,
            &b,
            None,
            vec![d("nc=00000001", "nc=00000001,nc=00000001")],
            Expect::Protocol,
        ),
        (
            "digest missing cnonce",
            Mechanism::DigestMd5,
            &digest_ctx,
            &b,
            None,
            vec![d("cnonce=\"OA6MHXh6VqTrRk\",", "")],
            Expect::Malformed,
        ),
        (
            "digest empty cnonce",
            Mechanism::DigestMd5,
            &digest_ctx,
            &b,
            None,
            vec![d("cnonce=\"OA6MHXh6VqTrRk\"", "cnonce=\"\"")],
            Expect::Malformed,
        ),
        (
            "digest missing nonce",
            Mechanism::DigestMd5,
            &digest_ctx,
            &b,
            None,
            vec![d("nonce=\"OA6MG9tEQGm2hh\",", "")],
            Expect::Malformed,
        ),
        (
            "digest empty nonce",
            Mechanism::DigestMd5,
            &digest_ctx,
            &b,
            None,
            vec![d("nonce=\"OA6MG9tEQGm2hh\"", "nonce=\"\"")],
            Expect::Malformed,
        ),
        (
            "digest wrong nonce",
            Mechanism::DigestMd5,
            &digest_ctx,
            &b,
            None,
            vec![d("nonce=\"OA6MG9tEQGm2hh\"", "nonce=\"OA6MG9tEQGm2hX\"")],
            Expect::Protocol,
        ),
        (
            "digest nc=2",
            Mechanism::DigestMd5,
            &digest_ctx,
            &b,
            None,
            vec![d("nc=00000001", "nc=00000002")],
            Expect::Protocol,
        ),
        (
            "digest nc not 8 digits",
            Mechanism::DigestMd5,
            &digest_ctx,
            &b,
            None,
            vec![d("nc=00000001", "nc=1")],
            Expect::Protocol,
        ),
        (
            "digest wrong service",
            Mechanism::DigestMd5,
            &digest_ctx,
            &b,
            None,
            vec![d("imap/", "smtp/")],
            Expect::Protocol,
        ),
        (
            "digest wrong host",
            Mechanism::DigestMd5,
            &digest_ctx,
            &b,
            None,
            vec![d("imap/elwood.innosoft.com", "imap/evil.example")],
            Expect::Protocol,
        ),
        (
            "digest missing host",
            Mechanism::DigestMd5,
            &digest_ctx,
            &b,
            None,
            vec![d("imap/elwood.innosoft.com", "imap")],
            Expect::Protocol,
        ),
        (
            "digest unknown charset",
            Mechanism::DigestMd5,
            &digest_ctx,
            &b,
            None,
            vec![d("charset=utf-8", "charset=iso-8859-2")],
            Expect::Protocol,
        ),
        (
            "digest realm not offered",
            Mechanism::DigestMd5,
            &digest_ctx,
            &b,
            None,
            vec![d("realm=\"elwood.innosoft.com\"", "realm=\"other\"")],
            Expect::Protocol,
        ),
        (
            "digest unterminated quote",
            Mechanism::DigestMd5,
            &digest_ctx,
            &b,
            None,
            vec![b"username=\"chris".to_vec()],
            Expect::Malformed,
        ),
        (
            "digest garbage",
            Mechanism::DigestMd5,
            &digest_ctx,
            &b,
            None,
            vec![b"=,=".to_vec()],
            Expect::Malformed,
        ),
        (
            "digest wrong response",
            Mechanism::DigestMd5,
            &digest_ctx,
            &b,
            None,
            vec![d("response=d388", "response=e388")],
            Expect::Bad,
        ),
        (
            "digest short response",
            Mechanism::DigestMd5,
            &digest_ctx,
            &b,
            None,
            vec![d(
                "response=d388dad90d4bbd760a152321f2143af7",
                "response=d388",
            )],
            Expect::Malformed,
        ),
        (
            "digest ack not empty",
            Mechanism::DigestMd5,
            &digest_ctx,
            &b,
            None,
            vec![d("", ""), b"x".to_vec()],
            Expect::Protocol,
        ),
        // APOP
        (
            "apop no digest",
            Mechanism::Apop,
            &c,
            &b,
            Some(b"alice"),
            vec![],
            Expect::Malformed,
        ),
        (
            "apop short digest",
            Mechanism::Apop,
            &c,
            &b,
            Some(b"alice c4c9"),
            vec![],
            Expect::Malformed,
        ),
        (
            "apop wrong digest",
            Mechanism::Apop,
            &c,
            &b,
            Some(b"alice c4c9334bac560ecc979e58001b3e22fb"),
            vec![],
            Expect::Bad,
        ),
        (
            "apop missing command",
            Mechanism::Apop,
            &c,
            &b,
            None,
            vec![],
            Expect::Malformed,
        ),
        // ANONYMOUS
        (
            "anonymous ok",
            Mechanism::Anonymous,
            &c,
            &b,
            Some(b"me@example.net"),
            vec![],
            Expect::Ok,
        ),
        (
            "anonymous empty trace",
            Mechanism::Anonymous,
            &c,
            &b,
            Some(b""),
            vec![],
            Expect::Ok,
        ),
        (
            "anonymous trace too long",
            Mechanism::Anonymous,
            &c,
            &b,
            Some(&[b'x'; 256]),
            vec![],
            Expect::Malformed,
        ),
        (
            "anonymous control char",
            Mechanism::Anonymous,
            &c,
            &b,
            Some(b"a\nb"),
            vec![],
            Expect::Malformed,
        ),
        (
            "anonymous bad UTF-8",
            Mechanism::Anonymous,
            &c,
            &b,
            Some(b"\xc3"),
            vec![],
            Expect::Malformed,
        ),
        // EXTERNAL
        (
            "external no certificate",
            Mechanism::External,
            &c,
            &b,
            Some(b""),
            vec![],
            Expect::NoMechanism,
        ),
        (
            "external ok",
            Mechanism::External,
            &ext_ctx,
            &b,
            Some(b""),
            vec![],
            Expect::Ok,
        ),
        (
            "external own authzid",
            Mechanism::External,
            &ext_ctx,
            &b,
            Some(b"alice"),
            vec![],
            Expect::Ok,
        ),
        (
            "external other authzid",
            Mechanism::External,
            &ext_ctx,
            &b,
            Some(b"admin"),
            vec![],
            Expect::Authz,
        ),
        (
            "external NUL",
            Mechanism::External,
            &ext_ctx,
            &b,
            Some(b"al\0ice"),
            vec![],
            Expect::Malformed,
        ),
        (
            "external directory down",
            Mechanism::External,
            &ext_ctx,
            &down,
            Some(b""),
            vec![],
            Expect::Unavailable,
        ),
        // SCRAM
        (
            "scram ok",
            Mechanism::ScramSha1,
            &scram_ctx,
            &b,
            Some(SCRAM_FIRST),
            vec![SCRAM_FINAL.as_bytes().to_vec(), vec![]],
            Expect::Ok,
        ),
        (
            "scram m= extension",
            Mechanism::ScramSha1,
            &scram_ctx,
            &b,
            Some(b"n,,m=ext,n=user,r=abc"),
            vec![],
            Expect::Protocol,
        ),
        (
            "scram no gs2 header",
            Mechanism::ScramSha1,
            &scram_ctx,
            &b,
            Some(b"n=user,r=abc"),
            vec![],
            Expect::Malformed,
        ),
        (
            "scram bad flag",
            Mechanism::ScramSha1,
            &scram_ctx,
            &b,
            Some(b"x,,n=user,r=abc"),
            vec![],
            Expect::Malformed,
        ),
        (
            "scram p= on non-PLUS",
            Mechanism::ScramSha1,
            &plus_ctx,
            &b,
            Some(b"p=tls-exporter,,n=user,r=abc"),
            vec![],
            Expect::ChannelBinding,
        ),
        (
            "scram y while PLUS advertised",
            Mechanism::ScramSha1,
            &plus_ctx,
            &b,
            Some(b"y,,n=user,r=abc"),
            vec![],
            Expect::ChannelBinding,
        ),
        (
            "scram y without PLUS",
            Mechanism::ScramSha1,
            &scram_ctx,
            &b,
            Some(b"y,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"),
            vec![f("c=biws", "c=eSws")],
            Expect::Bad,
        ),
        (
            "scram-plus n flag",
            Mechanism::ScramSha1Plus,
            &plus_ctx,
            &b,
            Some(b"n,,n=user,r=abc"),
            vec![],
            Expect::ChannelBinding,
        ),
        (
            "scram-plus unknown cb type",
            Mechanism::ScramSha1Plus,
            &plus_ctx,
            &b,
            Some(b"p=tls-unique,,n=user,r=abc"),
            vec![],
            Expect::ChannelBinding,
        ),
        (
            "scram-plus exporter without EMS",
            Mechanism::ScramSha1Plus,
            &plus12_ctx,
            &b,
            Some(b"p=tls-exporter,,n=user,r=abc"),
            vec![],
            Expect::ChannelBinding,
        ),
        (
            "scram-plus on plaintext",
            Mechanism::ScramSha1Plus,
            &scram_ctx,
            &b,
            Some(b"p=tls-exporter,,n=user,r=abc"),
            vec![],
            Expect::NoMechanism,
        ),
        (
            "scram bad saslname",
            Mechanism::ScramSha1,
            &scram_ctx,
            &b,
            Some(b"n,,n=us=er,r=abc"),
            vec![],
            Expect::Malformed,
        ),
        (
            "scram empty user",
            Mechanism::ScramSha1,
            &scram_ctx,
            &b,
            Some(b"n,,n=,r=abc"),
            vec![],
            Expect::Malformed,
        ),
        (
            "scram empty nonce",
            Mechanism::ScramSha1,
            &scram_ctx,
            &b,
            Some(b"n,,n=user,r="),
            vec![],
            Expect::Malformed,
        ),
        (
            "scram missing nonce",
            Mechanism::ScramSha1,
            &scram_ctx,
            &b,
            Some(b"n,,n=user"),
            vec![],
            Expect::Malformed,
        ),
        (
            "scram empty authzid",
            Mechanism::ScramSha1,
            &scram_ctx,
            &b,
            Some(b"n,a=,n=user,r=abc"),
            vec![],
            Expect::Malformed,
        ),
        (
            "scram wrong nonce",
            Mechanism::ScramSha1,
            &scram_ctx,
            &b,
            Some(SCRAM_FIRST),
            vec![f("NHYJY", "NHYJZ")],
            Expect::Protocol,
        ),
        (
            "scram truncated nonce",
            Mechanism::ScramSha1,
            &scram_ctx,
            &b,
            Some(SCRAM_FIRST),
            vec![f("3rfcNHYJY1ZVvWVs7j", "")],
            Expect::Protocol,
        ),
        (
            "scram wrong cbind",
            Mechanism::ScramSha1,
            &scram_ctx,
            &b,
            Some(SCRAM_FIRST),
            vec![f("c=biws", "c=eSws")],
            Expect::ChannelBinding,
        ),
        (
            "scram bad base64 cbind",
            Mechanism::ScramSha1,
            &scram_ctx,
            &b,
            Some(SCRAM_FIRST),
            vec![f("c=biws", "c=b!ws")],
            Expect::Malformed,
        ),
        (
            "scram bad base64 proof",
            Mechanism::ScramSha1,
            &scram_ctx,
            &b,
            Some(SCRAM_FIRST),
            vec![f("p=v0X8", "p=v*X8")],
            Expect::Malformed,
        ),
        (
            "scram short proof",
            Mechanism::ScramSha1,
            &scram_ctx,
            &b,
            Some(SCRAM_FIRST),
            vec![f("v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=", "v0X8")],
            Expect::Malformed,
        ),
        (
            "scram missing proof",
            Mechanism::ScramSha1,
            &scram_ctx,
            &b,
            Some(SCRAM_FIRST),
            vec![f(",p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=", "")],
            Expect::Malformed,
        ),
        (
            "scram wrong proof",
            Mechanism::ScramSha1,
            &scram_ctx,
            &b,
            Some(SCRAM_FIRST),
            vec![f("v0X8v3", "w0X8v3")],
            Expect::Bad,
        ),
        (
            "scram unknown user",
            Mechanism::ScramSha1,
            &scram_ctx,
            &b,
            Some(b"n,,n=nobody,r=fyko+d2lbbFgONRv9qkxdawL"),
            vec![SCRAM_FINAL.as_bytes().to_vec()],
            Expect::Bad,
        ),
        (
            "scram directory down",
            Mechanism::ScramSha1,
            &scram_ctx,
            &down,
            Some(SCRAM_FIRST),
            vec![],
            Expect::Unavailable,
        ),
        (
            "scram ack not empty",
            Mechanism::ScramSha1,
            &scram_ctx,
            &b,
            Some(SCRAM_FIRST),
            vec![SCRAM_FINAL.as_bytes().to_vec(), b"x".to_vec()],
            Expect::Protocol,
        ),
        (
            "scram abort mid-exchange",
            Mechanism::ScramSha1,
            &scram_ctx,
            &b,
            Some(SCRAM_FIRST),
            vec![],
            Expect::Aborted,
        ),
    ];
    let mut failures = Vec::new();
    for (name, m, ctx, backend, initial, responses, expect) in &rows {
        let responses: Vec<&[u8]> = responses.iter().map(Vec::as_slice).collect();
        let r = run(*m, ctx, backend, *initial, &responses);
        let got = match &r {
            Err(Error::Aborted) => Expect::Aborted,
            r => classify(r),
        };
        if got != *expect {
            failures.push(format!("{name}: expected {expect:?}, got {r:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn our_client_sends_y_and_a_server_that_advertised_plus_refuses_it() {
    let tls = TlsState::new(TlsVersion::Tls13, false).with_tls_exporter(CB.to_vec());
    let cctx = ClientContext::new(Service::Imap, HOST).with_tls(tls.clone());
    assert!(!cctx.server_offers_plus);
    let mut client = ClientSession::new(
        Mechanism::ScramSha256,
        Credentials::new("alice", "alice-pw"),
        &cctx,
    )
    .unwrap();
    let first = client.initial_response().unwrap().unwrap();
    assert!(first.starts_with(b"y,,"));
    let sctx = ctx()
        .with_tls(tls.clone())
        .advertising(&[Mechanism::ScramSha256Plus, Mechanism::ScramSha256]);
    assert!(sctx.plus_advertised());
    let mut server = ServerSession::new(Mechanism::ScramSha256, &sctx).unwrap();
    assert!(matches!(
        server.start(Some(&first)),
        Err(Error::ChannelBinding { .. })
    ));
    // Without -PLUS on offer, "y" is fine: TLS alone does not say that
    // -PLUS was advertised.
    assert!(!ctx().with_tls(tls.clone()).plus_advertised());
    let sctx = ctx().with_tls(tls).advertising(&[Mechanism::ScramSha256]);
    assert!(!sctx.plus_advertised());
    let (r, client) = common::exchange(
        Mechanism::ScramSha256,
        &sctx,
        &cctx,
        Credentials::new("alice", "alice-pw"),
        &backend(),
    );
    assert_eq!(r.unwrap().authcid(), "alice");
    assert!(client.unwrap().is_complete());
}

#[test]
fn tls_server_end_point_binding_round_trip() {
    // TLS 1.2 without EMS: tls-exporter is unsafe, so our client and server
    // use tls-server-end-point.
    let tls = TlsState::new(TlsVersion::Tls12, false)
        .with_tls_exporter(CB.to_vec())
        .with_tls_server_end_point(vec![9; 32]);
    assert_eq!(
        tls.preferred_channel_binding(),
        Some(portcullis_sasl::ChannelBindingType::TlsServerEndPoint)
    );
    let cctx = ClientContext::new(Service::Imap, HOST).with_tls(tls.clone());
    let sctx = ctx().with_tls(tls);
    let (r, client) = common::exchange(
        Mechanism::ScramSha256Plus,
        &sctx,
        &cctx,
        Credentials::new("alice", "alice-pw"),
        &backend(),
    );
    let auth = r.unwrap();
    assert_eq!(
        auth.channel_binding(),
        Some(portcullis_sasl::ChannelBindingType::TlsServerEndPoint)
    );
    assert!(client.unwrap().is_complete());
    // A different certificate hash on the server side (a MITM) fails.
    let other = TlsState::new(TlsVersion::Tls12, false).with_tls_server_end_point(vec![8; 32]);
    let (r, _) = common::exchange(
        Mechanism::ScramSha256Plus,
        &ctx().with_tls(other),
        &cctx,
        Credentials::new("alice", "alice-pw"),
        &backend(),
    );
    assert!(matches!(r, Err(Error::ChannelBinding { .. })), "{r:?}");
}

#[test]
fn scram_client_rejects_a_forged_server_signature() {
    let cctx =
        ClientContext::new(Service::Imap, HOST).dangerous_fixed_nonce("fyko+d2lbbFgONRv9qkxdawL");
    let mut client = ClientSession::new(
        Mechanism::ScramSha1,
        Credentials::new("user", "pencil"),
        &cctx,
    )
    .unwrap();
    client.initial_response().unwrap();
    client
        .step(b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096")
        .unwrap();
    assert_eq!(
        client.step(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ"),
        Err(Error::ServerAuthentication)
    );
    assert_eq!(
        client.step(b"e=invalid-proof"),
        Err(Error::ServerAuthentication)
    );
    assert!(!client.is_complete());
    // Nonce not extending ours, and absurd iteration counts, are refused.
    let mut client = ClientSession::new(
        Mechanism::ScramSha1,
        Credentials::new("user", "pencil"),
        &cctx,
    )
    .unwrap();
    client.initial_response().unwrap();
    assert!(client.step(b"r=other,s=QSXCR+Q6sek8bf92,i=4096").is_err());
    let mut client = ClientSession::new(
        Mechanism::ScramSha1,
        Credentials::new("user", "pencil"),
        &cctx,
    )
    .unwrap();
    client.initial_response().unwrap();
    assert!(
        client
            .step(b"r=fyko+d2lbbFgONRv9qkxdawLx,s=QSXCR+Q6sek8bf92,i=4000000000")
            .is_err()
    );
}

#[test]
fn scram_unknown_user_still_gets_a_server_first_message() {
    // The reply to an unknown user looks like any other: no user
    // enumeration from the first round.
    let b = backend();
    let mut server = ServerSession::new(Mechanism::ScramSha1, &ctx()).unwrap();
    let step = server.start(Some(b"n,,n=nobody,r=abc")).unwrap();
    let portcullis_sasl::Step::Verify(req) = step else {
        panic!()
    };
    let step = server.answer(b.answer(&req)).unwrap();
    let portcullis_sasl::Step::Challenge(c) = step else {
        panic!()
    };
    let c = String::from_utf8(c).unwrap();
    assert!(
        c.starts_with("r=abc") && c.contains(",s=") && c.ends_with(",i=4096"),
        "{c}"
    );
}

#[test]
fn answers_of_the_wrong_kind_are_api_misuse() {
    let mut server = ServerSession::new(Mechanism::Plain, &ctx()).unwrap();
    let _ = server.start(Some(b"\0alice\0alice-pw")).unwrap();
    assert!(matches!(
        server.answer(portcullis_sasl::Answer::Identity(
            portcullis_sasl::Account::new("x")
        )),
        Err(Error::ApiMisuse(_))
    ));
    let mut server = ServerSession::new(Mechanism::Plain, &ctx()).unwrap();
    assert!(matches!(server.step(b"x"), Err(Error::ApiMisuse(_))));
    let mut server = ServerSession::new(Mechanism::Plain, &ctx()).unwrap();
    let _ = server.start(None).unwrap();
    assert!(matches!(server.start(None), Err(Error::ApiMisuse(_))));
}

#[test]
fn oversized_client_messages_are_refused() {
    let big = vec![b'a'; portcullis_sasl::MAX_CLIENT_MESSAGE + 1];
    for m in [
        Mechanism::Plain,
        Mechanism::ScramSha256,
        Mechanism::Anonymous,
    ] {
        let mut server = ServerSession::new(m, &ctx()).unwrap();
        assert_eq!(server.start(Some(&big)).unwrap_err(), Error::TooLong, "{m}");
    }
}

/// A DIGEST-MD5 server that does not offer charset=utf-8 reads names in
/// ISO 8859-1: the client sends the very bytes it hashed, so a name like
/// `jörg` is understood and verified.
#[test]
fn digest_md5_client_sends_what_it_hashes_without_utf8() {
    let backend = MemoryBackend::new().with_user("jörg", "pässwörd").unwrap();
    let sctx = ServerContext::new(Service::Imap, "h");
    let cctx = ClientContext::new(Service::Imap, "h");
    let mut client = ClientSession::new(
        Mechanism::DigestMd5,
        Credentials::new("jörg", "pässwörd"),
        &cctx,
    )
    .unwrap();
    let mut server = ServerSession::new(Mechanism::DigestMd5, &sctx).unwrap();
    let start = server.start(None);
    let mut sent = Vec::new();
    let auth = drive(&mut server, start, &backend, |challenge| {
        // The server's first challenge without charset=utf-8.
        let text = String::from_utf8(challenge.to_vec()).unwrap();
        let legacy = text.replace(",charset=utf-8", "");
        let r = client.step(legacy.as_bytes())?;
        sent.push(r.clone());
        Ok(r)
    })
    .unwrap();
    assert_eq!(auth.authcid(), "jörg");
    let first = &sent[0];
    assert!(
        first.windows(15).any(|w| w == b"username=\"j\xf6rg\""),
        "{}",
        String::from_utf8_lossy(first)
    );
    assert!(!first.windows(13).any(|w| w == b"charset=utf-8"));
}

/// User names are prepared with SASLprep in every mechanism: a soft
/// hyphen (mapped to nothing) does not make another user, in DIGEST-MD5,
/// CRAM-MD5 and APOP as in PLAIN.
#[test]
fn saslprep_applies_to_user_names_in_every_mechanism() {
    let backend = common::backend();
    let cctx = ClientContext::new(Service::Pop, "h");
    let sctx = ServerContext::new(Service::Pop, "h");
    for m in [Mechanism::Plain, Mechanism::DigestMd5, Mechanism::CramMd5] {
        let (r, _) = common::exchange(
            m,
            &sctx,
            &cctx,
            Credentials::new("ali\u{ad}ce", "alice-pw"),
            &backend,
        );
        assert_eq!(r.unwrap().authcid(), "alice", "{m}");
    }
    // APOP: the client answers the greeting's timestamp.
    let mut server = ServerSession::new(Mechanism::Apop, &sctx).unwrap();
    let timestamp = server.apop_timestamp().unwrap().to_owned();
    let mut client = ClientSession::new(
        Mechanism::Apop,
        Credentials::new("ali\u{ad}ce", "alice-pw"),
        &cctx,
    )
    .unwrap();
    let args = client.step(timestamp.as_bytes()).unwrap();
    let start = server.start(Some(&args));
    let auth = drive(&mut server, start, &backend, |_| panic!("no challenge")).unwrap();
    assert_eq!(auth.authcid(), "alice");
}
