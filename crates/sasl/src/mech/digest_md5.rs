//! DIGEST-MD5 (RFC 2831), authentication only (`qop=auth`). Deprecated by
//! RFC 6331 but listed in the chapter; needs the cleartext password.
//!
//! ```text
//! digest-challenge = 1#( realm | nonce | qop-options | stale | maxbuf
//!                      | charset | algorithm | cipher-opts | auth-param )
//! digest-response  = 1#( username | realm | nonce | cnonce | nonce-count
//!                      | qop | digest-uri | response | maxbuf | charset
//!                      | cipher | authzid | auth-param )
//! response-value   = HEX( KD( HEX(H(A1)),
//!                      { nonce ":" nc ":" cnonce ":" qop ":" HEX(H(A2)) }))
//! A1 = { H( { username ":" realm ":" passwd } ) ":" nonce ":" cnonce [":" authzid] }
//! A2 = { "AUTHENTICATE:" digest-uri }        (rspauth: { ":" digest-uri })
//! ```
//!
//! Rejected: `qop` other than `auth`, `cipher`, duplicate directives,
//! missing or empty `nonce`/`cnonce`, a wrong nonce, `nc` other than
//! `00000001`, a `digest-uri` for another service or host, a realm not
//! offered, a charset other than `utf-8`, and an initial response.

use crate::backend::{Answer, FetchPassword, Request};
use crate::mech::ClientMech;
use crate::mech::{Inner, ServerMech, reject_or_unavailable};
use crate::util::{ct_eq, hex, md5, random_nonce, saslprep};
use crate::{Authenticated, Error, Mechanism, ServerContext};
use crate::{ClientContext, Credentials};

const M: Mechanism = Mechanism::DigestMd5;

fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_token(b: u8) -> bool {
    b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b)
}

/// Parses a comma-separated directive list into lower-cased names and
/// unescaped values.
fn parse_directives(input: &[u8]) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let mut out = Vec::new();
    let mut i = 0;
    let n = input.len();
    loop {
        while i < n && (is_lws(input[i]) || input[i] == b',') {
            i += 1;
        }
        if i >= n {
            break;
        }
        let start = i;
        while i < n && is_token(input[i]) {
            i += 1;
        }
        if i == start {
            return Err(Error::malformed(M, "expected a directive name"));
        }
        let name = String::from_utf8_lossy(&input[start..i]).to_ascii_lowercase();
        while i < n && is_lws(input[i]) {
            i += 1;
        }
        if i >= n || input[i] != b'=' {
            return Err(Error::malformed(M, "expected '=' after a directive name"));
        }
        i += 1;
        while i < n && is_lws(input[i]) {
            i += 1;
        }
        let mut value = Vec::new();
        if i < n && input[i] == b'"' {
            i += 1;
            loop {
                match input.get(i) {
                    None => return Err(Error::malformed(M, "unterminated quoted string")),
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') => {
                        let c = *input
                            .get(i + 1)
                            .ok_or(Error::malformed(M, "unterminated quoted string"))?;
                        value.push(c);
                        i += 2;
                    }
                    Some(&c) => {
                        value.push(c);
                        i += 1;
                    }
                }
            }
        } else {
            let vstart = i;
            while i < n && is_token(input[i]) {
                i += 1;
            }
            value.extend_from_slice(&input[vstart..i]);
        }
        while i < n && is_lws(input[i]) {
            i += 1;
        }
        if i < n && input[i] != b',' {
            return Err(Error::malformed(M, "expected ',' between directives"));
        }
        out.push((name, value));
    }
    Ok(out)
}

/// A quoted-string of raw bytes (ISO 8859-1 text when charset=utf-8 was
/// not offered).
fn quote_bytes(b: &[u8]) -> Vec<u8> {
    let mut q = Vec::with_capacity(b.len() + 2);
    q.push(b'"');
    for &c in b {
        if c == b'"' || c == b'\\' {
            q.push(b'\\');
        }
        q.push(c);
    }
    q.push(b'"');
    q
}

fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

fn latin1_decode(b: &[u8]) -> String {
    b.iter().map(|&c| char::from(c)).collect()
}

/// ISO 8859-1 bytes of `s` if every character fits, else `None`.
fn latin1_encode(s: &str) -> Option<Vec<u8>> {
    s.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect()
}

/// The bytes hashed for a user name or password (RFC 2831 §2.1.2.1: with
/// charset=utf-8, strings that fit ISO 8859-1 are converted to it).
fn hash_form(s: &str, utf8: bool) -> Option<Vec<u8>> {
    match latin1_encode(s) {
        Some(l) => Some(l),
        None if utf8 => Some(s.as_bytes().to_vec()),
        None => None,
    }
}

struct DigestInput<'a> {
    user: &'a [u8],
    realm: &'a [u8],
    password: &'a [u8],
    nonce: &'a str,
    cnonce: &'a str,
    authzid: Option<&'a str>,
    nc: &'a str,
    digest_uri: &'a str,
}

/// (response, rspauth) in lower-case hex.
fn compute(d: &DigestInput<'_>) -> (String, String) {
    // H(user:realm:password) stands in for the password: wiped after use.
    let inner = zeroize::Zeroizing::new(md5(&[d.user, b":", d.realm, b":", d.password]));
    let mut a1: zeroize::Zeroizing<Vec<u8>> = zeroize::Zeroizing::new(Vec::with_capacity(64));
    a1.extend_from_slice(&inner[..]);
    a1.extend_from_slice(format!(":{}:{}", d.nonce, d.cnonce).as_bytes());
    if let Some(z) = d.authzid {
        a1.push(b':');
        a1.extend_from_slice(z.as_bytes());
    }
    let ha1 = zeroize::Zeroizing::new(hex(&md5(&[&a1[..]])));
    let kd = |a2: &str| {
        let ha2 = hex(&md5(&[a2.as_bytes()]));
        let kd_input = zeroize::Zeroizing::new(format!(
            "{}:{}:{}:{}:auth:{ha2}",
            ha1.as_str(),
            d.nonce,
            d.nc,
            d.cnonce
        ));
        hex(&md5(&[kd_input.as_bytes()]))
    };
    let response = kd(&format!("AUTHENTICATE:{}", d.digest_uri));
    let rspauth = kd(&format!(":{}", d.digest_uri));
    (response, rspauth)
}

#[derive(Debug)]
struct Pending {
    /// The user name as sent (what the client hashed).
    user: String,
    /// The user name prepared with SASLprep: the identity looked up and
    /// authenticated, as every other mechanism has it.
    authcid: String,
    realm: String,
    cnonce: String,
    nc: String,
    digest_uri: String,
    response: String,
    authzid: Option<String>,
    utf8: bool,
}

#[derive(Debug)]
pub(crate) struct Server {
    nonce: String,
    realm: String,
    challenged: bool,
    pending: Option<Pending>,
}

impl Server {
    pub(crate) fn boxed(ctx: &ServerContext) -> Result<Box<dyn ServerMech>, Error> {
        let nonce = match &ctx.fixed_nonce {
            Some(n) => n.clone(),
            None => random_nonce()?,
        };
        Ok(Box::new(Self {
            nonce,
            realm: ctx.realm().to_owned(),
            challenged: false,
            pending: None,
        }))
    }

    fn response(&mut self, ctx: &ServerContext, input: &[u8]) -> Result<Inner, Error> {
        let directives = parse_directives(input)?;
        let mut seen: Vec<&str> = Vec::new();
        for (name, _) in &directives {
            if seen.contains(&name.as_str()) {
                return Err(Error::protocol(M, "duplicate directive"));
            }
            seen.push(name);
        }
        let get = |n: &str| {
            directives
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_slice())
        };
        let ascii = |n: &str, v: &[u8]| -> Result<String, Error> {
            let _ = n;
            std::str::from_utf8(v)
                .ok()
                .filter(|s| s.is_ascii())
                .map(str::to_owned)
                .ok_or(Error::malformed(M, "non-ASCII value"))
        };
        let utf8 = match get("charset") {
            None => false,
            Some(c) if c.eq_ignore_ascii_case(b"utf-8") => true,
            Some(_) => return Err(Error::protocol(M, "unknown charset")),
        };
        let text = |v: &[u8]| -> Result<String, Error> {
            if utf8 {
                std::str::from_utf8(v)
                    .map(str::to_owned)
                    .map_err(|_| Error::malformed(M, "not UTF-8"))
            } else {
                Ok(latin1_decode(v))
            }
        };
        match get("qop") {
            None => {}
            Some(q) if q.eq_ignore_ascii_case(b"auth") => {}
            Some(_) => return Err(Error::protocol(M, "only qop=auth is supported")),
        }
        if get("cipher").is_some() {
            return Err(Error::protocol(M, "cipher without qop=auth-conf"));
        }
        if let Some(mb) = get("maxbuf")
            && (mb.is_empty() || !mb.iter().all(u8::is_ascii_digit))
        {
            return Err(Error::malformed(M, "bad maxbuf"));
        }
        let user = text(get("username").ok_or(Error::malformed(M, "missing username"))?)?;
        if user.is_empty() {
            return Err(Error::malformed(M, "empty username"));
        }
        let realm = match get("realm") {
            Some(r) => text(r)?,
            None => String::new(),
        };
        if !realm.is_empty() && realm != self.realm {
            return Err(Error::protocol(M, "realm was not offered"));
        }
        let nonce = get("nonce").ok_or(Error::malformed(M, "missing nonce"))?;
        if nonce.is_empty() {
            return Err(Error::malformed(M, "empty nonce"));
        }
        if !ct_eq(nonce, self.nonce.as_bytes()) {
            return Err(Error::protocol(M, "nonce does not match"));
        }
        let cnonce = ascii(
            "cnonce",
            get("cnonce").ok_or(Error::malformed(M, "missing cnonce"))?,
        )?;
        if cnonce.is_empty() {
            return Err(Error::malformed(M, "empty cnonce"));
        }
        let nc = ascii("nc", get("nc").ok_or(Error::malformed(M, "missing nc"))?)?;
        if nc != "00000001" {
            return Err(Error::protocol(M, "nonce count must be 00000001"));
        }
        let digest_uri = text(get("digest-uri").ok_or(Error::malformed(M, "missing digest-uri"))?)?;
        let mut uri = digest_uri.split('/');
        let (serv, host, serv_name) = (uri.next(), uri.next(), uri.next());
        if uri.next().is_some() {
            return Err(Error::malformed(M, "bad digest-uri"));
        }
        if serv != Some(ctx.service.digest_uri_service()) {
            return Err(Error::protocol(M, "digest-uri names another service"));
        }
        let host_ok = |h: &str| h.eq_ignore_ascii_case(&ctx.hostname);
        if !host.is_some_and(host_ok) {
            return Err(Error::protocol(M, "digest-uri names another host"));
        }
        if let Some(sn) = serv_name
            && !(host_ok(sn) || sn.eq_ignore_ascii_case(&self.realm))
        {
            return Err(Error::protocol(M, "digest-uri names another server"));
        }
        let response = ascii(
            "response",
            get("response").ok_or(Error::malformed(M, "missing response"))?,
        )?;
        if response.len() != 32 || !response.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::malformed(M, "response is not 32 hex digits"));
        }
        let authzid = match get("authzid") {
            Some(z) => {
                let z = text(z)?;
                if z.is_empty() {
                    return Err(Error::malformed(M, "empty authzid"));
                }
                Some(z)
            }
            None => None,
        };
        let authcid = saslprep(&user)?;
        self.pending = Some(Pending {
            user,
            authcid: authcid.clone(),
            realm: realm.clone(),
            cnonce,
            nc,
            digest_uri,
            response: response.to_ascii_lowercase(),
            authzid,
            utf8,
        });
        Ok(Inner::Verify(Request::FetchPassword(FetchPassword {
            service: ctx.service,
            mechanism: M,
            authcid,
            realm: (!realm.is_empty()).then_some(realm),
        })))
    }
}

impl ServerMech for Server {
    fn start(&mut self, _ctx: &ServerContext, initial: Option<&[u8]>) -> Result<Inner, Error> {
        if initial.is_some() {
            return Err(Error::malformed(M, "initial response not allowed"));
        }
        self.challenged = true;
        Ok(Inner::Challenge(
            format!(
                "realm={},nonce={},qop=\"auth\",charset=utf-8,algorithm=md5-sess",
                quote(&self.realm),
                quote(&self.nonce)
            )
            .into_bytes(),
        ))
    }

    fn step(&mut self, ctx: &ServerContext, input: &[u8]) -> Result<Inner, Error> {
        if !self.challenged || self.pending.is_some() {
            return Err(Error::ApiMisuse("no DIGEST-MD5 response expected"));
        }
        self.response(ctx, input)
    }

    fn answer(&mut self, _ctx: &ServerContext, answer: Answer) -> Result<Inner, Error> {
        if let Some(e) = reject_or_unavailable(&answer) {
            return Err(e);
        }
        let (Answer::Password(password, account), Some(p)) = (answer, self.pending.take()) else {
            return Err(Error::ApiMisuse(
                "DIGEST-MD5 needs Password, Reject or Unavailable",
            ));
        };
        let realm = if p.utf8 {
            p.realm.as_bytes().to_vec()
        } else {
            latin1_encode(&p.realm).ok_or(Error::BadCredentials)?
        };
        // RFC 2831 form first (ISO 8859-1 where it fits). With
        // charset=utf-8 and non-ASCII strings, clients disagree on which
        // strings they convert (GNU SASL converts the password but not the
        // user name), so the UTF-8 forms are tried too: at most four MD5
        // chains, all for the same password.
        let user_forms = {
            let mut f = vec![hash_form(&p.user, p.utf8).ok_or(Error::BadCredentials)?];
            if p.utf8 && !p.user.is_ascii() {
                f.push(p.user.as_bytes().to_vec());
            }
            f
        };
        let pass_forms = {
            let mut f = vec![zeroize::Zeroizing::new(
                hash_form(password.expose(), p.utf8).ok_or(Error::BadCredentials)?,
            )];
            if p.utf8 && !password.expose().is_ascii() {
                f.push(zeroize::Zeroizing::new(password.as_bytes().to_vec()));
            }
            f
        };
        let forms: Vec<(&Vec<u8>, &zeroize::Zeroizing<Vec<u8>>)> = user_forms
            .iter()
            .flat_map(|u| pass_forms.iter().map(move |p| (u, p)))
            .collect();
        let mut rspauth = None;
        for (user, pass) in forms {
            let (expected, auth) = compute(&DigestInput {
                user,
                realm: &realm,
                password: pass,
                nonce: &self.nonce,
                cnonce: &p.cnonce,
                authzid: p.authzid.as_deref(),
                nc: &p.nc,
                digest_uri: &p.digest_uri,
            });
            if ct_eq(expected.as_bytes(), p.response.as_bytes()) {
                rspauth = Some(auth);
            }
        }
        let rspauth = rspauth.ok_or(Error::BadCredentials)?;
        Ok(Inner::Success {
            auth: Authenticated::new(M, p.authcid, p.authzid).with_account(account),
            final_data: Some(format!("rspauth={rspauth}").into_bytes()),
        })
    }
}

#[derive(Debug)]
pub(crate) struct Client {
    creds: Credentials,
    digest_uri: String,
    cnonce: Option<String>,
    expected_rspauth: Option<String>,
    complete: bool,
    failed: bool,
}

impl Client {
    pub(crate) fn boxed(
        creds: Credentials,
        ctx: &ClientContext,
    ) -> Result<Box<dyn ClientMech>, Error> {
        Ok(Box::new(Self {
            creds,
            digest_uri: format!("{}/{}", ctx.service.digest_uri_service(), ctx.hostname),
            cnonce: ctx.fixed_nonce.clone(),
            expected_rspauth: None,
            complete: false,
            failed: false,
        }))
    }

    fn respond(&mut self, challenge: &[u8]) -> Result<Vec<u8>, Error> {
        let directives = parse_directives(challenge)?;
        let mut realm = None;
        let mut nonce = None;
        let mut qop_ok = false;
        let mut utf8 = false;
        let mut algorithm_ok = false;
        for (name, value) in &directives {
            match name.as_str() {
                "realm" if realm.is_none() => {
                    realm = Some(String::from_utf8_lossy(value).into_owned());
                }
                "nonce" if nonce.is_some() => return Err(Error::protocol(M, "duplicate nonce")),
                "nonce" => nonce = Some(String::from_utf8_lossy(value).into_owned()),
                "qop" => {
                    qop_ok = value
                        .split(|b| *b == b',')
                        .any(|q| q.trim_ascii().eq_ignore_ascii_case(b"auth"));
                }
                "charset" => utf8 = value.eq_ignore_ascii_case(b"utf-8"),
                "algorithm" => algorithm_ok = value.eq_ignore_ascii_case(b"md5-sess"),
                _ => {}
            }
        }
        let nonce = nonce
            .filter(|n| !n.is_empty())
            .ok_or(Error::malformed(M, "missing nonce"))?;
        if !algorithm_ok {
            return Err(Error::protocol(M, "algorithm must be md5-sess"));
        }
        if !qop_ok && directives.iter().any(|(n, _)| n == "qop") {
            return Err(Error::protocol(M, "server does not offer qop=auth"));
        }
        let cnonce = match self.cnonce.take() {
            Some(c) => c,
            None => random_nonce()?,
        };
        let realm = realm.unwrap_or_default();
        let user = hash_form(&self.creds.authcid, utf8).ok_or(Error::Saslprep)?;
        let pass = zeroize::Zeroizing::new(
            hash_form(self.creds.password.expose(), utf8).ok_or(Error::Saslprep)?,
        );
        let realm_bytes = if utf8 {
            realm.as_bytes().to_vec()
        } else {
            latin1_encode(&realm).ok_or(Error::Saslprep)?
        };
        let authzid = self.creds.authzid.clone().filter(|z| !z.is_empty());
        let (response, rspauth) = compute(&DigestInput {
            user: &user,
            realm: &realm_bytes,
            password: &pass,
            nonce: &nonce,
            cnonce: &cnonce,
            authzid: authzid.as_deref(),
            nc: "00000001",
            digest_uri: &self.digest_uri,
        });
        self.expected_rspauth = Some(rspauth);
        // The user name and realm go out in the encoding the server reads
        // them in: UTF-8 with charset=utf-8, otherwise ISO 8859-1, the very
        // bytes that were hashed (a UTF-8 name sent to a server without
        // charset=utf-8 would be read as other characters).
        let (user_sent, realm_sent) = if utf8 {
            (
                self.creds.authcid.as_bytes().to_vec(),
                realm.as_bytes().to_vec(),
            )
        } else {
            (user.clone(), realm_bytes.clone())
        };
        let mut out = b"username=".to_vec();
        out.extend_from_slice(&quote_bytes(&user_sent));
        if !realm.is_empty() {
            out.extend_from_slice(b",realm=");
            out.extend_from_slice(&quote_bytes(&realm_sent));
        }
        out.extend_from_slice(
            format!(
                ",nonce={},cnonce={},nc=00000001,qop=auth,digest-uri={},response={response}",
                quote(&nonce),
                quote(&cnonce),
                quote(&self.digest_uri)
            )
            .as_bytes(),
        );
        if utf8 {
            out.extend_from_slice(b",charset=utf-8");
        }
        if let Some(z) = authzid {
            // The authzid is always UTF-8 (RFC 2831 §2.1.2).
            out.extend_from_slice(format!(",authzid={}", quote(&z)).as_bytes());
        }
        Ok(out)
    }
}

impl ClientMech for Client {
    fn initial(&mut self) -> Result<Option<Vec<u8>>, Error> {
        Ok(None)
    }

    fn step(&mut self, challenge: &[u8]) -> Result<Vec<u8>, Error> {
        if self.complete || self.failed {
            return Err(Error::protocol(
                M,
                "challenge after the end of the exchange",
            ));
        }
        // Whatever happens below, a failure ends the exchange.
        self.failed = true;
        match self.expected_rspauth.take() {
            None => {
                let r = self.respond(challenge)?;
                self.failed = false;
                Ok(r)
            }
            Some(expected) => {
                let d = parse_directives(challenge).map_err(|_| Error::ServerAuthentication)?;
                let got = d
                    .iter()
                    .find(|(n, _)| n == "rspauth")
                    .map(|(_, v)| v.as_slice())
                    .ok_or(Error::ServerAuthentication)?;
                if ct_eq(&got.to_ascii_lowercase(), expected.as_bytes()) {
                    self.complete = true;
                    self.failed = false;
                    Ok(Vec::new())
                } else {
                    Err(Error::ServerAuthentication)
                }
            }
        }
    }

    fn is_complete(&self) -> bool {
        self.complete
    }
}
