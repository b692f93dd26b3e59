//! Every default of a setting that `pullgate serve` and the Lambda functions
//! share or document, in one place, each with why it is what it is.

use pullgate_domain::privacy::Rotation;
use pullgate_domain::store::CacheSettings;
use std::time::Duration;

/// One upstream request (reqwest's total timeout, the body included) is
/// given up after this long: long enough for a slow registry's token
/// server, short enough that a client sees our error before its own timeout.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(30);

/// How long an upstream's auth discovery (its challenge) is trusted: it
/// changes with a registry's configuration, rarely, and asking again costs
/// an upstream round trip on a request.
pub const AUTH_CACHE_TTL: Duration = Duration::from_secs(600);

/// Lambda's mapping cache: how long a host's mappings are served before the
/// DynamoDB table is read again (`PULLGATE_MAPPING_TTL_SECS`). A mapping
/// change reaches every warm environment within this time.
pub const MAPPING_TTL: Duration = CacheSettings::DEFAULT.ttl;

/// How long "no such host" is remembered (`PULLGATE_NEGATIVE_TTL_SECS`): a
/// scanner trying random hosts costs one table read per host per this time.
pub const NEGATIVE_TTL: Duration = CacheSettings::DEFAULT.negative_ttl;

/// Upper bound of one mapping-table call (`PULLGATE_STORE_TIMEOUT_MS`): a
/// slow table must not hold the request; the last good copy serves instead.
pub const STORE_TIMEOUT: Duration = CacheSettings::DEFAULT.call_timeout;

/// How often client ids change (`--client-id-rotation`,
/// `PULLGATE_CLIENT_ID_ROTATION`): a month. Unique pullers per month is the
/// headline figure of a report, and only ids that stay the same for the
/// whole month count it: with a daily key, one puller pulling every day is
/// thirty ids, so the monthly unique count becomes the sum of the daily
/// ones (and polling, which is told by the intervals between a client's
/// pulls, is not seen across days). Counts per day and week stay right with
/// a monthly key. A shorter rotation links a client's requests over less
/// time, so it is more private: an operator who prefers that sets `day` and
/// reads unique pullers per day only.
pub const CLIENT_ID_ROTATION: Rotation = Rotation::Month;

/// [`CLIENT_ID_ROTATION`] as the flag value clap shows and parses.
pub const CLIENT_ID_ROTATION_NAME: &str = rotation_name(CLIENT_ID_ROTATION);

/// Lambda's event batch window (`PULLGATE_FLUSH_MAX_AGE_MS`): the events
/// of a second share a flush. A Firehose stream takes 2,000 PutRecordBatch
/// calls a second by default, the stage's default request rate: a flush
/// after every response would meet that quota exactly at the traffic peak.
/// One environment serves one request at a time, so with a second's window
/// it makes at most about one call a second, whatever its request rate.
/// The price: events wait in a frozen environment until its next request
/// after the window, or its SIGTERM flush; an environment that dies
/// without SIGTERM (out of memory, a crash) loses at most one window.
pub const FLUSH_MAX_AGE: Duration = Duration::from_secs(1);

/// Lambda's bound on one flush (`PULLGATE_FLUSH_TIMEOUT_MS`): the flush
/// runs after the response, but the environment is held (and billed) until
/// it ends. A throttled or unreachable stream costs at most this per
/// invocation; what is unsent goes to the next flush.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// The SIGTERM flush's bound: Lambda gives a function with internal
/// extensions 500 ms between SIGTERM and the kill; what is unsent by then
/// is logged for `pullgate replay`, which itself takes time.
pub const SHUTDOWN_FLUSH_TIMEOUT: Duration = Duration::from_millis(300);

/// Lambda's upstream call timeout (`PULLGATE_UPSTREAM_TIMEOUT_SECS`) and
/// a request's whole budget: both under the function's 29 s timeout (API
/// Gateway's own limit is 30 s), with room for the flush after the
/// response, so a slow upstream ends in our 504 and an event, not in API
/// Gateway's bare 503 with the event lost.
pub const LAMBDA_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(20);
pub const LAMBDA_REQUEST_BUDGET: Duration = Duration::from_secs(25);

/// Bytes of proxied manifests kept by digest (`--manifest-cache-mib`,
/// `PULLGATE_MANIFEST_CACHE_MIB`): 32 MiB holds ~10,000 manifests and
/// indexes, a small part of a 512 MB Lambda. 0 turns the cache off.
pub const MANIFEST_CACHE_BYTES: usize = 32 * 1024 * 1024;

/// How long an upstream HEAD's "this tag is that digest" is trusted
/// (`--manifest-reference-ttl-secs`): a few seconds turn a burst of pulls of
/// one tag into one HEAD, and a pushed tag is seen within that time. 0: a
/// HEAD for every request.
pub const MANIFEST_REFERENCE_TTL: Duration = Duration::from_secs(5);

/// How often the primaries of mappings with a fallback are probed
/// (`--health-probe-secs`, `PULLGATE_HEALTH_PROBE_SECS`): how long
/// redirected clients can be sent to a primary that died before the
/// gateway sends them to the fallback, and how soon a primary that is back
/// serves again.
pub const HEALTH_PROBE_EVERY: Duration = Duration::from_secs(5);

/// `pullgate serve`'s Firehose flush (`--flush-max-age-ms`): a server is
/// never frozen, so it can gather a second of events into full records
/// (fewer calls, lower cost) and still lose at most that second to a crash.
pub const SERVE_FLUSH_MAX_AGE: Duration = Duration::from_secs(1);

/// How often `pullgate serve` looks at its mapping file for a change.
pub const MAPPING_FILE_POLL: Duration = Duration::from_secs(1);

/// `pullgate serve` closes a connection that moves no byte for this long
/// (`--idle-timeout`): the slow-loris guard, far above any client's pause
/// between the requests of a pull.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Proxies whose X-Forwarded-For entries are trusted (`--trusted-proxies`):
/// none. Without one in front, every entry is the client's own claim, so by
/// default the client address is the socket peer, never a header.
pub const TRUSTED_PROXIES: usize = 0;

/// Where `pullgate serve` writes events and keeps its client-id key, and
/// `pullgate report` reads them (`--data-dir`): beside where it was started.
pub const DATA_DIR: &str = "pullgate-data";

/// The Glue database and the events table of `infra/sql/events_table.sql`
/// (`GLUE_DATABASE`, `EVENTS_TABLE`), as the SAM template creates them.
pub const GLUE_DATABASE: &str = "pullgate";
pub const EVENTS_TABLE: &str = "events";

/// The report Lambda's range (`REPORT_DAYS`): thirty days ending today, a
/// month of pulls however the calendar falls.
pub const REPORT_DAYS: i64 = 30;

/// The name a rotation is given by (the inverse of its `FromStr`).
pub const fn rotation_name(rotation: Rotation) -> &'static str {
    match rotation {
        Rotation::Day => "day",
        Rotation::Month => "month",
        Rotation::Never => "never",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_names_parse_back_to_their_rotation() {
        for rotation in [Rotation::Day, Rotation::Month, Rotation::Never] {
            assert_eq!(rotation_name(rotation).parse::<Rotation>(), Ok(rotation));
        }
        assert_eq!(
            CLIENT_ID_ROTATION_NAME.parse::<Rotation>(),
            Ok(CLIENT_ID_ROTATION)
        );
    }
}
