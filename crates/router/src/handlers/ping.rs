//! `GET /v2/`: the answer that decides how a client authenticates for the
//! whole host (see `decision::ping`).

use super::{Answer, HostContext};
use crate::headers::bearer_token;
use crate::reply;
use axum::http::HeaderMap;
use pullgate_domain::client::ClientFamily;
use pullgate_domain::decision::{self, PingAnswer};
use pullgate_domain::location;

pub(super) fn answer(
    host: &HostContext<'_>,
    client: ClientFamily,
    headers: &HeaderMap,
) -> Answer<'static> {
    let holds_token = bearer_token(headers).is_some();
    let decided = decision::ping(host.mappings, client, holds_token);
    let response = match decided {
        PingAnswer::RedirectTo(base) => reply::redirect(&location::ping(base)),
        PingAnswer::Ok | PingAnswer::Welcome => reply::ping_ok(),
        PingAnswer::Challenge => reply::challenge(&host.public_base(), host.name, None, None, None),
    };
    Answer {
        response,
        taken: decided.path(),
        served: None,
    }
}
