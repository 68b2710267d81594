//! The access filter engine embedded in a plain tokio TCP server.
//!
//! ```text
//! cargo run -p portcullis-examples --bin accessfilter_tokio_server -- \
//!     127.0.0.1:1143 'imap: 127.0.0.1 [::1]' 'ALL: ALL' [MAX_CONNECTIONS]
//! ```
//!
//! Arguments: the listen address, the Allow filters and the Deny filters
//! (file form, `\n` between filters), and optionally how many connections
//! to serve before exiting. Each connection is checked as the `imap`
//! service: the filters decide from the addresses alone when they can, and
//! only then look up the client's name (DNS, forward-confirmed) or user
//! (RFC 1413). Granted clients get a greeting, denied ones a BYE, and a
//! temporary lookup failure a "try again later".

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use portcullis_accessfilter::net::{DnsResolver, IdentClient};
use portcullis_accessfilter::{Action, FilterSet, Lookups, Query, Resolver, Verdict, parse_file};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

struct Server {
    filters: FilterSet,
    resolver: Option<DnsResolver>,
    ident: IdentClient,
}

impl Server {
    async fn check(&self, peer: SocketAddr, local: SocketAddr) -> (Verdict, String) {
        let mut query = Query::for_connection("imap", peer, local);
        let lookups = Lookups {
            resolver: self.resolver.as_ref().map(|r| r as &dyn Resolver),
            ident: Some(&self.ident),
        };
        let decision = self.filters.decide(&mut query, &lookups).await;
        (decision.verdict, decision.to_string())
    }

    async fn serve(self: Arc<Self>, mut stream: TcpStream) -> std::io::Result<()> {
        let (peer, local) = (stream.peer_addr()?, stream.local_addr()?);
        let (verdict, why) = self.check(peer, local).await;
        eprintln!("{peer}: {why}");
        let reply: &[u8] = match verdict {
            Verdict::Allow => b"* OK access granted\r\n",
            Verdict::Deny => b"* BYE access denied\r\n",
            Verdict::Tempfail => b"* BYE [UNAVAILABLE] try again later\r\n",
        };
        stream.write_all(reply).await?;
        stream.shutdown().await
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:1143".into());
    let allow = args
        .next()
        .unwrap_or_else(|| "imap: 127.0.0.1 [::1]".into())
        .replace("\\n", "\n");
    let deny = args
        .next()
        .unwrap_or_else(|| "ALL: ALL".into())
        .replace("\\n", "\n");
    let max: Option<usize> = args.next().map(|n| n.parse()).transpose()?;

    let filters = FilterSet::builder()
        .filters("allow", parse_file(&allow, Action::Allow)?)
        .filters("deny", parse_file(&deny, Action::Deny)?)
        .build();
    let resolver = DnsResolver::from_system(Duration::from_secs(3)).ok();
    let server = Arc::new(Server {
        filters,
        resolver,
        ident: IdentClient::new().with_timeout(Duration::from_secs(5)),
    });
    let listener = TcpListener::bind(&listen).await?;
    eprintln!("listening on {}", listener.local_addr()?);
    let mut served = 0usize;
    while max.is_none_or(|m| served < m) {
        let (stream, _) = listener.accept().await?;
        served += 1;
        let s = Arc::clone(&server);
        let task = tokio::spawn(async move {
            if let Err(e) = s.serve(stream).await {
                eprintln!("connection error: {e}");
            }
        });
        if max.is_some() {
            // Bounded runs (tests, demos) finish each connection in turn.
            task.await?;
        }
    }
    Ok(())
}
