//! The event path: each answered request becomes one event, built after the
//! answer is ready and handed to a sink that never blocks on I/O.

use crate::handlers::Answer;
use crate::headers::{header_str, SEC_GPC};
use crate::request_id::RequestIds;
use crate::{ClientAddr, RequestId};
use axum::http::header;
use http::request::Parts;
use pullgate_domain::decision::Path;
use pullgate_domain::enrich::Enricher;
use pullgate_domain::event::{self, RequestFacts};
use pullgate_domain::mapping::Mapping;
use pullgate_domain::privacy::ClientHasher;
use pullgate_domain::route::EndpointKind;
use pullgate_domain::sink::EventSink;
use pullgate_domain::time::UtcMillis;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Where events go and what they are built with.
pub struct Events {
    pub sink: Arc<dyn EventSink>,
    pub hasher: ClientHasher,
    pub enricher: Arc<dyn Enricher>,
    request_ids: RequestIds,
}

impl Events {
    pub fn new(
        sink: Arc<dyn EventSink>,
        hasher: ClientHasher,
        enricher: Arc<dyn Enricher>,
    ) -> Self {
        Events {
            sink,
            hasher,
            enricher,
            request_ids: RequestIds::new(),
        }
    }

    /// Builds the event for one answered request and submits it.
    pub(crate) fn record(
        &self,
        parts: &Parts,
        kind: Option<EndpointKind>,
        answer: &Answer<'_>,
        user_agent: &str,
        answered: SystemTime,
        elapsed: Duration,
    ) {
        let generated;
        let request_id = match parts.extensions.get::<RequestId>() {
            Some(id) => id.0.as_str(),
            None => {
                generated = self.request_ids.next();
                generated.as_str()
            }
        };
        let response = &answer.response;
        // Only a relayed manifest or referrers list has a media type we saw.
        let relayed = matches!(kind, Some(EndpointKind::Manifest | EndpointKind::Referrers));
        let media_type = (relayed && answer.taken == Some(Path::Proxy))
            .then(|| header_str(response.headers(), header::CONTENT_TYPE))
            .flatten();
        let served = answer.served.as_ref();
        let facts = RequestFacts {
            time: UtcMillis::from_system(answered),
            request_id,
            host: header_str(&parts.headers, header::HOST).unwrap_or(""),
            method: parts.method.as_str(),
            user_agent,
            addr: parts.extensions.get::<ClientAddr>().map(|a| a.0),
            dnt: header_str(&parts.headers, header::DNT),
            gpc: header_str(&parts.headers, SEC_GPC),
            kind,
            mapping: served.map(|s| s.mapping).map(Mapping::id),
            name: served.map(|s| s.name),
            upstream: served.map(|s| s.upstream),
            upstream_name: served.and_then(|s| s.upstream_name.as_deref()),
            reference: served.and_then(|s| s.reference),
            status: response.status().as_u16(),
            mode: answer.taken.map(Path::as_str),
            media_type,
            duration_us: elapsed.as_micros() as u64,
            failover: served.and_then(|s| s.failover),
        };
        let mut scratch = event::EventScratch::default();
        self.sink.submit(&event::build(
            &facts,
            &mut scratch,
            &self.hasher,
            self.enricher.as_ref(),
        ));
    }
}
