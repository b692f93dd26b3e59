//! The flags of `pullgate serve` (and the environment variables clap reads
//! for some): the local server's settings, read once. Defaults shared with
//! the Lambda functions come from `pullgate_settings::defaults`.

use crate::logging::AccessLog;
use pullgate_domain::privacy::Rotation;
use pullgate_settings::defaults;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Mapping file (TOML). Default: the embedded examples/mappings.toml.
    #[arg(long, env = "PULLGATE_CONFIG")]
    pub(super) config: Option<PathBuf>,
    /// Address to listen on; repeat for several.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(super) listen: Vec<SocketAddr>,
    /// PEM certificate chain; with --tls-key, serve HTTPS.
    #[arg(long, requires = "tls_key")]
    pub(super) tls_cert: Option<PathBuf>,
    /// PEM private key.
    #[arg(long, requires = "tls_cert")]
    pub(super) tls_key: Option<PathBuf>,
    /// Access log: stdout, off, or a file path.
    #[arg(long, default_value = "stdout")]
    pub(super) access_log: AccessLog,
    /// Write access lines as JSON.
    #[arg(long)]
    pub(super) log_json: bool,
    /// Where events are written (`DIR/events/dt=YYYY-MM-DD/*.json.gz`).
    #[arg(long, env = "PULLGATE_DATA_DIR", default_value = defaults::DATA_DIR)]
    pub(super) data_dir: PathBuf,
    /// Record an analytics event per request.
    #[arg(long, default_value = "on", value_parser = ["on", "off"])]
    pub(super) events: String,
    /// Key for client ids (HMAC). Default: a random key kept in the data
    /// directory, so ids stay stable across restarts.
    #[arg(long, env = "PULLGATE_CLIENT_ID_KEY", hide_env_values = true)]
    pub(super) client_id_key: Option<String>,
    /// How often client ids change: day, month or never.
    #[arg(long, default_value = defaults::CLIENT_ID_ROTATION_NAME)]
    pub(super) client_id_rotation: Rotation,
    /// IP → ASN range file (ip-location-db `asn-ipv4.csv`/`asn-ipv6.csv`
    /// format); repeat for IPv4 and IPv6.
    #[arg(long)]
    pub(super) ip_asn: Vec<PathBuf>,
    /// IP → country range file (ip-location-db `*-country-ipv4.csv`).
    #[arg(long)]
    pub(super) ip_country: Vec<PathBuf>,
    /// A MaxMind-format database (GeoLite2 ASN/Country, ip-location-db
    /// MMDB); repeatable, consulted after the range files.
    #[arg(long)]
    pub(super) ip_mmdb: Vec<PathBuf>,
    /// A cloud or CI provider's published ranges (AWS ip-ranges.json, Google
    /// Cloud cloud.json, Azure service tags, GitHub meta); repeatable.
    #[arg(long)]
    pub(super) cloud_ranges: Vec<PathBuf>,
    /// Operator overrides (TOML `[[override]]` with asn or cidr, name, kind).
    #[arg(long)]
    pub(super) org_overrides: Option<PathBuf>,
    /// Proxies in front of pullgate whose X-Forwarded-For entries are
    /// trusted: the client address is the entry this many places from the
    /// right. 0 (default): the socket peer, never a client-supplied header.
    #[arg(long, default_value_t = defaults::TRUSTED_PROXIES)]
    pub(super) trusted_proxies: usize,
    /// Close connections that move no byte for this many seconds.
    #[arg(long, default_value_t = defaults::IDLE_TIMEOUT.as_secs())]
    pub(super) idle_timeout: u64,
    /// Worker threads, each with its own runtime and listener (default: one
    /// per core).
    #[arg(long)]
    pub(super) threads: Option<usize>,
    /// Admin listener for GET /metrics, /healthz and /readyz (for example
    /// 127.0.0.1:9090); off unless given. Keep it off the public network.
    #[arg(long, env = "PULLGATE_ADMIN_LISTEN")]
    pub(super) admin_listen: Option<SocketAddr>,
}

impl ServeArgs {
    /// Certificate and key, when HTTPS was asked for (clap makes each
    /// require the other).
    pub(super) fn tls_files(&self) -> Option<(&Path, &Path)> {
        self.tls_cert.as_deref().zip(self.tls_key.as_deref())
    }

    pub(super) fn events_on(&self) -> bool {
        self.events == "on"
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
        assert!(args.events_on() && args.tls_files().is_none() && args.threads.is_none());
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
        assert!(!args.events_on());
        assert_eq!(
            args.tls_files(),
            Some((Path::new("c.pem"), Path::new("k.pem")))
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
