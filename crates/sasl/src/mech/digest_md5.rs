//! Placeholder: being implemented.

use crate::client::{ClientContext, ClientMech, Credentials};
use crate::server::ServerMech;
use crate::{Error, Mechanism, ServerContext};

#[derive(Debug)]
pub(crate) enum Server {}
#[derive(Debug)]
pub(crate) enum Client {}
impl Server {
    pub(crate) fn new(_ctx: &ServerContext) -> Result<Box<dyn ServerMech>, Error> {
        let _ = Mechanism::DigestMd5;
        Err(Error::MechanismUnavailable)
    }
}
impl Client {
    pub(crate) fn new(_c: Credentials, _ctx: &ClientContext) -> Result<Box<dyn ClientMech>, Error> {
        Err(Error::MechanismUnavailable)
    }
}
