//! The gateway Lambda's settings, read once from its environment (names
//! and defaults: the crate's documentation and `pullgate_settings::defaults`).
//! The enrichment file paths are read by `EnrichmentFiles::from_env`, the
//! one reader of them.

use pullgate_domain::privacy::Rotation;
use pullgate_domain::store::CacheSettings;
use pullgate_router::{EntryLimits, GatewayConfig, ManifestCacheSettings};
use pullgate_settings::lookup::process_env;
use pullgate_settings::{defaults, SettingsError, Vars};
use std::time::Duration;

const MIB: usize = 1024 * 1024;

#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// The DynamoDB mapping table.
    pub table: String,
    pub mapping_cache: CacheSettings,
    pub gateway: GatewayConfig,
    /// How often failover primaries are probed.
    pub health_probe: Duration,
    /// Events on: where they go and how clients are identified.
    pub events: Option<EventSettings>,
    /// Debug builds only: requests for this path panic in the handler, so
    /// the end-to-end test can show that the extension's wait still ends
    /// (`PULLGATE_DEBUG_PANIC_PATH`). Release builds never read it.
    pub debug_panic_path: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSettings {
    /// The Firehose delivery stream.
    pub stream: String,
    /// The Secrets Manager id of the client-id HMAC key.
    pub client_id_secret: String,
    pub rotation: Rotation,
    /// Zero: flush after every response; more: once the oldest event held
    /// is this old.
    pub flush_max_age: Duration,
    /// The longest one flush may hold the environment.
    pub flush_timeout: Duration,
}

impl GatewaySettings {
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(process_env)
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let vars = Vars::new(lookup);
        let table = vars.required("PULLGATE_TABLE", "the DynamoDB mapping table")?;
        let mapping_cache = CacheSettings {
            ttl: vars.secs("PULLGATE_MAPPING_TTL_SECS", defaults::MAPPING_TTL)?,
            negative_ttl: vars.secs("PULLGATE_NEGATIVE_TTL_SECS", defaults::NEGATIVE_TTL)?,
            call_timeout: vars.millis("PULLGATE_STORE_TIMEOUT_MS", defaults::STORE_TIMEOUT)?,
            ..CacheSettings::default()
        };
        let upstream_timeout = vars.secs(
            "PULLGATE_UPSTREAM_TIMEOUT_SECS",
            defaults::LAMBDA_UPSTREAM_TIMEOUT,
        )?;
        if upstream_timeout.is_zero() || upstream_timeout > defaults::LAMBDA_REQUEST_BUDGET {
            return Err(SettingsError::Invalid {
                name: "PULLGATE_UPSTREAM_TIMEOUT_SECS",
                value: upstream_timeout.as_secs().to_string(),
                expected: "1 to 25 seconds: under the request's 25 s budget and the function's 29 s timeout",
            });
        }
        let gateway = GatewayConfig {
            // API Gateway answers HTTPS only.
            public_scheme: "https",
            upstream_timeout,
            auth_cache_ttl: defaults::AUTH_CACHE_TTL,
            manifest_cache: ManifestCacheSettings {
                max_bytes: vars
                    .parsed(
                        "PULLGATE_MANIFEST_CACHE_MIB",
                        defaults::MANIFEST_CACHE_BYTES / MIB,
                        "a whole number of MiB (0: no manifest cache)",
                        |v| v.parse::<usize>().ok(),
                    )?
                    .saturating_mul(MIB),
                reference_ttl: vars.secs(
                    "PULLGATE_MANIFEST_REFERENCE_TTL_SECS",
                    defaults::MANIFEST_REFERENCE_TTL,
                )?,
                ..ManifestCacheSettings::DEFAULT
            },
            entry: EntryLimits::lambda(defaults::LAMBDA_REQUEST_BUDGET),
        };
        // The event variables mean nothing with events off, so they are
        // read (and can fail) only with a stream.
        let events = match vars.optional("PULLGATE_FIREHOSE_STREAM") {
            None => None,
            Some(stream) => Some(EventSettings {
                stream,
                client_id_secret: vars.required(
                    "PULLGATE_CLIENT_ID_SECRET",
                    "the Secrets Manager id of the client-id key, needed with PULLGATE_FIREHOSE_STREAM",
                )?,
                rotation: vars
                    .rotation("PULLGATE_CLIENT_ID_ROTATION", defaults::CLIENT_ID_ROTATION)?,
                flush_max_age: vars.millis("PULLGATE_FLUSH_MAX_AGE_MS", defaults::FLUSH_MAX_AGE)?,
                flush_timeout: vars
                    .millis("PULLGATE_FLUSH_TIMEOUT_MS", defaults::FLUSH_TIMEOUT)?
                    .max(Duration::from_millis(1)),
            }),
        };
        let health_probe = vars.secs("PULLGATE_HEALTH_PROBE_SECS", defaults::HEALTH_PROBE_EVERY)?;
        Ok(GatewaySettings {
            health_probe: health_probe.max(Duration::from_secs(1)),
            table,
            mapping_cache,
            gateway,
            events,
            debug_panic_path: if cfg!(debug_assertions) {
                vars.optional("PULLGATE_DEBUG_PANIC_PATH")
            } else {
                None
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(pairs: &[(&str, &str)]) -> Result<GatewaySettings, SettingsError> {
        let map: HashMap<&str, &str> = pairs.iter().copied().collect();
        GatewaySettings::from_lookup(|name| map.get(name).map(|v| v.to_string()))
    }

    const EVENTS_ON: [(&str, &str); 3] = [
        ("PULLGATE_TABLE", "mappings"),
        ("PULLGATE_FIREHOSE_STREAM", "events"),
        ("PULLGATE_CLIENT_ID_SECRET", "client-id-key"),
    ];

    #[test]
    fn the_table_is_required() {
        let error = read(&[]).unwrap_err().to_string();
        assert_eq!(
            error,
            "PULLGATE_TABLE is not set: the DynamoDB mapping table"
        );
    }

    #[test]
    fn only_the_table_given_means_defaults_and_no_events() {
        let settings = read(&[("PULLGATE_TABLE", "mappings")]).unwrap();
        assert_eq!(settings.table, "mappings");
        assert_eq!(settings.mapping_cache.ttl, defaults::MAPPING_TTL);
        assert_eq!(settings.mapping_cache.negative_ttl, defaults::NEGATIVE_TTL);
        assert_eq!(settings.mapping_cache.call_timeout, defaults::STORE_TIMEOUT);
        assert_eq!(
            settings.gateway.upstream_timeout,
            defaults::LAMBDA_UPSTREAM_TIMEOUT
        );
        assert_eq!(
            settings.gateway.entry,
            EntryLimits::lambda(defaults::LAMBDA_REQUEST_BUDGET)
        );
        assert!(settings.gateway.upstream_timeout < defaults::LAMBDA_REQUEST_BUDGET);
        assert_eq!(settings.gateway.auth_cache_ttl, defaults::AUTH_CACHE_TTL);
        assert_eq!(settings.gateway.public_scheme, "https");
        assert!(settings.events.is_none());
    }

    #[test]
    fn a_stream_turns_events_on_with_the_default_rotation_and_flush() {
        let events = read(&EVENTS_ON).unwrap().events.unwrap();
        assert_eq!(
            events,
            EventSettings {
                stream: "events".into(),
                client_id_secret: "client-id-key".into(),
                rotation: defaults::CLIENT_ID_ROTATION,
                flush_max_age: defaults::FLUSH_MAX_AGE,
                flush_timeout: defaults::FLUSH_TIMEOUT,
            }
        );
    }

    #[test]
    fn what_the_template_and_the_e2e_suite_pass_is_read_in_its_unit() {
        let mut pairs = EVENTS_ON.to_vec();
        pairs.extend([
            ("PULLGATE_CLIENT_ID_ROTATION", "day"),
            ("PULLGATE_MAPPING_TTL_SECS", "1"),
            ("PULLGATE_NEGATIVE_TTL_SECS", "2"),
            ("PULLGATE_STORE_TIMEOUT_MS", "500"),
            ("PULLGATE_FLUSH_MAX_AGE_MS", "600000"),
            ("PULLGATE_FLUSH_TIMEOUT_MS", "1000"),
            ("PULLGATE_UPSTREAM_TIMEOUT_SECS", "1"),
        ]);
        let settings = read(&pairs).unwrap();
        assert_eq!(settings.mapping_cache.ttl, Duration::from_secs(1));
        assert_eq!(settings.mapping_cache.negative_ttl, Duration::from_secs(2));
        assert_eq!(
            settings.mapping_cache.call_timeout,
            Duration::from_millis(500)
        );
        let events = settings.events.unwrap();
        assert_eq!(events.rotation, Rotation::Day);
        assert_eq!(events.flush_max_age, Duration::from_secs(600));
        assert_eq!(events.flush_timeout, Duration::from_secs(1));
        assert_eq!(settings.gateway.upstream_timeout, Duration::from_secs(1));
    }

    #[test]
    fn the_upstream_timeout_stays_under_the_request_budget() {
        for value in ["0", "26", "3600"] {
            let error = read(&[
                ("PULLGATE_TABLE", "mappings"),
                ("PULLGATE_UPSTREAM_TIMEOUT_SECS", value),
            ])
            .unwrap_err()
            .to_string();
            assert!(error.contains("under the request's 25 s budget"), "{error}");
        }
    }

    #[test]
    fn events_need_the_client_id_secret() {
        let error = read(&EVENTS_ON[..2]).unwrap_err().to_string();
        assert!(
            error.starts_with("PULLGATE_CLIENT_ID_SECRET is not set"),
            "{error}"
        );
        assert!(
            error.contains("needed with PULLGATE_FIREHOSE_STREAM"),
            "{error}"
        );
    }

    #[test]
    fn a_bad_value_is_an_error_naming_variable_and_value() {
        let cases = [
            ("PULLGATE_MAPPING_TTL_SECS", "abc"),
            ("PULLGATE_NEGATIVE_TTL_SECS", "-5"),
            ("PULLGATE_STORE_TIMEOUT_MS", "1.5"),
            ("PULLGATE_FLUSH_MAX_AGE_MS", ""),
            ("PULLGATE_FLUSH_TIMEOUT_MS", "soon"),
            ("PULLGATE_UPSTREAM_TIMEOUT_SECS", "1m"),
            ("PULLGATE_CLIENT_ID_ROTATION", "weekly"),
        ];
        for (name, value) in cases {
            let mut pairs = EVENTS_ON.to_vec();
            pairs.push((name, value));
            let error = read(&pairs).unwrap_err().to_string();
            assert!(
                error.starts_with(&format!("{name}={value:?} is not valid")),
                "{error}"
            );
        }
    }

    #[test]
    fn with_events_off_the_event_variables_are_not_read() {
        let settings = read(&[
            ("PULLGATE_TABLE", "mappings"),
            ("PULLGATE_CLIENT_ID_ROTATION", "weekly"),
            ("PULLGATE_FLUSH_MAX_AGE_MS", "soon"),
        ])
        .unwrap();
        assert!(settings.events.is_none());
    }
}
