//! The Prometheus recorder behind the `metrics` facade the router, the
//! mapping cache and the sinks record through. Installed only with the
//! admin listener on, before the gateway is built (handles bind to the
//! recorder present when they are registered): without it, every
//! recording is a no-op.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use pullgate_router::metrics::{REQUESTS, UPSTREAM_DURATION, UPSTREAM_ERRORS};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Counter,
    Histogram,
}

/// Every metric pullgate emits: name, kind, labels, help. The README's
/// list is checked against it.
pub(crate) const METRICS: [(&str, Kind, &str, &str); 12] = [
    (
        REQUESTS,
        Kind::Counter,
        "kind, status, path",
        "Requests answered, by endpoint kind, HTTP status and path taken (redirect, proxy, local).",
    ),
    (
        UPSTREAM_DURATION,
        Kind::Histogram,
        "",
        "Upstream calls, until the answer's head arrived.",
    ),
    (
        UPSTREAM_ERRORS,
        Kind::Counter,
        "reason",
        "Upstream calls that failed or whose answer was not read, by reason.",
    ),
    (
        "pullgate_mapping_cache_total",
        Kind::Counter,
        "result",
        "Mapping cache lookups, by outcome.",
    ),
    (
        "pullgate_manifest_cache_total",
        Kind::Counter,
        "result",
        "Proxied manifest GETs answered from the manifest cache (hit) or fetched (miss).",
    ),
    (
        "pullgate_upstream_rate_limited_total",
        Kind::Counter,
        "",
        "Upstream 429 answers, passed on as TOOMANYREQUESTS.",
    ),
    (
        "pullgate_upstream_failovers_total",
        Kind::Counter,
        "by",
        "Failover primaries tripped, by what saw them fail (request, probe).",
    ),
    (
        "pullgate_mapping_reloads_total",
        Kind::Counter,
        "result",
        "Mapping reloads, applied (ok) or refused.",
    ),
    (
        "pullgate_events_written_total",
        Kind::Counter,
        "sink",
        "Events delivered by the event sink.",
    ),
    (
        "pullgate_events_retried_total",
        Kind::Counter,
        "sink",
        "Events the event sink sent again after a failed attempt.",
    ),
    (
        "pullgate_events_recovered_total",
        Kind::Counter,
        "sink",
        "Events found in event files a crash left open, recovered at start.",
    ),
    (
        "pullgate_events_undelivered_total",
        Kind::Counter,
        "sink",
        "Events not delivered, logged for pullgate replay.",
    ),
];

/// Upstream latencies run from milliseconds (a registry nearby) to the
/// 30 s upstream timeout.
const UPSTREAM_BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0,
];

/// The builder with our buckets; histograms without buckets would render
/// as summaries, which cannot be aggregated across instances.
pub(crate) fn builder() -> anyhow::Result<PrometheusBuilder> {
    Ok(PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(UPSTREAM_DURATION.into()), &UPSTREAM_BUCKETS)?)
}

/// Installs the recorder process-wide and describes every metric; the
/// handle renders the text `/metrics` answers with. Its upkeep (draining
/// histogram samples between scrapes) is the admin runtime's job.
pub(crate) fn install() -> anyhow::Result<PrometheusHandle> {
    let handle = builder()?.install_recorder()?;
    describe();
    Ok(handle)
}

fn describe() {
    for (name, kind, _, help) in METRICS {
        match kind {
            Kind::Counter => metrics::describe_counter!(name, help),
            Kind::Histogram => metrics::describe_histogram!(name, metrics::Unit::Seconds, help),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_lists_every_metric_with_its_labels() {
        let readme = include_str!("../../../README.md");
        for (name, _, labels, _) in METRICS {
            let line = readme
                .lines()
                .find(|l| l.contains(&format!("`{name}")))
                .unwrap_or_else(|| panic!("README.md does not list {name}"));
            for label in labels.split(", ").filter(|l| !l.is_empty()) {
                assert!(line.contains(label), "README.md: {name} without {label}");
            }
        }
    }

    #[test]
    fn histograms_render_with_our_buckets() {
        let recorder = builder().unwrap().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            metrics::histogram!(UPSTREAM_DURATION).record(0.2);
        });
        let text = handle.render();
        assert!(
            text.contains(&format!("{UPSTREAM_DURATION}_bucket{{le=\"0.25\"}} 1")),
            "{text}"
        );
        assert!(
            text.contains(&format!("{UPSTREAM_DURATION}_bucket{{le=\"0.1\"}} 0")),
            "{text}"
        );
    }
}
