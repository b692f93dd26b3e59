//! The access line: one `pullgate::access` log line per request, written
//! once the answer is ready from what the request and the answer hold.

use crate::handlers::Answer;
use crate::ClientAddr;
use http::request::Parts;
use pullgate_domain::decision::Path;
use pullgate_domain::event;
use pullgate_domain::route::EndpointKind;
use std::time::Duration;

pub(crate) fn write(
    parts: &Parts,
    kind: Option<EndpointKind>,
    answer: &Answer<'_>,
    user_agent: &str,
    elapsed: Duration,
) {
    tracing::info!(
        target: "pullgate::access",
        method = parts.method.as_str(),
        path = event::truncate(parts.uri.path(), 256),
        status = answer.response.status().as_u16(),
        kind = kind.map(EndpointKind::as_str).unwrap_or("-"),
        taken = answer.taken.map(Path::as_str).unwrap_or("-"),
        client = %ClientPrefix(parts.extensions.get::<ClientAddr>()),
        ua = event::truncate(user_agent, 160),
        micros = elapsed.as_micros() as u64,
    );
}

/// The client in access lines: its network prefix (/24, /48), as events
/// keep it, never the address (logs are storage too: CloudWatch keeps the
/// Lambda's); "-" when unknown. No allocation.
struct ClientPrefix<'a>(Option<&'a ClientAddr>);

impl std::fmt::Display for ClientPrefix<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(addr) => f.write_str(&pullgate_domain::privacy::network_prefix(addr.0)),
            None => f.write_str("-"),
        }
    }
}
