//! The mechanisms, server and client halves.

mod anonymous;
pub(crate) mod apop;
mod contract;
pub(crate) mod cram_md5;
mod digest_md5;
mod external;
mod login;
mod plain;
mod scram;

pub(crate) use contract::{ClientMech, Inner, ServerMech, reject_or_unavailable};

use crate::{ClientContext, Credentials, Error, Mechanism, ServerContext};

pub(crate) fn server(m: Mechanism, ctx: &ServerContext) -> Result<Box<dyn ServerMech>, Error> {
    Ok(match m {
        Mechanism::Plain => Box::new(plain::Server::default()),
        Mechanism::Login => Box::new(login::Server::default()),
        Mechanism::Anonymous => Box::new(anonymous::Server),
        Mechanism::External => Box::new(external::Server::new(ctx)?),
        Mechanism::CramMd5 => Box::new(cram_md5::Server::new(ctx)?),
        Mechanism::Apop => Box::new(apop::Server::new(ctx)?),
        Mechanism::DigestMd5 => digest_md5::Server::boxed(ctx)?,
        Mechanism::ScramSha1
        | Mechanism::ScramSha1Plus
        | Mechanism::ScramSha256
        | Mechanism::ScramSha256Plus => scram::Server::boxed(m, ctx)?,
    })
}

pub(crate) fn client(
    m: Mechanism,
    creds: Credentials,
    ctx: &ClientContext,
) -> Result<Box<dyn ClientMech>, Error> {
    Ok(match m {
        Mechanism::Plain => Box::new(plain::Client::new(creds)?),
        Mechanism::Login => Box::new(login::Client::new(creds)),
        Mechanism::Anonymous => Box::new(anonymous::Client::new(creds)),
        Mechanism::External => Box::new(external::Client::new(creds)),
        Mechanism::CramMd5 => Box::new(cram_md5::Client::new(creds)),
        Mechanism::Apop => Box::new(apop::Client::new(creds)),
        Mechanism::DigestMd5 => digest_md5::Client::boxed(creds, ctx)?,
        Mechanism::ScramSha1
        | Mechanism::ScramSha1Plus
        | Mechanism::ScramSha256
        | Mechanism::ScramSha256Plus => scram::Client::boxed(m, creds, ctx)?,
    })
}

/// A challenge of the RFC 1939 / RFC 2195 form `<random.random@host>`, or
/// the fixed test nonce.
pub(crate) fn msg_id_challenge(ctx: &ServerContext) -> Result<String, Error> {
    if let Some(fixed) = &ctx.fixed_nonce {
        return Ok(fixed.clone());
    }
    let r = crate::util::random_bytes(16)?;
    let mut a = [0u8; 8];
    let mut b = [0u8; 8];
    a.copy_from_slice(&r[..8]);
    b.copy_from_slice(&r[8..]);
    let host: String = ctx
        .hostname
        .chars()
        .filter(|c| c.is_ascii_graphic() && !matches!(c, '<' | '>' | '@'))
        .collect();
    let host = if host.is_empty() {
        "localhost".to_owned()
    } else {
        host
    };
    Ok(format!(
        "<{}.{}@{host}>",
        u64::from_be_bytes(a),
        u64::from_be_bytes(b)
    ))
}

/// Splits `user SP hexdigest` at the last space and checks the digest is 32
/// hex digits.
pub(crate) fn split_user_digest(m: Mechanism, input: &[u8]) -> Result<(String, [u8; 32]), Error> {
    let text = std::str::from_utf8(input).map_err(|_| Error::malformed(m, "not UTF-8"))?;
    let (user, digest) = text
        .rsplit_once(' ')
        .ok_or(Error::malformed(m, "expected user name, space, digest"))?;
    if user.is_empty() {
        return Err(Error::malformed(m, "empty user name"));
    }
    if digest.len() != 32 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::malformed(m, "digest is not 32 hex digits"));
    }
    let mut d = [0u8; 32];
    d.copy_from_slice(&digest.as_bytes().to_ascii_lowercase());
    // The identity is prepared with SASLprep, as in every mechanism.
    Ok((crate::util::saslprep(user)?, d))
}
