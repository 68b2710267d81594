//! SCRAM-SHA-1 / SCRAM-SHA-256 and their -PLUS variants (RFC 5802,
//! RFC 7677), with `tls-exporter` (RFC 9266) and `tls-server-end-point`
//! (RFC 5929) channel binding.
//!
//! ```text
//! client-first-message = gs2-header client-first-message-bare
//! gs2-header       = gs2-cbind-flag "," [ authzid ] ","
//! gs2-cbind-flag   = ("p=" cb-name) / "n" / "y"
//! client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
//! server-first-message = [reserved-mext ","] nonce "," salt "," iteration-count ["," extensions]
//! client-final-message-without-proof = channel-binding "," nonce ["," extensions]
//! client-final-message = client-final-message-without-proof "," proof
//! server-final-message = (server-error / verifier) ["," extensions]
//! ```
//!
//! The server verifies from the stored keys ([`ScramSecret`]): one HMAC
//! gives ClientSignature, XOR with the proof gives ClientKey, one hash must
//! give StoredKey, one more HMAC gives ServerSignature. No PBKDF2 per login.

use crate::backend::{Answer, FetchScramSecret, Request};
use crate::mech::ClientMech;
use crate::mech::{Inner, ServerMech};
use crate::scram_secret::keys_from_salted;
use crate::unknown_user::process_secret;
use crate::util::{b64_decode, b64_encode, ct_eq, hash, hi, hmac, random_nonce, saslprep, xor};
use crate::{
    Authenticated, ChannelBindingType, Error, Mechanism, ScramAlgorithm, ScramSecret, ServerContext,
};
use crate::{ClientContext, Credentials};

/// The largest iteration count a client accepts from a server (a hostile
/// server could otherwise make the client spin).
pub(crate) const MAX_CLIENT_ITERATIONS: u32 = 1 << 22;

/// Decodes a `saslname` (`=2C` is `,`, `=3D` is `=`; any other `=` is an
/// error).
fn decode_saslname(m: Mechanism, s: &str) -> Result<String, Error> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let esc = rest.get(i..i + 3);
        match esc {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return Err(Error::malformed(m, "bad '=' escape in saslname")),
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

fn encode_saslname(s: &str) -> String {
    s.replace('=', "=3D").replace(',', "=2C")
}

fn valid_nonce(n: &str) -> bool {
    !n.is_empty() && n.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// An attribute `x=value`; returns (x, value).
fn attr(s: &str) -> Option<(u8, &str)> {
    let b = s.as_bytes();
    (b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b'=').then(|| (b[0], &s[2..]))
}

#[derive(Debug)]
enum ServerState {
    First,
    Secret {
        gs2_header: String,
        client_first_bare: String,
        authcid: String,
        authzid: Option<String>,
        client_nonce: String,
    },
    Final {
        gs2_header: String,
        client_first_bare: String,
        server_first: String,
        nonce: String,
        authcid: String,
        authzid: Option<String>,
        /// The user's secret, or the made-up one of an unknown user.
        secret: ScramSecret,
        /// Whether the user exists.
        /// The user's account; `None` for an unknown user.
        account: Option<Box<crate::Account>>,
    },
    Done,
}

#[derive(Debug)]
pub(crate) struct Server {
    mech: Mechanism,
    alg: ScramAlgorithm,
    cb: Option<(ChannelBindingType, Vec<u8>)>,
    state: ServerState,
}

impl Server {
    pub(crate) fn boxed(
        mech: Mechanism,
        ctx: &ServerContext,
    ) -> Result<Box<dyn ServerMech>, Error> {
        let alg = mech.scram_algorithm().ok_or(Error::MechanismUnavailable)?;
        // -PLUS needs at least one usable binding; the client picks the type.
        if mech.is_plus()
            && ctx
                .tls
                .as_ref()
                .and_then(|t| t.preferred_channel_binding())
                .is_none()
        {
            return Err(Error::MechanismUnavailable);
        }
        Ok(Box::new(Self {
            mech,
            alg,
            cb: None,
            state: ServerState::First,
        }))
    }

    fn client_first(&mut self, ctx: &ServerContext, input: &[u8]) -> Result<Inner, Error> {
        let m = self.mech;
        let text = std::str::from_utf8(input).map_err(|_| Error::malformed(m, "not UTF-8"))?;
        let mut parts = text.splitn(3, ',');
        let (Some(flag), Some(authz), Some(bare)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(Error::malformed(m, "missing GS2 header"));
        };
        // Channel-binding flag.
        match flag {
            "n" if m.is_plus() => {
                return Err(Error::cb(m, "-PLUS selected without channel binding"));
            }
            "y" if m.is_plus() => {
                return Err(Error::cb(m, "-PLUS selected without channel binding"));
            }
            "n" => {}
            "y" => {
                if ctx.plus_advertised {
                    return Err(Error::cb(
                        m,
                        "client claims no -PLUS was advertised, but it was",
                    ));
                }
            }
            _ => {
                let name = flag
                    .strip_prefix("p=")
                    .ok_or(Error::malformed(m, "bad channel-binding flag"))?;
                if !m.is_plus() {
                    return Err(Error::cb(
                        m,
                        "channel binding requested with a non-PLUS mechanism",
                    ));
                }
                let kind = ChannelBindingType::from_name(name)
                    .ok_or(Error::cb(m, "unsupported channel-binding type"))?;
                let data = ctx.channel_binding(kind).ok_or(Error::cb(
                    m,
                    "channel-binding type not available on this connection",
                ))?;
                self.cb = Some((kind, data.to_vec()));
            }
        }
        let authzid = match authz {
            "" => None,
            a => {
                let z = a
                    .strip_prefix("a=")
                    .ok_or(Error::malformed(m, "bad authzid in GS2 header"))?;
                let z = decode_saslname(m, z)?;
                if z.is_empty() {
                    return Err(Error::malformed(m, "empty authzid"));
                }
                Some(z)
            }
        };
        let gs2_header = format!("{flag},{authz},");
        let mut attrs = bare.split(',');
        let user = match attrs.next().and_then(attr) {
            Some((b'm', _)) => {
                return Err(Error::protocol(m, "mandatory extension (m=) not supported"));
            }
            Some((b'n', u)) => u,
            _ => return Err(Error::malformed(m, "expected n=username")),
        };
        let nonce = match attrs.next().and_then(attr) {
            Some((b'r', n)) => n,
            _ => return Err(Error::malformed(m, "expected r=nonce")),
        };
        for ext in attrs {
            if attr(ext).is_none() {
                return Err(Error::malformed(m, "bad extension"));
            }
        }
        if !valid_nonce(nonce) {
            return Err(Error::malformed(m, "bad client nonce"));
        }
        let authcid = saslprep(&decode_saslname(m, user)?)?;
        if authcid.is_empty() {
            return Err(Error::malformed(m, "empty user name"));
        }
        self.state = ServerState::Secret {
            gs2_header,
            client_first_bare: bare.to_owned(),
            authcid: authcid.clone(),
            authzid,
            client_nonce: nonce.to_owned(),
        };
        Ok(Inner::Verify(Request::FetchScramSecret(FetchScramSecret {
            service: ctx.service,
            mechanism: m,
            authcid,
            algorithm: self.alg,
        })))
    }

    fn server_first(&mut self, ctx: &ServerContext, answer: Answer) -> Result<Inner, Error> {
        let ServerState::Secret {
            gs2_header,
            client_first_bare,
            authcid,
            authzid,
            client_nonce,
        } = std::mem::replace(&mut self.state, ServerState::Done)
        else {
            return Err(Error::ApiMisuse("no SCRAM secret requested"));
        };
        let decoy = || match &ctx.unknown_user {
            Some(s) => s.decoy(self.alg, &authcid),
            None => process_secret()?.decoy(self.alg, &authcid),
        };
        let (secret, account) = match answer {
            Answer::ScramSecret(s, account) if s.algorithm() == self.alg => {
                // The made-up secret is derived for real users too (and
                // dropped), so the two paths cost the same.
                std::hint::black_box(decoy()?);
                (s, Some(Box::new(account)))
            }
            Answer::ScramSecret(..) => {
                return Err(Error::ApiMisuse("SCRAM secret of the wrong algorithm"));
            }
            // Unknown user: carry on with a made-up secret (salt, count and
            // keys from the server's unknown-user secret, the same each
            // time for the same name, as a real user's would be), do the
            // same work at the proof, and fail there.
            Answer::Reject => (decoy()?, None),
            Answer::Unavailable => return Err(Error::Unavailable),
            _ => {
                return Err(Error::ApiMisuse(
                    "SCRAM needs ScramSecret, Reject or Unavailable",
                ));
            }
        };
        let server_part = match &ctx.fixed_nonce {
            Some(n) => n.clone(),
            None => random_nonce()?,
        };
        let nonce = format!("{client_nonce}{server_part}");
        let server_first = format!(
            "r={nonce},s={},i={}",
            b64_encode(secret.salt()),
            secret.iterations()
        );
        self.state = ServerState::Final {
            gs2_header,
            client_first_bare,
            server_first: server_first.clone(),
            nonce,
            authcid,
            authzid,
            secret,
            account,
        };
        Ok(Inner::Challenge(server_first.into_bytes()))
    }

    fn client_final(&mut self, input: &[u8]) -> Result<Inner, Error> {
        let m = self.mech;
        let ServerState::Final {
            gs2_header,
            client_first_bare,
            server_first,
            nonce,
            authcid,
            authzid,
            secret,
            account,
        } = std::mem::replace(&mut self.state, ServerState::Done)
        else {
            return Err(Error::ApiMisuse("no client-final message expected"));
        };
        let text = std::str::from_utf8(input).map_err(|_| Error::malformed(m, "not UTF-8"))?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or(Error::malformed(m, "missing proof"))?;
        let mut attrs = without_proof.split(',');
        let cbind = match attrs.next().and_then(attr) {
            Some((b'c', c)) => c,
            _ => return Err(Error::malformed(m, "expected c=channel-binding")),
        };
        let client_nonce = match attrs.next().and_then(attr) {
            Some((b'r', n)) => n,
            _ => return Err(Error::malformed(m, "expected r=nonce")),
        };
        for ext in attrs {
            if attr(ext).is_none() {
                return Err(Error::malformed(m, "bad extension"));
            }
        }
        let cbind =
            b64_decode(cbind.as_bytes()).map_err(|_| Error::malformed(m, "bad base64 in c="))?;
        let proof =
            b64_decode(proof.as_bytes()).map_err(|_| Error::malformed(m, "bad base64 in p="))?;
        if proof.len() != self.alg.output_len() {
            return Err(Error::malformed(m, "proof has the wrong length"));
        }
        let mut expected_cbind = gs2_header.into_bytes();
        if let Some((_, data)) = &self.cb {
            expected_cbind.extend_from_slice(data);
        }
        if !ct_eq(&cbind, &expected_cbind) {
            return Err(Error::cb(m, "channel-binding data does not match"));
        }
        if !ct_eq(client_nonce.as_bytes(), nonce.as_bytes()) {
            return Err(Error::protocol(m, "nonce does not match"));
        }
        let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
        let client_signature = zeroize::Zeroizing::new(hmac(
            self.alg,
            secret.stored_key(),
            &[auth_message.as_bytes()],
        ));
        let client_key = zeroize::Zeroizing::new(xor(&proof, &client_signature));
        // The same work for an unknown user; only then the answer differs.
        let matches = ct_eq(&hash(self.alg, &client_key), secret.stored_key());
        let account = match account {
            Some(a) if matches => *a,
            _ => return Err(Error::BadCredentials),
        };
        let server_signature = hmac(self.alg, secret.server_key(), &[auth_message.as_bytes()]);
        let mut auth = Authenticated::new(m, authcid, authzid).with_account(account);
        auth.channel_binding = self.cb.as_ref().map(|(k, _)| *k);
        Ok(Inner::Success {
            auth,
            final_data: Some(format!("v={}", b64_encode(&server_signature)).into_bytes()),
        })
    }
}

impl ServerMech for Server {
    fn start(&mut self, ctx: &ServerContext, initial: Option<&[u8]>) -> Result<Inner, Error> {
        match initial {
            Some(i) => self.client_first(ctx, i),
            None => Ok(Inner::Challenge(Vec::new())),
        }
    }

    fn step(&mut self, ctx: &ServerContext, input: &[u8]) -> Result<Inner, Error> {
        match self.state {
            ServerState::First => self.client_first(ctx, input),
            ServerState::Final { .. } => self.client_final(input),
            _ => Err(Error::ApiMisuse("no client message expected")),
        }
    }

    fn answer(&mut self, ctx: &ServerContext, answer: Answer) -> Result<Inner, Error> {
        self.server_first(ctx, answer)
    }
}

#[derive(Debug)]
enum ClientState {
    Initial,
    ServerFirst,
    ServerFinal { expected: Vec<u8> },
    Complete,
    Failed,
}

#[derive(Debug)]
pub(crate) struct Client {
    mech: Mechanism,
    alg: ScramAlgorithm,
    password: crate::Password,
    gs2_header: String,
    cb_data: Vec<u8>,
    client_first_bare: String,
    client_nonce: String,
    state: ClientState,
}

impl Client {
    pub(crate) fn boxed(
        mech: Mechanism,
        creds: Credentials,
        ctx: &ClientContext,
    ) -> Result<Box<dyn ClientMech>, Error> {
        let alg = mech.scram_algorithm().ok_or(Error::MechanismUnavailable)?;
        let tls = ctx.tls.as_ref();
        let (flag, cb_data) = if mech.is_plus() {
            let tls = tls.ok_or(Error::MechanismUnavailable)?;
            let kind = tls
                .preferred_channel_binding()
                .ok_or(Error::MechanismUnavailable)?;
            let data = tls
                .channel_binding(kind)
                .ok_or(Error::MechanismUnavailable)?;
            (format!("p={}", kind.name()), data.to_vec())
        } else if tls.and_then(|t| t.preferred_channel_binding()).is_some()
            && !ctx.server_offers_plus
        {
            ("y".to_owned(), Vec::new())
        } else {
            ("n".to_owned(), Vec::new())
        };
        let authz = match &creds.authzid {
            Some(z) if !z.is_empty() => format!("a={}", encode_saslname(z)),
            _ => String::new(),
        };
        let client_nonce = match &ctx.fixed_nonce {
            Some(n) => n.clone(),
            None => random_nonce()?,
        };
        let user = saslprep(&creds.authcid)?;
        Ok(Box::new(Self {
            mech,
            alg,
            password: creds.password.clone(),
            gs2_header: format!("{flag},{authz},"),
            cb_data,
            client_first_bare: format!("n={},r={client_nonce}", encode_saslname(&user)),
            client_nonce,
            state: ClientState::Initial,
        }))
    }

    fn first(&mut self) -> Vec<u8> {
        self.state = ClientState::ServerFirst;
        format!("{}{}", self.gs2_header, self.client_first_bare).into_bytes()
    }

    fn server_first(&mut self, challenge: &[u8]) -> Result<Vec<u8>, Error> {
        let m = self.mech;
        let text = std::str::from_utf8(challenge).map_err(|_| Error::malformed(m, "not UTF-8"))?;
        let mut attrs = text.split(',');
        let nonce = match attrs.next().and_then(attr) {
            Some((b'm', _)) => {
                return Err(Error::protocol(m, "mandatory extension (m=) not supported"));
            }
            Some((b'r', n)) => n,
            _ => return Err(Error::malformed(m, "expected r=nonce")),
        };
        let salt = match attrs.next().and_then(attr) {
            Some((b's', s)) => {
                b64_decode(s.as_bytes()).map_err(|_| Error::malformed(m, "bad salt"))?
            }
            _ => return Err(Error::malformed(m, "expected s=salt")),
        };
        let iterations: u32 = match attrs.next().and_then(attr) {
            Some((b'i', i)) if !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()) => i
                .parse()
                .map_err(|_| Error::malformed(m, "bad iteration count"))?,
            _ => return Err(Error::malformed(m, "expected i=iteration-count")),
        };
        if !nonce.starts_with(&self.client_nonce)
            || nonce.len() == self.client_nonce.len()
            || !valid_nonce(nonce)
        {
            return Err(Error::protocol(
                m,
                "server nonce does not extend the client nonce",
            ));
        }
        if salt.is_empty() || iterations == 0 || iterations > MAX_CLIENT_ITERATIONS {
            return Err(Error::protocol(m, "unacceptable salt or iteration count"));
        }
        let password = zeroize::Zeroizing::new(saslprep(self.password.expose())?);
        let salted = hi(self.alg, password.as_bytes(), &salt, iterations);
        let client_key = zeroize::Zeroizing::new(hmac(self.alg, &salted, &[b"Client Key"]));
        let (stored_key, server_key) = keys_from_salted(self.alg, &salted);
        let mut cbind = self.gs2_header.as_bytes().to_vec();
        cbind.extend_from_slice(&self.cb_data);
        let without_proof = format!("c={},r={nonce}", b64_encode(&cbind));
        let auth_message = format!("{},{text},{without_proof}", self.client_first_bare);
        let client_signature = hmac(self.alg, &stored_key, &[auth_message.as_bytes()]);
        let proof = xor(&client_key, &client_signature);
        let expected = hmac(self.alg, &server_key, &[auth_message.as_bytes()]);
        self.state = ClientState::ServerFinal { expected };
        Ok(format!("{without_proof},p={}", b64_encode(&proof)).into_bytes())
    }
}

impl ClientMech for Client {
    fn initial(&mut self) -> Result<Option<Vec<u8>>, Error> {
        match self.state {
            ClientState::Initial => Ok(Some(self.first())),
            _ => Err(Error::ApiMisuse("initial response already sent")),
        }
    }

    fn step(&mut self, challenge: &[u8]) -> Result<Vec<u8>, Error> {
        match std::mem::replace(&mut self.state, ClientState::Failed) {
            ClientState::Initial if challenge.is_empty() => Ok(self.first()),
            ClientState::Initial => Err(Error::protocol(self.mech, "non-empty first challenge")),
            ClientState::ServerFirst => self.server_first(challenge),
            ClientState::ServerFinal { expected } => {
                // Any failure leaves the exchange failed, never complete.
                self.state = ClientState::Failed;
                let text =
                    std::str::from_utf8(challenge).map_err(|_| Error::ServerAuthentication)?;
                let v = text
                    .split(',')
                    .next()
                    .and_then(|a| a.strip_prefix("v="))
                    .ok_or(Error::ServerAuthentication)?;
                let v = b64_decode(v.as_bytes()).map_err(|_| Error::ServerAuthentication)?;
                if ct_eq(&v, &expected) {
                    self.state = ClientState::Complete;
                    Ok(Vec::new())
                } else {
                    Err(Error::ServerAuthentication)
                }
            }
            ClientState::Failed => Err(Error::ServerAuthentication),
            ClientState::Complete => Err(Error::protocol(self.mech, "challenge after completion")),
        }
    }

    fn is_complete(&self) -> bool {
        matches!(self.state, ClientState::Complete)
    }
}
