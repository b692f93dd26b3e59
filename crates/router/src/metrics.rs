//! What the router counts, through the `metrics` facade: a no-op until an
//! entry point installs a recorder (`pullgate serve` does with its admin
//! listener on; the gateway Lambda does not):
//! - `pullgate_requests_total{kind, status, path}`, once per request;
//! - `pullgate_upstream_request_duration_seconds`, per upstream call, until
//!   the answer's head arrived;
//! - `pullgate_upstream_errors_total{reason}`, per failed upstream call or
//!   unreadable answer.
//!
//! Handles are registered once and kept, so the request path adds an
//! atomic increment and no allocation: a label set built per call is a
//! `Vec` per call. A handle binds to the recorder installed when it is
//! registered, so entry points install theirs before building the gateway.

use http::StatusCode;
use metrics::{Counter, Histogram, SharedString};
use pullgate_domain::decision::Path;
use pullgate_domain::route::EndpointKind;
use std::sync::OnceLock;
use std::time::Duration;

pub const REQUESTS: &str = "pullgate_requests_total";
pub const UPSTREAM_DURATION: &str = "pullgate_upstream_request_duration_seconds";
pub const UPSTREAM_ERRORS: &str = "pullgate_upstream_errors_total";

/// The statuses a request counter is kept for, with their label: every
/// one the gateway answers itself and the usual ones of an upstream's
/// relayed answer. Sorted (binary search). Any other status is still
/// counted, with a handle (and its label) made for that one request.
const STATUSES: [(u16, &str); 27] = [
    (200, "200"),
    (201, "201"),
    (202, "202"),
    (204, "204"),
    (206, "206"),
    (301, "301"),
    (302, "302"),
    (303, "303"),
    (304, "304"),
    (307, "307"),
    (308, "308"),
    (400, "400"),
    (401, "401"),
    (403, "403"),
    (404, "404"),
    (405, "405"),
    (406, "406"),
    (409, "409"),
    (412, "412"),
    (414, "414"),
    (416, "416"),
    (429, "429"),
    (431, "431"),
    (500, "500"),
    (502, "502"),
    (503, "503"),
    (504, "504"),
];
/// Seven endpoint kinds, and `other` for a request no route parsed.
const KINDS: usize = 8;
/// redirect, proxy, local.
const PATHS: usize = 3;

/// `pullgate_requests_total`, one handle per (kind, path, status) seen,
/// registered on first use (most of the 648 combinations never occur, and
/// a series registered up front would show as a zero).
pub(crate) struct RequestCounters {
    slots: Box<[OnceLock<Counter>]>,
}

impl RequestCounters {
    pub(crate) fn new() -> Self {
        RequestCounters {
            slots: (0..KINDS * PATHS * STATUSES.len())
                .map(|_| OnceLock::new())
                .collect(),
        }
    }

    pub(crate) fn count(
        &self,
        kind: Option<EndpointKind>,
        taken: Option<Path>,
        status: StatusCode,
    ) {
        let code = status.as_u16();
        let Ok(known) = STATUSES.binary_search_by_key(&code, |(c, _)| *c) else {
            let label = SharedString::from_owned(status.as_str().to_owned());
            return register(kind, taken, label).increment(1);
        };
        let index = (kind_slot(kind) * PATHS + path_slot(taken)) * STATUSES.len() + known;
        let label = SharedString::const_str(STATUSES[known].1);
        match self.slots.get(index) {
            Some(slot) => slot
                .get_or_init(|| register(kind, taken, label))
                .increment(1),
            None => register(kind, taken, label).increment(1),
        }
    }
}

fn register(kind: Option<EndpointKind>, taken: Option<Path>, status: SharedString) -> Counter {
    metrics::counter!(
        REQUESTS,
        "kind" => kind_label(kind),
        "status" => status,
        "path" => path_label(taken),
    )
}

fn kind_slot(kind: Option<EndpointKind>) -> usize {
    match kind {
        Some(EndpointKind::Ping) => 0,
        Some(EndpointKind::Token) => 1,
        Some(EndpointKind::Manifest) => 2,
        Some(EndpointKind::Blob) => 3,
        Some(EndpointKind::Tags) => 4,
        Some(EndpointKind::Referrers) => 5,
        Some(EndpointKind::File) => 6,
        None => 7,
    }
}

/// The `kind` label: the route's endpoint kind, `other` when the request
/// was refused before a route parsed (bad path, push method, too large).
pub(crate) fn kind_label(kind: Option<EndpointKind>) -> &'static str {
    kind.map(EndpointKind::as_str).unwrap_or("other")
}

fn path_slot(taken: Option<Path>) -> usize {
    match taken {
        Some(Path::Redirect) => 0,
        Some(Path::Proxy) => 1,
        None => 2,
    }
}

/// The `path` label: `redirect`, `proxy`, or `local` for an answer the
/// gateway gave itself without either (refusals, a `/v2/` answered 200).
pub(crate) fn path_label(taken: Option<Path>) -> &'static str {
    taken.map(Path::as_str).unwrap_or("local")
}

/// Why an upstream call failed: the `reason` label of
/// `pullgate_upstream_errors_total`, after the errors `upstream.rs` tells
/// apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// No connection (refused, DNS, TLS).
    Connect,
    /// No answer within the upstream timeout.
    Timeout,
    /// Any other failure to send or to read the answer's head.
    Request,
    /// The upstream answered 5xx.
    Status5xx,
    /// An answer over the limit we read (token, tag list, Helm index).
    TooLarge,
    /// The answer's body broke off.
    Read,
    /// `/v2/` answered neither 2xx nor a challenge we understand.
    NoChallenge,
}

impl Failure {
    /// In declaration order: the handles are indexed by `failure as usize`.
    const ALL: [Failure; 7] = [
        Failure::Connect,
        Failure::Timeout,
        Failure::Request,
        Failure::Status5xx,
        Failure::TooLarge,
        Failure::Read,
        Failure::NoChallenge,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Failure::Connect => "connect",
            Failure::Timeout => "timeout",
            Failure::Request => "request",
            Failure::Status5xx => "status_5xx",
            Failure::TooLarge => "too_large",
            Failure::Read => "read",
            Failure::NoChallenge => "no_challenge",
        }
    }

    /// A connect timeout is a timeout: it is the upstream being slow.
    pub(crate) fn of(error: &reqwest::Error) -> Self {
        if error.is_timeout() {
            Failure::Timeout
        } else if error.is_connect() {
            Failure::Connect
        } else {
            Failure::Request
        }
    }
}

/// The upstream call histogram and error counters (a small, fixed label
/// set: registered up front, so every reason shows from zero).
pub(crate) struct UpstreamMetrics {
    duration: Histogram,
    errors: [Counter; Failure::ALL.len()],
}

impl UpstreamMetrics {
    pub(crate) fn register() -> Self {
        UpstreamMetrics {
            duration: metrics::histogram!(UPSTREAM_DURATION),
            errors: Failure::ALL
                .map(|f| metrics::counter!(UPSTREAM_ERRORS, "reason" => f.as_str())),
        }
    }

    pub(crate) fn took(&self, elapsed: Duration) {
        self.duration.record(elapsed);
    }

    pub(crate) fn failed(&self, failure: Failure) {
        self.errors[failure as usize].increment(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_what_the_indexing_assumes() {
        assert!(
            STATUSES.windows(2).all(|w| w[0].0 < w[1].0),
            "sorted, no repeats"
        );
        for (code, label) in STATUSES {
            assert_eq!(StatusCode::from_u16(code).unwrap().as_str(), label);
        }
        for (index, failure) in Failure::ALL.into_iter().enumerate() {
            assert_eq!(failure as usize, index, "{failure:?}");
        }
        assert_eq!(kind_slot(None), KINDS - 1);
        assert_eq!(path_slot(None), PATHS - 1);
    }

    #[test]
    fn a_status_outside_the_table_is_still_counted_with_its_code() {
        use metrics_util::debugging::{DebugValue, DebuggingRecorder};
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            let counters = RequestCounters::new();
            let teapot = StatusCode::from_u16(418).unwrap();
            counters.count(Some(EndpointKind::Manifest), Some(Path::Proxy), teapot);
            counters.count(Some(EndpointKind::Manifest), Some(Path::Proxy), teapot);
        });
        let recorded: Vec<_> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let labels: Vec<_> = key
                    .key()
                    .labels()
                    .map(|l| format!("{}={}", l.key(), l.value()))
                    .collect();
                (labels.join(","), value)
            })
            .collect();
        assert_eq!(
            recorded,
            [(
                "kind=manifest,status=418,path=proxy".to_string(),
                DebugValue::Counter(2)
            )]
        );
    }
}
