//! Placeholder: being implemented.

use crate::client::{ClientContext, ClientMech, Credentials};
use crate::server::ServerMech;
use crate::{Error, Mechanism, ServerContext};

#[derive(Debug)]
pub(crate) enum Server {}
#[derive(Debug)]
pub(crate) enum Client {}
impl Server {
    pub(crate) fn new(_m: Mechanism, _ctx: &ServerContext) -> Result<Box<dyn ServerMech>, Error> {
        Err(Error::MechanismUnavailable)
    }
}
impl Client {
    pub(crate) fn new(_m: Mechanism, _c: Credentials, _ctx: &ClientContext) -> Result<Box<dyn ClientMech>, Error> {
        Err(Error::MechanismUnavailable)
    }
}
pub(crate) fn tls_server_end_point_hash(_der: &[u8]) -> Result<Vec<u8>, Error> {
    Err(Error::MechanismUnavailable)
}
