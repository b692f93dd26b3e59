//! The flags of `pullgate serve` (and the environment variables clap reads
//! for some): the local server's settings, read once. Defaults shared with
//! the Lambda functions come from `pullgate_settings::defaults`.

use crate::logging::AccessLog;
use crate::sources::{EventsTo, MappingsFrom};
use pullgate_domain::privacy::Rotation;
use pullgate_domain::store::CacheSettings;
use pullgate_router::ManifestCacheSettings;
use pullgate_settings::defaults;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

const MIB: usize = 1024 * 1024;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Mappings: a TOML file (reloaded on SIGHUP and when it changes) or
    /// `dynamodb:TABLE` (the table `pullgate map` writes; needs the `aws`
    /// build). Default: the embedded examples/mappings.toml.
    #[arg(long, visible_alias = "config", env = "PULLGATE_MAPPINGS")]
    pub(crate) mappings: Option<MappingsFrom>,
    /// Address to listen on; repeat for several (env: comma-separated).
    #[arg(
        long,
        env = "PULLGATE_LISTEN",
        value_delimiter = ',',
        default_value = "127.0.0.1:8080"
    )]
    pub(crate) listen: Vec<SocketAddr>,
    /// PEM certificate chain; with --tls-key, serve HTTPS.
    #[arg(long, env = "PULLGATE_TLS_CERT", requires = "tls_key")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// PEM private key.
    #[arg(long, env = "PULLGATE_TLS_KEY", requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,
    /// Access log: stdout, off, or a file path.
    #[arg(long, env = "PULLGATE_ACCESS_LOG", default_value = "stdout")]
    pub(crate) access_log: AccessLog,
    /// Write access lines as JSON.
    #[arg(long, env = "PULLGATE_LOG_JSON")]
    pub(crate) log_json: bool,
    /// Where events are written (`DIR/events/dt=YYYY-MM-DD/*.json.gz`) and
    /// the generated client-id key is kept.
    #[arg(long, env = "PULLGATE_DATA_DIR", default_value = defaults::DATA_DIR)]
    pub(crate) data_dir: PathBuf,
    /// Analytics events: `on` (files under --data-dir), `off`, or
    /// `firehose:STREAM` (needs the `aws` build).
    #[arg(long, env = "PULLGATE_EVENTS", default_value = "on")]
    pub(crate) events: EventsTo,
    /// With Firehose: send once the oldest held event is this old (or a
    /// full batch waits), and at shutdown.
    #[arg(long, env = "PULLGATE_FLUSH_MAX_AGE_MS", default_value_t = defaults::SERVE_FLUSH_MAX_AGE.as_millis() as u64)]
    pub(crate) flush_max_age_ms: u64,
    /// Key for client ids (HMAC). Default: a random key kept in the data
    /// directory, so ids stay stable across restarts.
    #[arg(long, env = "PULLGATE_CLIENT_ID_KEY", hide_env_values = true)]
    pub(crate) client_id_key: Option<String>,
    /// The key from a Secrets Manager secret instead (its id or ARN; needs
    /// the `aws` build), as the Lambda reads it.
    #[arg(
        long,
        env = "PULLGATE_CLIENT_ID_SECRET",
        conflicts_with = "client_id_key"
    )]
    pub(crate) client_id_secret: Option<String>,
    /// How often client ids change: day, month or never.
    #[arg(long, env = "PULLGATE_CLIENT_ID_ROTATION", default_value = defaults::CLIENT_ID_ROTATION_NAME)]
    pub(crate) client_id_rotation: Rotation,
    /// With dynamodb: how long a host's mappings are served before the
    /// table is asked again.
    #[arg(long, env = "PULLGATE_MAPPING_TTL_SECS", default_value_t = defaults::MAPPING_TTL.as_secs())]
    pub(crate) mapping_ttl_secs: u64,
    /// With dynamodb: how long "no such host" is remembered.
    #[arg(long, env = "PULLGATE_NEGATIVE_TTL_SECS", default_value_t = defaults::NEGATIVE_TTL.as_secs())]
    pub(crate) negative_ttl_secs: u64,
    /// With dynamodb: the bound on one table call.
    #[arg(long, env = "PULLGATE_STORE_TIMEOUT_MS", default_value_t = defaults::STORE_TIMEOUT.as_millis() as u64)]
    pub(crate) store_timeout_ms: u64,
    /// Proxied manifests kept by digest, in MiB; 0 turns the cache off.
    #[arg(long, env = "PULLGATE_MANIFEST_CACHE_MIB", default_value_t = defaults::MANIFEST_CACHE_BYTES / MIB)]
    pub(crate) manifest_cache_mib: usize,
    /// How long an upstream HEAD's answer for a tag is trusted; 0: a HEAD
    /// for every proxied manifest GET.
    #[arg(long, env = "PULLGATE_MANIFEST_REFERENCE_TTL_SECS", default_value_t = defaults::MANIFEST_REFERENCE_TTL.as_secs())]
    pub(crate) manifest_reference_ttl_secs: u64,
    /// How often the primaries of mappings with a fallback are probed
    /// (`/v2/`): a failing one switches its mappings to the fallback, one
    /// that answers again switches them back.
    #[arg(long, env = "PULLGATE_HEALTH_PROBE_SECS", default_value_t = defaults::HEALTH_PROBE_EVERY.as_secs())]
    pub(crate) health_probe_secs: u64,
    /// IP → ASN range file (ip-location-db `asn-ipv4.csv`/`asn-ipv6.csv`
    /// format); repeat for IPv4 and IPv6 (env: ':'-separated, as in Lambda).
    #[arg(long, env = "PULLGATE_IP_ASN", value_delimiter = ':')]
    pub(crate) ip_asn: Vec<PathBuf>,
    /// IP → country range file (ip-location-db `*-country-ipv4.csv`).
    #[arg(long, env = "PULLGATE_IP_COUNTRY", value_delimiter = ':')]
    pub(crate) ip_country: Vec<PathBuf>,
    /// A MaxMind-format database (GeoLite2 ASN/Country, ip-location-db
    /// MMDB); repeatable, consulted after the range files.
    #[arg(long, env = "PULLGATE_IP_MMDB", value_delimiter = ':')]
    pub(crate) ip_mmdb: Vec<PathBuf>,
    /// A cloud or CI provider's published ranges (AWS ip-ranges.json, Google
    /// Cloud cloud.json, Azure service tags, GitHub meta); repeatable.
    #[arg(long, env = "PULLGATE_CLOUD_RANGES", value_delimiter = ':')]
    pub(crate) cloud_ranges: Vec<PathBuf>,
    /// Operator overrides (TOML `[[override]]` with asn or cidr, name, kind).
    #[arg(long, env = "PULLGATE_ORG_OVERRIDES")]
    pub(crate) org_overrides: Option<PathBuf>,
    /// Proxies in front of pullgate whose X-Forwarded-For entries are
    /// trusted: the client address is the entry this many places from the
    /// right. 0 (default): the socket peer, never a client-supplied header.
    #[arg(long, env = "PULLGATE_TRUSTED_PROXIES", default_value_t = defaults::TRUSTED_PROXIES)]
    pub(crate) trusted_proxies: usize,
    /// Close connections that move no byte for this many seconds.
    #[arg(long, env = "PULLGATE_IDLE_TIMEOUT_SECS", default_value_t = defaults::IDLE_TIMEOUT.as_secs())]
    pub(crate) idle_timeout: u64,
    /// Worker threads, each with its own runtime and listener (default: one
    /// per core).
    #[arg(long, env = "PULLGATE_THREADS")]
    pub(crate) threads: Option<usize>,
    /// Admin listener for GET /metrics, /healthz and /readyz (for example
    /// 127.0.0.1:9090); off unless given. Keep it off the public network.
    #[arg(long, env = "PULLGATE_ADMIN_LISTEN")]
    pub(crate) admin_listen: Option<SocketAddr>,
}

impl ServeArgs {
    /// Certificate and key, when HTTPS was asked for (clap makes each
    /// require the other).
    pub(crate) fn tls_files(&self) -> Option<(&Path, &Path)> {
        self.tls_cert.as_deref().zip(self.tls_key.as_deref())
    }

    pub(crate) fn manifest_cache(&self) -> ManifestCacheSettings {
        ManifestCacheSettings {
            max_bytes: self.manifest_cache_mib.saturating_mul(MIB),
            reference_ttl: Duration::from_secs(self.manifest_reference_ttl_secs),
            ..ManifestCacheSettings::DEFAULT
        }
    }

    /// The mapping cache in front of a table store (DynamoDB: the `aws`
    /// feature).
    #[cfg_attr(not(feature = "aws"), allow(dead_code))]
    pub(crate) fn mapping_cache(&self) -> CacheSettings {
        CacheSettings {
            ttl: Duration::from_secs(self.mapping_ttl_secs),
            negative_ttl: Duration::from_secs(self.negative_ttl_secs),
            call_timeout: Duration::from_millis(self.store_timeout_ms),
            ..CacheSettings::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn parse(args: &[&str]) -> Result<ServeArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("serve").chain(args.iter().copied())).map(|c| c.serve)
    }

    #[test]
    fn defaults_are_the_shared_ones() {
        let args = parse(&[]).unwrap();
        assert_eq!(args.client_id_rotation, defaults::CLIENT_ID_ROTATION);
        assert_eq!(args.trusted_proxies, defaults::TRUSTED_PROXIES);
        assert_eq!(args.idle_timeout, defaults::IDLE_TIMEOUT.as_secs());
        assert_eq!(args.listen, vec!["127.0.0.1:8080".parse().unwrap()]);
        assert_eq!(args.events, EventsTo::Files);
        assert_eq!(args.mappings, None);
        assert_eq!(args.mapping_cache().ttl, defaults::MAPPING_TTL);
        assert!(args.tls_files().is_none() && args.threads.is_none());
        assert!(
            args.admin_listen.is_none(),
            "the admin listener is off by default"
        );
    }

    #[test]
    fn flags_are_read_in_their_unit() {
        let args = parse(&[
            "--client-id-rotation",
            "day",
            "--trusted-proxies",
            "2",
            "--idle-timeout",
            "5",
            "--events",
            "off",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
        ])
        .unwrap();
        assert_eq!(args.client_id_rotation, Rotation::Day);
        assert_eq!((args.trusted_proxies, args.idle_timeout), (2, 5));
        assert_eq!(args.events, EventsTo::Off);
        assert_eq!(
            args.tls_files(),
            Some((Path::new("c.pem"), Path::new("k.pem")))
        );
    }

    #[test]
    fn sources_are_read_from_flags_and_the_old_config_name() {
        let args = parse(&["--mappings", "dynamodb:t", "--events", "firehose:s"]).unwrap();
        assert_eq!(args.mappings, Some(MappingsFrom::DynamoDb("t".into())));
        assert_eq!(args.events, EventsTo::Firehose("s".into()));
        let args = parse(&["--config", "m.toml"]).unwrap();
        assert_eq!(args.mappings, Some(MappingsFrom::File("m.toml".into())));
        let error = parse(&["--events", "kinesis:x"]).err().unwrap().to_string();
        assert!(
            error.contains("--events") && error.contains("firehose:STREAM"),
            "{error}"
        );
    }

    #[test]
    fn bad_values_name_the_flag_and_the_value() {
        for (flag, value) in [
            ("--client-id-rotation", "weekly"),
            ("--idle-timeout", "abc"),
            ("--trusted-proxies", "many"),
        ] {
            let error = parse(&[flag, value]).err().unwrap().to_string();
            assert!(error.contains(flag) && error.contains(value), "{error}");
        }
        assert!(
            parse(&["--tls-cert", "c.pem"]).is_err(),
            "a certificate needs its key"
        );
    }
}
