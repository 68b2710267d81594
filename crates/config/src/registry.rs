//! The parameter registry: every configuration parameter Portcullis knows,
//! with its type, default and description.
//!
//! Parameter names are the ones the original `configutil` used (chapter 23
//! of the Messaging Server 6.3 administration guide); the POP-before-SMTP
//! options of the multiplexor live under `mmp.`.

use crate::param::Param;

/// What kind of value a parameter holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// `true`/`false` (also accepted: `1`/`0`, `yes`/`no`, `on`/`off`).
    Bool,
    /// A whole number within an inclusive range.
    Integer {
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
    },
    /// Free text.
    String,
    /// Free text that is a secret: never printed in full listings.
    Secret,
    /// A list of words separated by blanks (the seed's `mech_list` form).
    List,
    /// A list of names separated by commas (the `sslnicknames` form).
    CommaList,
    /// Client access filters (`serviceList: clientList` rules): a string
    /// (one filter a line, or the LDAP `+`/`-` form) or an array of such
    /// strings; see [`crate::FilterValue`].
    Filter,
}

impl Kind {
    /// A short name of the type for help output.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::Bool => "boolean".to_owned(),
            Self::Integer { min, max } if *max == i64::MAX => format!("integer >= {min}"),
            Self::Integer { min, max } => format!("integer {min}..{max}"),
            Self::String => "string".to_owned(),
            Self::Secret => "secret string".to_owned(),
            Self::List => "space-separated list".to_owned(),
            Self::CommaList => "comma-separated list".to_owned(),
            Self::Filter => "access filters (a string: one filter a line, or the LDAP +/- form; \
                             or an array of such strings)"
                .to_owned(),
        }
    }
}

/// One known parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parameter {
    /// The canonical (lower-case, dotted) name.
    pub name: &'static str,
    /// The value's type.
    pub kind: Kind,
    /// The default in configuration syntax, or `None` when an unset value
    /// means something of its own (described in `description`).
    pub default: Option<&'static str>,
    /// What the parameter does.
    pub description: &'static str,
}

const fn p(
    name: &'static str,
    kind: Kind,
    default: Option<&'static str>,
    description: &'static str,
) -> Parameter {
    Parameter {
        name,
        kind,
        default,
        description,
    }
}

/// Defines the registry once: [`PARAMETERS`] and, for each parameter, a
/// typed key in [`params`] (named after the parameter, dots as
/// underscores) whose type says what [`crate::Config::get`] returns.
macro_rules! parameters {
    ($(
        $key:ident: $ty:ty = ($name:literal, $kind:expr, $default:expr, $desc:literal $(,)?);
    )*) => {
        /// Typed keys, one per parameter of the registry:
        /// `config.get(params::SERVICE_IMAP_DOMAINALLOWED)` instead of a
        /// name spelt out at each use. Each key's type is what
        /// [`crate::Config::get`] returns for it.
        pub mod params {
            use super::*;
            use crate::FilterValue;

            $(
                #[doc = concat!("`", $name, "`\n\n```text\n", $desc, "\n```")]
                pub const $key: Param<$ty> = Param::new(p($name, $kind, $default, $desc));
            )*

            /// Every key's constant name and parameter name (to check the
            /// one against the other).
            #[cfg(test)]
            pub(crate) const KEY_NAMES: &[(&str, &str)] = &[$((stringify!($key), $name)),*];

            /// Reads every parameter through its typed key: the name, whether
            /// the key's type fits the parameter's kind, and what `get`
            /// returned.
            #[cfg(test)]
            pub(crate) fn read_all(
                config: &crate::Config,
            ) -> Vec<(&'static str, bool, Result<String, crate::Error>)> {
                vec![$((
                    $name,
                    <$ty as crate::ParamType>::fits(&$key.parameter().kind),
                    config.get($key).map(|v| format!("{v:?}")),
                )),*]
            }
        }

        /// Every parameter, sorted by name.
        pub static PARAMETERS: &[Parameter] = &[$(params::$key.parameter_const()),*];
    };
}

const BOOL: Kind = Kind::Bool;
const FLAG: Kind = Kind::Integer { min: 0, max: 1 };
const SECONDS: Kind = Kind::Integer {
    min: 1,
    max: i64::MAX,
};
const NONNEG: Kind = Kind::Integer {
    min: 0,
    max: i64::MAX,
};
const PORT: Kind = Kind::Integer { min: 1, max: 65535 };
const PORT_OR_OFF: Kind = Kind::Integer { min: 0, max: 65535 };

parameters! {
    ENCRYPTION_NSSSL3CIPHERS: String = (
        "encryption.nsssl3ciphers",
        Kind::String,
        Some(""),
        "TLS cipher suites, most preferred first, separated by commas, colons or blanks: \
         IANA (TLS_AES_128_GCM_SHA256), OpenSSL (ECDHE-RSA-AES128-GCM-SHA256) or rustls names \
         of the TLS 1.2 and 1.3 AEAD suites. The original's ciphers (rsa_rc4_128_md5, \
         rsa_3des_sha, rsa_des_sha, rsa_rc4_40_md5, rsa_rc2_40_md5, rsa_null_md5), and any \
         RC4, DES, 3DES, RC2, export, NULL, MD5 or CBC suite, are refused with the reason. \
         Empty: every supported suite.",
    );
    ENCRYPTION_NSSSLCLIENTAUTH: String = (
        "encryption.nssslclientauth",
        Kind::String,
        Some("auto"),
        "When the servers ask for a client certificate: auto (asked for, not required, \
         whenever the certificate database holds a CA trusted for client authentication, \
         flag T), off (never), request (always asked for; a trusted CA must exist), require \
         (a valid certificate is required). allowed and required are accepted as the \
         original spelt them.",
    );
    ENCRYPTION_RSA_NSSSLPERSONALITYSSL: Vec<String> = (
        "encryption.rsa.nssslpersonalityssl",
        Kind::CommaList,
        Some("Server-Cert"),
        "Nickname(s) of the server certificate used by every service that has no \
         local.<service>.sslnicknames of its own; module:nickname names a key on a PKCS#11 token.",
    );
    LOCAL_DNSSERVERS: Vec<String> = (
        "local.dnsservers",
        Kind::List,
        Some(""),
        "Name servers the access filters ask for host names: blank-separated ip[:port] \
         (port 53 when none is given; IPv6 as [addr]:port). Empty: the system's \
         resolver configuration (/etc/resolv.conf). A lookup that fails is a temporary \
         refusal, never a grant.",
    );
    LOCAL_HTTP_SSLNICKNAMES: Vec<String> = (
        "local.http.sslnicknames",
        Kind::CommaList,
        None,
        "Certificate nicknames for HTTP (at most one per key type); unset: \
         encryption.rsa.nssslpersonalityssl.",
    );
    LOCAL_IMAP_METRICS_LISTENADDR: String = (
        "local.imap.metrics.listenaddr",
        Kind::String,
        Some(""),
        "Where imapd serves its metrics (overrides local.metrics.listenaddr for imapd, so \
         daemons that share one configuration file can use different addresses).",
    );
    LOCAL_IMAP_SSLNICKNAMES: Vec<String> = (
        "local.imap.sslnicknames",
        Kind::CommaList,
        None,
        "Certificate nicknames for IMAP (at most one per key type); unset: \
         encryption.rsa.nssslpersonalityssl.",
    );
    LOCAL_IMTA_SSLNICKNAMES: Vec<String> = (
        "local.imta.sslnicknames",
        Kind::CommaList,
        None,
        "Certificate nicknames for SMTP (at most one per key type); unset: \
         encryption.rsa.nssslpersonalityssl.",
    );
    LOCAL_METRICS_LISTENADDR: String = (
        "local.metrics.listenaddr",
        Kind::String,
        Some(""),
        "ADDRESS:PORT (e.g. 127.0.0.1:9110, [::1]:9110) where a daemon serves its metrics in \
         the Prometheus text format at GET /metrics (plain HTTP: bind it to a management \
         network). Empty: no metrics listener. local.<service>.metrics.listenaddr overrides \
         it per daemon.",
    );
    LOCAL_POP_METRICS_LISTENADDR: String = (
        "local.pop.metrics.listenaddr",
        Kind::String,
        Some(""),
        "Where popd serves its metrics (overrides local.metrics.listenaddr for popd).",
    );
    LOCAL_POP_SSLNICKNAMES: Vec<String> = (
        "local.pop.sslnicknames",
        Kind::CommaList,
        None,
        "Certificate nicknames for POP (at most one per key type); unset: \
         encryption.rsa.nssslpersonalityssl.",
    );
    LOCAL_REDISURL: String = (
        "local.redisurl",
        Kind::String,
        Some(""),
        "redis:// (or rediss://) URL of a Redis that front ends share for failed-login \
         penalties and POP-before-SMTP authorizations; several blank-separated URLs name \
         nodes of a Redis Cluster (POP-before-SMTP). Empty: each process keeps them in \
         memory.",
    );
    LOCAL_SMTP_METRICS_LISTENADDR: String = (
        "local.smtp.metrics.listenaddr",
        Kind::String,
        Some(""),
        "Where smtpd serves its metrics (overrides local.metrics.listenaddr for smtpd).",
    );
    LOCAL_SSLCRLFILES: Vec<String> = (
        "local.sslcrlfiles",
        Kind::CommaList,
        None,
        "CRL files (PEM or DER) or directories of them, relative to the configuration file's \
         directory, checked for client certificates; once set, every client CA needs a \
         current CRL (one past its nextUpdate fails verification). Unset: no revocation check.",
    );
    LOCAL_SSLDBPATH: String = (
        "local.ssldbpath",
        Kind::String,
        Some("certdb"),
        "Directory of the certificate database (msgcert -d overrides it); relative paths \
         are taken from the configuration file's directory.",
    );
    LOCAL_SSLHANDSHAKETIMEOUT: i64 = (
        "local.sslhandshaketimeout",
        SECONDS,
        Some("30"),
        "Seconds a client has to finish the TLS handshake (implicit TLS or after STARTTLS) \
         before the connection is closed.",
    );
    LOCAL_SSLMAXVERSION: String = (
        "local.sslmaxversion",
        Kind::String,
        Some("TLSv1.3"),
        "Newest TLS version offered: TLSv1.2 or TLSv1.3.",
    );
    LOCAL_SSLMINVERSION: String = (
        "local.sslminversion",
        Kind::String,
        Some("TLSv1.2"),
        "Oldest TLS version accepted: TLSv1.2 or TLSv1.3. SSL 2/3 (sslv3) and TLS 1.0/1.1 \
         (tls1) are refused with the reason.",
    );
    LOCAL_SSLSESSIONTICKETS: bool = (
        "local.sslsessiontickets",
        BOOL,
        Some("true"),
        "Issue TLS session tickets so clients resume without a full handshake; off: only \
         the servers' own session cache resumes.",
    );
    LOCAL_SSLSNIMAP: String = (
        "local.sslsnimap",
        Kind::String,
        Some(""),
        "Certificates by server name (SNI): entries separated by ';', each 'names = \
         nicknames' with comma lists on both sides, e.g. 'mail.example.com = ex-ec, ex-rsa; \
         *.example.org = org'. Names not listed get the service's own certificate.",
    );
    LOCAL_SSLSNISTRICT: bool = (
        "local.sslsnistrict",
        BOOL,
        Some("false"),
        "Refuse a client that names a host neither local.sslsnimap nor the service's \
         certificate covers.",
    );
    LOCAL_SSLSTRICTALPN: bool = (
        "local.sslstrictalpn",
        BOOL,
        Some("true"),
        "Refuse a TLS client that offers ALPN protocols but not the service's own (imap, \
         pop3, http/1.1; any for SMTP), the ALPACA cross-protocol defence. Clients offering \
         no ALPN are always served.",
    );
    LOCAL_SSLTICKETLIFETIME: i64 = (
        "local.sslticketlifetime",
        SECONDS,
        Some("21600"),
        "Seconds one session ticket key issues tickets; a ticket is accepted for at most \
         twice this.",
    );
    LOCAL_STATEDIR: String = (
        "local.statedir",
        Kind::String,
        Some(""),
        "Directory where the servers keep state they make themselves (generated secrets); \
         relative to the configuration file. Empty: the configuration file's directory.",
    );
    LOCAL_UGLDAPBASEDN: String = (
        "local.ugldapbasedn",
        Kind::String,
        Some("o=example"),
        "Base DN of the user/group directory tree.",
    );
    LOCAL_UGLDAPBINDCRED: String = (
        "local.ugldapbindcred",
        Kind::Secret,
        Some(""),
        "Password of local.ugldapbinddn.",
    );
    LOCAL_UGLDAPBINDDN: String = (
        "local.ugldapbinddn",
        Kind::String,
        Some(""),
        "DN of the service account the servers bind as to search the user/group directory.",
    );
    LOCAL_UGLDAPCAFILE: String = (
        "local.ugldapcafile",
        Kind::String,
        Some(""),
        "PEM file of the CA certificates trusted for the user/group directory's certificate \
         (LDAPS or StartTLS); relative to the configuration file. Empty: only the CAs the \
         daemon takes from the certificate database.",
    );
    LOCAL_UGLDAPCANONICALFORM: String = (
        "local.ugldapcanonicalform",
        Kind::String,
        Some("%u@%d"),
        "Template of the canonical login identity, which logs and the message stores \
         (XCLIENT LOGIN, IMAP ID) receive instead of the name the client typed: %u the \
         entry's uid, %d the login's domain (or service.defaultdomain), %m the entry's mail, \
         %% a percent sign. It must contain %u or %m.",
    );
    LOCAL_UGLDAPCONNECTTIMEOUT: i64 = (
        "local.ugldapconnecttimeout",
        SECONDS,
        Some("5"),
        "Seconds to connect to a user/group directory server (TCP and TLS handshake) before \
         the next one is tried.",
    );
    LOCAL_UGLDAPEXTRAATTRS: Vec<String> = (
        "local.ugldapextraattrs",
        Kind::List,
        Some(""),
        "Attributes read with the user's entry besides those the login needs, handed to \
         the daemon for routing and policy (blank-separated names, e.g. mailHost); \
         userPassword is refused.",
    );
    LOCAL_UGLDAPFAILOVERHOLD: i64 = (
        "local.ugldapfailoverhold",
        NONNEG,
        Some("60"),
        "Seconds a user/group directory server that failed is skipped; when every server \
         is skipped, the one whose hold ends first is tried.",
    );
    LOCAL_UGLDAPHOST: Vec<String> = (
        "local.ugldaphost",
        Kind::List,
        Some("localhost"),
        "User/group directory server(s): blank-separated host[:port] list, tried in order \
         with failover.",
    );
    LOCAL_UGLDAPIDLECHECK: i64 = (
        "local.ugldapidlecheck",
        NONNEG,
        Some("5"),
        "Seconds a pooled directory connection may stay idle before it gets a liveness \
         check (a WhoAmI request) when next used; a dead one is replaced by a fresh \
         connection. 0: check at every reuse.",
    );
    LOCAL_UGLDAPOPERATIONTIMEOUT: i64 = (
        "local.ugldapoperationtimeout",
        SECONDS,
        Some("10"),
        "Seconds each directory operation (search, bind, modify) may take before the \
         server counts as failed.",
    );
    LOCAL_UGLDAPPOOLSIZE: i64 = (
        "local.ugldappoolsize",
        Kind::Integer { min: 1, max: 1024 },
        Some("8"),
        "Connections kept open to each user/group directory server.",
    );
    LOCAL_UGLDAPPORT: i64 = (
        "local.ugldapport",
        PORT,
        Some("389"),
        "Port of the user/group directory for hosts that name none (636 is usual with \
         local.ugldapusessl = 1).",
    );
    LOCAL_UGLDAPSTARTTLS: bool = (
        "local.ugldapstarttls",
        FLAG,
        Some("0"),
        "1: upgrade plain LDAP connections to the user/group directory with StartTLS \
         (ignored with local.ugldapusessl = 1).",
    );
    LOCAL_UGLDAPUSESSL: bool = (
        "local.ugldapusessl",
        FLAG,
        Some("0"),
        "1: talk to the user/group directory over LDAPS; 0: plain LDAP (StartTLS when \
         configured).",
    );
    LOCAL_USERFILE: String = (
        "local.userfile",
        Kind::String,
        Some(""),
        "Users file in Dovecot's passwd-file format (user:{SCHEME}hash:uid:gid::home::extra \
         fields mailhost=, mail=, mailalternateaddress=, allowedserviceaccess=, status=, \
         admin=), relative to the configuration file. When set it replaces the directory as \
         the user source; it is re-read when it changes. Empty: the LDAP directory.",
    );
    MMP_AUTHCACHEMAXENTRIES: i64 = (
        "mmp.authcachemaxentries",
        Kind::Integer {
            min: 1,
            max: 2_147_483_647,
        },
        Some("1000000"),
        "Most POP-before-SMTP authorizations (client addresses) the in-memory cache holds \
         over all its shards; when full, the oldest are evicted. Not used with \
         local.redisurl.",
    );
    MMP_AUTHFAILUREDELAY: i64 = (
        "mmp.authfailuredelay",
        NONNEG,
        Some("2"),
        "Seconds a client address waits before the reply to its first failed login; each \
         further failure doubles it up to mmp.authfailuremaxdelay. 0: no penalty.",
    );
    MMP_AUTHFAILUREMAXDELAY: i64 = (
        "mmp.authfailuremaxdelay",
        NONNEG,
        Some("15"),
        "Longest failed-login delay in seconds (see mmp.authfailuredelay).",
    );
    MMP_AUTHFAILURESECRET: String = (
        "mmp.authfailuresecret",
        Kind::Secret,
        Some(""),
        "Key of the hash by which front ends recognise a repeated user and password without \
         storing it; set the same value on front ends sharing local.redisurl. Empty: a \
         random key per process.",
    );
    MMP_AUTHSERVICETTL: i64 = (
        "mmp.authservicettl",
        SECONDS,
        Some("900"),
        "AuthServiceTTL: seconds a successful POP login authorizes SMTP relaying from the \
         same client address.",
    );
    MMP_BACKSIDECAFILE: String = (
        "mmp.backsidecafile",
        Kind::String,
        Some(""),
        "PEM file of the CA certificates that sign the message stores' certificates \
         (relative to the configuration file); empty: the certificate database's CAs \
         trusted for server authentication.",
    );
    MMP_BACKSIDEPROXYPROTOCOL: bool = (
        "mmp.backsideproxyprotocol",
        FLAG,
        Some("0"),
        "1: open every store connection with a PROXY protocol v2 header carrying the \
         client's address (the store must require it from the proxy, e.g. Dovecot's \
         haproxy = yes); XCLIENT and ID are then not sent. 0: XCLIENT (POP3) / ID (IMAP).",
    );
    MMP_BACKSIDETLS: String = (
        "mmp.backsidetls",
        Kind::String,
        Some("starttls"),
        "TLS toward the message stores: none (plaintext; a warning at start for a store \
         that is not on loopback), starttls (STARTTLS/STLS on the plain port) or tls \
         (implicit TLS; set the backside ports to 993/995).",
    );
    MMP_BACKSIDEVERIFY: bool = (
        "mmp.backsideverify",
        FLAG,
        Some("1"),
        "1: verify the store's certificate (chain to a trusted CA and the store's host \
         name); 0: accept any certificate (dangerous: anyone on the path can read the \
         session).",
    );
    MMP_CLIENTLOOKUP: bool = (
        "mmp.clientlookup",
        BOOL,
        Some("false"),
        "ClientLookup: do one reverse DNS lookup of the client at the proxy and pass the \
         name to the SMTP relay, only when a forward lookup of the name returns the \
         client's address (else [UNAVAILABLE], or [TEMPUNAVAIL] on DNS trouble).",
    );
    MMP_CONNLIMITS: Vec<String> = (
        "mmp.connlimits",
        Kind::CommaList,
        Some("0.0.0.0|0.0.0.0:20"),
        "ConnLimits: IP|MASK:NUM realms, comma-separated: at most NUM connections from one \
         client address in the realm; the most specific realm applies (IPv6 realms and \
         masks too; IPv6 clients count by /64). Empty: no per-address limit.",
    );
    MMP_EHLOKEYWORDS: Vec<String> = (
        "mmp.ehlokeywords",
        Kind::List,
        Some(""),
        "EhloKeywords: EHLO keywords passed from the SMTP relays to clients besides the \
         default set (8BITMIME PIPELINING DSN ENHANCEDSTATUSCODES EXPN HELP XLOOP ETRN SIZE \
         STARTTLS AUTH).",
    );
    MMP_FAILOVERTIMEOUT: i64 = (
        "mmp.failovertimeout",
        SECONDS,
        Some("10"),
        "FailoverTimeout: seconds to wait for an SMTP relay before trying the next; a \
         failed relay is not tried again for this many minutes.",
    );
    MMP_FORWARDCLIENTID: bool = (
        "mmp.forwardclientid",
        BOOL,
        Some("false"),
        "IMAP: pass the client's own ID fields (RFC 2971: name, version, os ...) on to the \
         store after the proxy's; fields whose names start with x- (x-originating-ip and \
         the like, which the store believes from the proxy) are never passed on. false: \
         the store sees only the proxy's fields.",
    );
    MMP_IMAP_BACKSIDEPORT: i64 = (
        "mmp.imap.backsideport",
        PORT,
        Some("143"),
        "Port of the IMAP message stores for hosts that name none.",
    );
    MMP_IPV6PREFIX: i64 = (
        "mmp.ipv6prefix",
        Kind::Integer { min: 1, max: 128 },
        Some("64"),
        "POP-before-SMTP: IPv6 clients in the same network of this prefix length share an \
         authorization (privacy addresses change within a /64); 128: exact addresses. \
         IPv4 addresses are always exact.",
    );
    MMP_MAXAUTHATTEMPTS: i64 = (
        "mmp.maxauthattempts",
        Kind::Integer { min: 1, max: 1000 },
        Some("3"),
        "Failed logins allowed on one connection before it is closed.",
    );
    MMP_MAXCLIENTS: i64 = (
        "mmp.maxclients",
        Kind::Integer {
            min: 1,
            max: 1_000_000,
        },
        Some("10000"),
        "Connections one daemon serves at once; more are refused before any TLS work.",
    );
    MMP_POP_BACKSIDEPORT: i64 = (
        "mmp.pop.backsideport",
        PORT,
        Some("110"),
        "Port of the POP3 message stores for hosts that name none.",
    );
    MMP_POPBEFORESMTPKLUDGECHANNEL: String = (
        "mmp.popbeforesmtpkludgechannel",
        Kind::String,
        Some(""),
        "PopBeforeSmtpKludgeChannel: channel the relay is to treat POP-authorized clients \
         as (e.g. tcp_intranet); XCLIENT passes the user as LOGIN and the relay's rules for \
         authenticated clients apply; the channel is logged with each such hand-off.",
    );
    MMP_PREAUTH: bool = (
        "mmp.preauth",
        BOOL,
        Some("false"),
        "PreAuth: authenticate POP users at the proxy and record their address for \
         POP-before-SMTP.",
    );
    MMP_PREAUTHTIMEOUT: i64 = (
        "mmp.preauthtimeout",
        SECONDS,
        Some("60"),
        "Seconds from connection to successful login (the TLS handshake included).",
    );
    MMP_PROXYHEADERTIMEOUT: i64 = (
        "mmp.proxyheadertimeout",
        SECONDS,
        Some("5"),
        "Seconds a host of mmp.trustedproxies has to send its PROXY protocol header.",
    );
    MMP_RELAYHANDOFF: String = (
        "mmp.relayhandoff",
        Kind::String,
        Some("xclient"),
        "How the SMTP proxy tells the relays who the client is: xclient (Postfix XCLIENT, \
         with the POP-before-SMTP user as LOGIN), proxy-v1 or proxy-v2 (a PROXY protocol \
         header; it cannot carry the user, so it is refused with mmp.preauth).",
    );
    MMP_RELAYTLS: String = (
        "mmp.relaytls",
        Kind::String,
        Some("maytls"),
        "TLS toward the SMTP relays: none, maytls (STARTTLS when offered; a certificate \
         that does not verify is logged and the session stays encrypted, unverified; \
         plaintext only without STARTTLS) or musttls (verified TLS, or the relay counts as \
         failed).",
    );
    MMP_SMTPPROXYPASSWORD: String = (
        "mmp.smtpproxypassword",
        Kind::Secret,
        Some(""),
        "SmtpProxyPassword: the chapter's relays' PROXY_PASSWORD. Refused when set: \
         XCLIENT and PROXY protocol relays authorize the proxy by its address (Postfix \
         smtpd_authorized_xclient_hosts), so no password is sent.",
    );
    MMP_SMTPRELAYS: Vec<String> = (
        "mmp.smtprelays",
        Kind::List,
        Some(""),
        "SmtpRelays: blank-separated host[:port] list of SMTP relays, used round robin.",
    );
    MMP_STOREADMIN: String = (
        "mmp.storeadmin",
        Kind::String,
        Some(""),
        "Store administrator (a Dovecot master user) for the master-user login: SASL \
         PLAIN with this authentication identity and the user as authorization identity.",
    );
    MMP_STORECONNECTTIMEOUT: i64 = (
        "mmp.storeconnecttimeout",
        SECONDS,
        Some("10"),
        "Seconds to connect to one message store before trying the next of the list.",
    );
    MMP_STOREHOSTS: Vec<String> = (
        "mmp.storehosts",
        Kind::List,
        Some(""),
        "Message stores for users without a mailHost: blank-separated host[:port] list \
         (IPv6 as [addr]:port), tried in order when a connection fails.",
    );
    MMP_STORELOGIN: String = (
        "mmp.storelogin",
        Kind::String,
        Some("auto"),
        "How the proxy logs in to the store: auto (replay the client's password after a \
         cleartext login, the master-user form after CRAM-MD5, SCRAM, APOP, EXTERNAL...), \
         replay (always the client's password; logins without one fail) or master \
         (always mmp.storeadmin).",
    );
    MMP_STORELOGINTIMEOUT: i64 = (
        "mmp.storelogintimeout",
        SECONDS,
        Some("30"),
        "Seconds from connecting to a store to being logged in there (greeting, TLS, \
         login).",
    );
    MMP_STOREPASSWORD: String = (
        "mmp.storepassword",
        Kind::Secret,
        Some(""),
        "Password of mmp.storeadmin.",
    );
    MMP_TIMEOUT: i64 = (
        "mmp.timeout",
        SECONDS,
        Some("1800"),
        "Timeout: seconds a logged-in connection may stay idle (IMAP needs at least 1800, \
         RFC 9051).",
    );
    MMP_TRUSTEDNETWORKS: Vec<String> = (
        "mmp.trustednetworks",
        Kind::CommaList,
        Some(""),
        "Client networks (CIDR, comma-separated) exempt from failed-login delays.",
    );
    MMP_TRUSTEDPROXIES: Vec<String> = (
        "mmp.trustedproxies",
        Kind::CommaList,
        Some(""),
        "Load balancers (CIDR, comma-separated) that must open every connection with a \
         PROXY protocol v1/v2 header; others may not send one. Empty: PROXY protocol off.",
    );
    SASL_DEFAULT_AUTO_TRANSITION: bool = (
        "sasl.default.auto_transition",
        BOOL,
        Some("false"),
        "When a user logs in with a plaintext password, rewrite the stored password in the \
         directory's default storage scheme.",
    );
    SASL_DEFAULT_LDAP_ADMINGROUPDN: String = (
        "sasl.default.ldap.admingroupdn",
        Kind::String,
        Some(""),
        "DN of the group whose members may log in on behalf of other users (proxy \
         authorization). Empty: nobody may.",
    );
    SASL_DEFAULT_LDAP_CERTMAPBASEDN: String = (
        "sasl.default.ldap.certmapbasedn",
        Kind::String,
        Some(""),
        "Search base for mapping client certificates to entries. Empty: \
         local.ugldapbasedn.",
    );
    SASL_DEFAULT_LDAP_CERTMAPFILE: String = (
        "sasl.default.ldap.certmapfile",
        Kind::String,
        Some(""),
        "certmap.conf that maps client certificates to directory entries; relative to the \
         configuration file. Empty: the certificate's e-mail address is matched against \
         mail.",
    );
    SASL_DEFAULT_LDAP_DOMAINFILTER: String = (
        "sasl.default.ldap.domainfilter",
        Kind::String,
        Some("(associatedDomain=%D)"),
        "Filter that finds a login's domain entry (with \
         sasl.default.ldap.searchfordomain = 1): %D the domain.",
    );
    SASL_DEFAULT_LDAP_HAS_PLAIN_PASSWORDS: bool = (
        "sasl.default.ldap.has_plain_passwords",
        BOOL,
        Some("false"),
        "The directory holds cleartext passwords: enables APOP, CRAM-MD5 and DIGEST-MD5.",
    );
    SASL_DEFAULT_LDAP_SEARCHFILTER: String = (
        "sasl.default.ldap.searchfilter",
        Kind::String,
        Some("(&(uid=%U)(objectclass=inetmailuser))"),
        "Default filter to find a user: %U local part, %D domain, %o login as typed.",
    );
    SASL_DEFAULT_LDAP_SEARCHFORDOMAIN: bool = (
        "sasl.default.ldap.searchfordomain",
        FLAG,
        Some("1"),
        "1: look up the login's domain first and search the user under it (with the \
         domain's inetDomainSearchFilter if it has one); 0: search under local.ugldapbasedn.",
    );
    SASL_DEFAULT_LDAP_VERIFY: String = (
        "sasl.default.ldap.verify",
        Kind::String,
        Some("bind"),
        "How passwords are checked: bind (bind to the directory as the user) or localhash \
         (read userPassword with the service account and check it here).",
    );
    SASL_DEFAULT_MECH_LIST: Vec<String> = (
        "sasl.default.mech_list",
        Kind::List,
        Some(""),
        "Space-separated list of SASL mechanisms; when non-empty it is the list, \
         overriding has_plain_passwords. ANONYMOUS stays IMAP-only and needs \
         service.imap.allowanonymouslogin too.",
    );
    SASL_DEFAULT_SCRAM_ITERATIONS: i64 = (
        "sasl.default.scram.iterations",
        Kind::Integer {
            min: 4096,
            max: 10_000_000,
        },
        Some("4096"),
        "Iteration count SCRAM announces for users who do not exist: set it to the count \
         the directory's SCRAM secrets use, so unknown users do not stand out by it.",
    );
    SASL_DEFAULT_SCRAM_UNKNOWNUSERSECRET: String = (
        "sasl.default.scram.unknownusersecret",
        Kind::String,
        Some(""),
        "File holding the server secret (base64) behind SCRAM's made-up answers for unknown \
         users; share it between front ends so the answers agree. Relative to the \
         configuration file. Empty: scram-unknown-user.secret in local.statedir, made on \
         first start.",
    );
    SASL_DEFAULT_TRANSITION_SCHEME: String = (
        "sasl.default.transition_scheme",
        Kind::String,
        Some("SHA512-CRYPT"),
        "Scheme sasl.default.auto_transition writes passwords in: SSHA, SSHA256, SSHA512, \
         SHA512-CRYPT[:rounds], SHA256-CRYPT[:rounds], PBKDF2-SHA256[:iterations], ARGON2 \
         or CLEARTEXT. Unknown users are checked against a value in this scheme too.",
    );
    SASL_DEFAULT_TRANSITION_SCRAM: bool = (
        "sasl.default.transition_scram",
        BOOL,
        Some("false"),
        "With sasl.default.auto_transition, also store SCRAM-SHA-256 keys (an extra \
         userPassword value, sasl.default.scram.iterations iterations) so the user can \
         log in with SCRAM.",
    );
    SERVICE_AUTHCACHETTL: i64 = (
        "service.authcachettl",
        NONNEG,
        Some("0"),
        "Seconds a successful directory lookup and login is remembered; a password change \
         is seen once this time has passed. 0: no cache.",
    );
    SERVICE_DEFAULTDOMAIN: String = (
        "service.defaultdomain",
        Kind::String,
        Some(""),
        "Domain of logins that name none (user instead of user@domain).",
    );
    SERVICE_HTTP_DOMAINALLOWED: FilterValue = (
        "service.http.domainallowed",
        Kind::Filter,
        Some(""),
        "Access filters whose matches are granted HTTP access.",
    );
    SERVICE_HTTP_DOMAINNOTALLOWED: FilterValue = (
        "service.http.domainnotallowed",
        Kind::Filter,
        Some(""),
        "Access filters whose matches are denied HTTP access.",
    );
    SERVICE_HTTP_PLAINTEXTMINCIPHER: Option<i64> = (
        "service.http.plaintextmincipher",
        NONNEG,
        None,
        "Per-service override of service.plaintextmincipher for HTTP.",
    );
    SERVICE_HTTP_PROXYDOMAINALLOWED: FilterValue = (
        "service.http.proxydomainallowed",
        Kind::Filter,
        Some(""),
        "Access filters (Allow rules) for the hosts, such as a portal's login server, allowed \
         to log in to HTTP on behalf of users (proxy authentication); empty: no host is. \
         Not part of HTTP's access filters (domainallowed/domainnotallowed).",
    );
    SERVICE_HTTP_SESSIONTIMEOUT: i64 = (
        "service.http.sessiontimeout",
        SECONDS,
        Some("7200"),
        "Seconds an idle HTTP session stays valid.",
    );
    SERVICE_IMAP_ALLOWANONYMOUSLOGIN: bool = (
        "service.imap.allowanonymouslogin",
        BOOL,
        Some("false"),
        "Allow SASL ANONYMOUS for IMAP.",
    );
    SERVICE_IMAP_DOMAINALLOWED: FilterValue = (
        "service.imap.domainallowed",
        Kind::Filter,
        Some(""),
        "Access filters whose matches are granted IMAP access.",
    );
    SERVICE_IMAP_DOMAINNOTALLOWED: FilterValue = (
        "service.imap.domainnotallowed",
        Kind::Filter,
        Some(""),
        "Access filters whose matches are denied IMAP access.",
    );
    SERVICE_IMAP_ENABLE: bool = (
        "service.imap.enable",
        BOOL,
        Some("true"),
        "Whether the IMAP front end serves clients at all (its listeners are bound).",
    );
    SERVICE_IMAP_LISTENADDR: String = (
        "service.imap.listenaddr",
        Kind::String,
        Some(""),
        "Blank-separated addresses the IMAP listeners bind to, overriding \
         service.listenaddr for IMAP. Empty: service.listenaddr.",
    );
    SERVICE_IMAP_PLAINTEXTMINCIPHER: Option<i64> = (
        "service.imap.plaintextmincipher",
        NONNEG,
        None,
        "Per-service override of service.plaintextmincipher for IMAP.",
    );
    SERVICE_IMAP_PORT: i64 = (
        "service.imap.port",
        PORT_OR_OFF,
        Some("143"),
        "IMAP port with STARTTLS (STARTTLS); 0 turns the listener off.",
    );
    SERVICE_IMAP_SSLPORT: i64 = (
        "service.imap.sslport",
        PORT_OR_OFF,
        Some("993"),
        "IMAP port with implicit TLS; 0 turns the listener off. Governed by the \
         service.imap.* parameters like the STARTTLS port.",
    );
    SERVICE_LISTENADDR: String = (
        "service.listenaddr",
        Kind::String,
        Some("0.0.0.0"),
        "Blank-separated addresses (IPv4 or IPv6) the daemons' listeners bind to, unless \
         service.<service>.listenaddr is set.",
    );
    SERVICE_PLAINTEXTMINCIPHER: i64 = (
        "service.plaintextmincipher",
        NONNEG,
        Some("1"),
        "Greater than 0: plaintext passwords (PLAIN, LOGIN, USER/PASS) are refused and not \
         advertised unless the connection uses TLS. 0: allowed without TLS. The default is 1 \
         (the original server defaulted to 0): no cleartext password without TLS unless the \
         configuration says so.",
    );
    SERVICE_POP_DOMAINALLOWED: FilterValue = (
        "service.pop.domainallowed",
        Kind::Filter,
        Some(""),
        "Access filters whose matches are granted POP access.",
    );
    SERVICE_POP_DOMAINNOTALLOWED: FilterValue = (
        "service.pop.domainnotallowed",
        Kind::Filter,
        Some(""),
        "Access filters whose matches are denied POP access.",
    );
    SERVICE_POP_ENABLE: bool = (
        "service.pop.enable",
        BOOL,
        Some("true"),
        "Whether the POP3 front end serves clients at all (its listeners are bound).",
    );
    SERVICE_POP_LISTENADDR: String = (
        "service.pop.listenaddr",
        Kind::String,
        Some(""),
        "Blank-separated addresses the POP3 listeners bind to, overriding \
         service.listenaddr for POP3. Empty: service.listenaddr.",
    );
    SERVICE_POP_PLAINTEXTMINCIPHER: Option<i64> = (
        "service.pop.plaintextmincipher",
        NONNEG,
        None,
        "Per-service override of service.plaintextmincipher for POP.",
    );
    SERVICE_POP_PORT: i64 = (
        "service.pop.port",
        PORT_OR_OFF,
        Some("110"),
        "POP3 port with STARTTLS (STLS); 0 turns the listener off.",
    );
    SERVICE_POP_SSLPORT: i64 = (
        "service.pop.sslport",
        PORT_OR_OFF,
        Some("995"),
        "POP3 port with implicit TLS; 0 turns the listener off. Governed by the \
         service.pop.* parameters like the STARTTLS port.",
    );
    SERVICE_SMTP_BARENEWLINE: String = (
        "service.smtp.barenewline",
        Kind::String,
        Some("reject"),
        "What a bare LF or bare CR in an SMTP command or message gets (the SMTP smuggling \
         class, CVE-2023-51764/5/6): reject (550 5.5.2; a command line closes the \
         connection, as Postfix's smtpd_forbid_bare_newline = reject) or normalize (read as \
         CR LF). Either way a message ends only at CR LF . CR LF.",
    );
    SERVICE_SMTP_DOMAINALLOWED: FilterValue = (
        "service.smtp.domainallowed",
        Kind::Filter,
        Some(""),
        "Access filters whose matches are granted authenticated SMTP access.",
    );
    SERVICE_SMTP_DOMAINNOTALLOWED: FilterValue = (
        "service.smtp.domainnotallowed",
        Kind::Filter,
        Some(""),
        "Access filters whose matches are denied authenticated SMTP access.",
    );
    SERVICE_SMTP_ENABLE: bool = (
        "service.smtp.enable",
        BOOL,
        Some("true"),
        "Whether the SMTP submission front end serves clients at all (its listeners are \
         bound).",
    );
    SERVICE_SMTP_LISTENADDR: String = (
        "service.smtp.listenaddr",
        Kind::String,
        Some(""),
        "Blank-separated addresses the SMTP listeners bind to, overriding \
         service.listenaddr for SMTP. Empty: service.listenaddr.",
    );
    SERVICE_SMTP_MAXERRORS: i64 = (
        "service.smtp.maxerrors",
        Kind::Integer {
            min: 1,
            max: 1000,
        },
        Some("10"),
        "Errors (bad commands, sequence errors, failed AUTH) on one SMTP connection before \
         it is closed with 421.",
    );
    SERVICE_SMTP_MAXMESSAGES: i64 = (
        "service.smtp.maxmessages",
        Kind::Integer {
            min: 1,
            max: 100_000,
        },
        Some("100"),
        "Messages accepted on one SMTP connection; the next MAIL FROM gets 421.",
    );
    SERVICE_SMTP_MAXMESSAGESIZE: i64 = (
        "service.smtp.maxmessagesize",
        NONNEG,
        Some("10485760"),
        "Largest SMTP message in octets (EHLO SIZE, MAIL FROM SIZE=, and the content as \
         received, which is refused with 552 5.3.4 beyond it); 0: no limit.",
    );
    SERVICE_SMTP_MAXRECIPIENTS: i64 = (
        "service.smtp.maxrecipients",
        Kind::Integer {
            min: 1,
            max: 100_000,
        },
        Some("100"),
        "Recipients accepted per SMTP message; more get 452 4.5.3.",
    );
    SERVICE_SMTP_PLAINTEXTMINCIPHER: Option<i64> = (
        "service.smtp.plaintextmincipher",
        NONNEG,
        None,
        "Per-service override of service.plaintextmincipher for SMTP.",
    );
    SERVICE_SMTP_PORT: i64 = (
        "service.smtp.port",
        PORT_OR_OFF,
        Some("587"),
        "SMTP submission port with STARTTLS (RFC 6409); 0 turns the listener off.",
    );
    SERVICE_SMTP_SENDERCHECK: bool = (
        "service.smtp.sendercheck",
        BOOL,
        Some("true"),
        "MAIL FROM must be one of the sending user's addresses (mail, mailAlternateAddress, \
         or the users file's mail= and mailalternateaddress=), for SMTP AUTH users and \
         POP-before-SMTP clients alike (553 5.7.1 otherwise, as Postfix's \
         reject_sender_login_mismatch). The null sender is allowed.",
    );
    SERVICE_SMTP_SSLPORT: i64 = (
        "service.smtp.sslport",
        PORT_OR_OFF,
        Some("465"),
        "SMTP submission port with implicit TLS (RFC 8314); 0 turns the listener off. \
         Governed by the service.smtp.* parameters like the STARTTLS port.",
    );
}

/// Finds a parameter by name, ignoring ASCII case.
#[must_use]
pub fn lookup(name: &str) -> Option<&'static Parameter> {
    PARAMETERS
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(name))
}

/// The known parameter whose name is closest to `name` (edit distance), if
/// any is reasonably close.
#[must_use]
pub fn closest(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    let (best, dist) = PARAMETERS
        .iter()
        .map(|p| (p.name, distance(&lower, p.name)))
        .min_by_key(|&(_, d)| d)?;
    // Accept up to a third of the name as edits, or a shared last component.
    let last = lower.rsplit('.').next().unwrap_or(&lower);
    if dist * 3 <= best.len().max(lower.len()) || best.rsplit('.').next() == Some(last) {
        Some(best)
    } else {
        None
    }
}

/// Levenshtein distance over bytes.
fn distance(a: &str, b: &str) -> usize {
    let a = a.as_bytes();
    let b = b.as_bytes();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, &ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j + 1] + 1).min(cur[j] + 1).min(prev[j] + cost);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_is_sorted_unique_and_lower_case() {
        for pair in PARAMETERS.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} / {}",
                pair[0].name,
                pair[1].name
            );
        }
        for p in PARAMETERS {
            assert_eq!(p.name, p.name.to_ascii_lowercase());
            assert!(!p.description.is_empty());
        }
    }

    #[test]
    fn closest_suggests_typos() {
        assert_eq!(
            closest("sasl.default.mech_lst"), // not a parameter name
            Some("sasl.default.mech_list")
        );
        assert_eq!(
            closest("service.imap.domainalowed"), // not a parameter name
            Some("service.imap.domainallowed")
        );
        assert_eq!(closest("mmp.PreAuht"), Some("mmp.preauth")); // not a parameter name
        assert_eq!(closest("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"), None);
    }

    #[test]
    fn every_parameter_has_a_typed_key_of_a_fitting_type() {
        assert_eq!(params::KEY_NAMES.len(), PARAMETERS.len());
        for ((key, name), param) in params::KEY_NAMES.iter().zip(PARAMETERS) {
            assert_eq!(*name, param.name);
            assert_eq!(*key, name.to_ascii_uppercase().replace('.', "_"));
        }
        let sample = crate::Config::parse(
            "service.imap.domainallowed = [\"imap: ALL\"]\nlocal.ugldapusessl = 1\nmmp.preauth = true\n",
        )
        .unwrap();
        for config in [crate::Config::default(), sample] {
            for (name, fits, read) in params::read_all(&config) {
                assert!(fits, "{name}: the key's type does not fit the kind");
                assert!(read.is_ok(), "{name}: {read:?}");
            }
        }
        let c = crate::Config::parse("local.ugldapusessl = 1\n").unwrap();
        assert!(c.get(params::LOCAL_UGLDAPUSESSL).unwrap());
        assert_eq!(
            c.get(params::SASL_DEFAULT_LDAP_SEARCHFILTER).unwrap(),
            "(&(uid=%U)(objectclass=inetmailuser))"
        );
        assert_eq!(c.get(params::LOCAL_UGLDAPHOST).unwrap(), ["localhost"]);
    }

    #[test]
    fn lookup_ignores_case() {
        assert_eq!(lookup("MMP.PreAuth").map(|p| p.name), Some("mmp.preauth"));
        assert!(lookup("no.such.thing").is_none());
    }
}
