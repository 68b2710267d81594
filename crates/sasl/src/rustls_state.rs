//! [`TlsState`] from a rustls connection (feature `rustls`).

use crate::{Error, TlsState, TlsVersion, tls_server_end_point};

/// The `tls-exporter` label and length (RFC 9266).
const EXPORTER_LABEL: &[u8] = b"EXPORTER-Channel-Binding";
const EXPORTER_LEN: usize = 32;

impl TlsState {
    /// The TLS state of a rustls connection whose handshake is complete:
    /// the version, the `tls-exporter` data, and `tls-server-end-point`
    /// from `server_certificate` (DER; the server passes its own, a client
    /// the peer's first certificate, or `None` to offer no such binding).
    ///
    /// rustls does not report whether a TLS 1.2 handshake used the
    /// extended master secret, only refuses one without it when the
    /// configuration's `require_ems` is set: pass that setting as
    /// `ems_required`. Without it, a TLS 1.2 connection never offers
    /// `tls-exporter` (RFC 9266 §3), only `tls-server-end-point`.
    ///
    /// # Errors
    /// [`Error::ApiMisuse`] while the handshake is still running;
    /// [`Error::ChannelBinding`] when the exporter fails or the
    /// certificate has no `tls-server-end-point` hash (then build the
    /// state without it).
    pub fn from_rustls<D>(
        conn: &rustls::ConnectionCommon<D>,
        ems_required: bool,
        server_certificate: Option<&[u8]>,
    ) -> Result<Self, Error> {
        if conn.is_handshaking() {
            return Err(Error::ApiMisuse("the TLS handshake is not complete"));
        }
        let version = match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => TlsVersion::Tls13,
            Some(rustls::ProtocolVersion::TLSv1_2) => TlsVersion::Tls12,
            _ => return Err(Error::ApiMisuse("no TLS 1.2 or 1.3 session")),
        };
        let mut exporter = zeroize::Zeroizing::new(vec![0u8; EXPORTER_LEN]);
        conn.export_keying_material(&mut exporter[..], EXPORTER_LABEL, Some(&[]))
            .map_err(|_| Error::cb(crate::Mechanism::ScramSha256Plus, "the TLS exporter failed"))?;
        let mut state = TlsState::new(version, version == TlsVersion::Tls12 && ems_required);
        state.tls_exporter = Some(exporter);
        if let Some(der) = server_certificate {
            state.tls_server_end_point = Some(tls_server_end_point(der)?);
        }
        Ok(state)
    }
}
