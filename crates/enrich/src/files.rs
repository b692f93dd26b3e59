//! Which enrichment files an operator configured: flags for `pullgate
//! serve`, environment variables in Lambda (where MaxMind-format databases
//! from a layer load fastest). One loader for both, so the gateway enriches
//! the same way wherever it runs.

use crate::{FileEnricher, LoadError};
use pullgate_domain::enrich::{Enricher, NoEnrichment};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnrichmentFiles {
    /// ip-location-db ASN range CSVs.
    pub asn_csv: Vec<PathBuf>,
    /// ip-location-db country range CSVs.
    pub country_csv: Vec<PathBuf>,
    /// MaxMind-format databases (ASN and/or country).
    pub mmdb: Vec<PathBuf>,
    /// Providers' published ranges (AWS, Google Cloud, Azure, GitHub meta).
    pub provider_ranges: Vec<PathBuf>,
    /// Operator overrides (TOML).
    pub overrides: Option<PathBuf>,
}

/// What loading took, for the log and the benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadStats {
    pub ranges: usize,
    pub memory_bytes: usize,
    pub millis: u64,
}

impl EnrichmentFiles {
    /// `{prefix}IP_ASN`, `{prefix}IP_COUNTRY`, `{prefix}IP_MMDB`,
    /// `{prefix}CLOUD_RANGES` (each a `:`-separated list of paths, as PATH
    /// is) and `{prefix}ORG_OVERRIDES` (one path).
    pub fn from_env(prefix: &str) -> Self {
        let list = |name: &str| -> Vec<PathBuf> {
            std::env::var_os(format!("{prefix}{name}"))
                .map(|value| {
                    std::env::split_paths(&value)
                        .filter(|p| !p.as_os_str().is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };
        EnrichmentFiles {
            asn_csv: list("IP_ASN"),
            country_csv: list("IP_COUNTRY"),
            mmdb: list("IP_MMDB"),
            provider_ranges: list("CLOUD_RANGES"),
            overrides: std::env::var_os(format!("{prefix}ORG_OVERRIDES"))
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == EnrichmentFiles::default()
    }

    /// Loads every file; with none configured, [`NoEnrichment`]: events
    /// then carry no AS, country or organization, and everything else
    /// works.
    pub fn load(&self) -> Result<(Arc<dyn Enricher>, LoadStats), LoadError> {
        if self.is_empty() {
            return Ok((Arc::new(NoEnrichment), LoadStats::default()));
        }
        let started = std::time::Instant::now();
        let mut files = FileEnricher::new();
        for path in &self.asn_csv {
            files.load_asn_csv(path)?;
        }
        for path in &self.country_csv {
            files.load_country_csv(path)?;
        }
        for path in &self.mmdb {
            files.load_mmdb(path)?;
        }
        for path in &self.provider_ranges {
            files.load_provider_ranges(path)?;
        }
        if let Some(path) = &self.overrides {
            files.load_overrides(path)?;
        }
        let stats = LoadStats {
            ranges: files.ranges(),
            memory_bytes: files.memory_bytes(),
            millis: started.elapsed().as_millis() as u64,
        };
        Ok((Arc::new(files), stats))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_configured_means_no_enrichment() {
        let (enricher, stats) = EnrichmentFiles::default().load().unwrap();
        assert_eq!(stats, LoadStats::default());
        let info = enricher.lookup("8.8.8.8".parse().unwrap());
        assert_eq!(info, Default::default());
    }

    #[test]
    fn paths_come_from_the_environment_as_lists() {
        std::env::set_var("PULLGATE_TEST_ENRICH_IP_MMDB", "/opt/a.mmdb:/opt/b.mmdb");
        std::env::set_var("PULLGATE_TEST_ENRICH_ORG_OVERRIDES", "/opt/orgs.toml");
        let files = EnrichmentFiles::from_env("PULLGATE_TEST_ENRICH_");
        assert_eq!(
            files.mmdb,
            vec![PathBuf::from("/opt/a.mmdb"), PathBuf::from("/opt/b.mmdb")]
        );
        assert_eq!(files.overrides, Some(PathBuf::from("/opt/orgs.toml")));
        assert!(files.asn_csv.is_empty() && !files.is_empty());
        let missing = files.load().err().unwrap().to_string();
        assert!(missing.contains("/opt/a.mmdb"), "{missing}");
    }
}
