//! The enrichment adapter: IP ranges from the standard files operators
//! supply (the ip-location-db / iptoasn range CSVs), organization kinds from
//! AS names, and operator overrides (ASN or CIDR → organization and kind).
//! Lookups are binary searches over sorted ranges: no allocation, no I/O.

mod classify;
mod files;
mod mmdb;
mod providers;
mod ranges;

pub use files::{EnrichmentFiles, LoadStats};
use pullgate_domain::enrich::{Enricher, NetworkInfo, OrgKind};
use ranges::{RangeSet, Strings};
use serde::Deserialize;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Format {
        path: String,
        line: usize,
        message: String,
    },
}

/// An operator's own knowledge: "AS64500 is Acme", "this /24 is Globex".
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    #[serde(default)]
    pub asn: Option<u32>,
    #[serde(default)]
    pub cidr: Option<String>,
    pub name: String,
    #[serde(default)]
    pub kind: Option<String>,
}

#[derive(Default)]
pub struct FileEnricher {
    asn: RangeSet<(u32, u32)>,
    country: RangeSet<u32>,
    by_cidr: RangeSet<(u32, OrgKind)>,
    by_asn: std::collections::HashMap<u32, (u32, OrgKind)>,
    /// (cloud provider, CI provider) by published range.
    providers: RangeSet<(Option<u32>, Option<u32>)>,
    mmdbs: Vec<mmdb::Mmdb>,
    strings: Strings,
}

impl FileEnricher {
    pub fn new() -> Self {
        FileEnricher::default()
    }

    /// `start,end,asn,organization` (ip-location-db `asn-ipv4.csv`,
    /// `asn-ipv6.csv`; iptoasn's TSV with a country column is not this).
    pub fn load_asn_csv(&mut self, path: &Path) -> Result<usize, LoadError> {
        let strings = &mut self.strings;
        self.asn.load_csv(path, 4, |fields| {
            let asn: u32 = fields[2]
                .parse()
                .map_err(|_| format!("bad ASN {:?}", fields[2]))?;
            Ok((asn, strings.intern(fields[3])))
        })
    }

    /// `start,end,country` (ip-location-db `*-country-ipv4.csv`).
    pub fn load_country_csv(&mut self, path: &Path) -> Result<usize, LoadError> {
        let strings = &mut self.strings;
        self.country.load_csv(path, 3, |fields| {
            if fields[2].len() != 2 {
                return Err(format!("bad country code {:?}", fields[2]));
            }
            Ok(strings.intern(fields[2]))
        })
    }

    /// A TOML file of `[[override]]` entries with `asn` or `cidr`, `name`,
    /// and `kind` (business, cloud, isp, education).
    pub fn load_overrides(&mut self, path: &Path) -> Result<usize, LoadError> {
        #[derive(Deserialize)]
        struct File {
            #[serde(default, rename = "override")]
            overrides: Vec<Override>,
        }
        let display = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
            path: display.clone(),
            source,
        })?;
        let file: File = toml::from_str(&text).map_err(|e| LoadError::Format {
            path: display.clone(),
            line: 0,
            message: e.to_string(),
        })?;
        let count = file.overrides.len();
        for (i, o) in file.overrides.into_iter().enumerate() {
            self.add_override(o).map_err(|message| LoadError::Format {
                path: display.clone(),
                line: i + 1,
                message,
            })?;
        }
        self.by_cidr.sort();
        Ok(count)
    }

    pub fn add_override(&mut self, o: Override) -> Result<(), String> {
        let kind = match o.kind.as_deref() {
            None | Some("business") => OrgKind::Business,
            Some("cloud") => OrgKind::Cloud,
            Some("isp") => OrgKind::Isp,
            Some("education") => OrgKind::Education,
            Some(other) => return Err(format!("unknown kind {other:?}")),
        };
        let name = self.strings.intern(&o.name);
        match (o.asn, o.cidr.as_deref()) {
            (Some(asn), None) => {
                self.by_asn.insert(asn, (name, kind));
            }
            (None, Some(cidr)) => {
                let (start, end) =
                    ranges::parse_cidr(cidr).ok_or_else(|| format!("bad CIDR {cidr:?}"))?;
                self.by_cidr.push(start, end, (name, kind));
            }
            _ => return Err("an override names exactly one of asn or cidr".into()),
        }
        Ok(())
    }

    /// A MaxMind-format database (GeoLite2 ASN / Country, ip-location-db
    /// MMDB builds): consulted for what the range files did not answer.
    pub fn load_mmdb(&mut self, path: &Path) -> Result<(), LoadError> {
        let db = mmdb::Mmdb::open(path).map_err(|message| LoadError::Format {
            path: path.display().to_string(),
            line: 0,
            message,
        })?;
        self.mmdbs.push(db);
        Ok(())
    }

    /// A provider's published range file (AWS `ip-ranges.json`, Google
    /// Cloud `cloud.json`, Azure service tags, GitHub `meta`).
    pub fn load_provider_ranges(&mut self, path: &Path) -> Result<usize, LoadError> {
        let display = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
            path: display.clone(),
            source,
        })?;
        let entries = providers::parse(&text).map_err(|message| LoadError::Format {
            path: display,
            line: 0,
            message,
        })?;
        let count = entries.len();
        for (cidr, cloud, ci) in entries {
            if let Some((start, end)) = ranges::parse_cidr(&cidr) {
                let cloud = cloud.map(|c| self.strings.intern(c));
                let ci = ci.map(|c| self.strings.intern(c));
                self.providers.push(start, end, (cloud, ci));
            }
        }
        // Providers publish overlapping prefixes (AWS: AMAZON and EC2).
        self.providers.sort();
        self.providers.merge_overlaps();
        Ok(count)
    }

    /// Bytes held by the loaded tables (for the benchmark's report).
    pub fn memory_bytes(&self) -> usize {
        self.asn.memory_bytes()
            + self.country.memory_bytes()
            + self.by_cidr.memory_bytes()
            + self.strings.memory_bytes()
            + self.mmdbs.iter().map(mmdb::Mmdb::size_bytes).sum::<usize>()
    }

    pub fn ranges(&self) -> usize {
        self.asn.len() + self.country.len()
    }
}

impl Enricher for FileEnricher {
    fn lookup(&self, addr: IpAddr) -> NetworkInfo {
        let mut info = NetworkInfo::default();
        let provider = self.providers.find(addr).copied();
        if let Some(&(asn, org)) = self.asn.find(addr) {
            info.asn = Some(asn);
            info.as_org = Some(self.strings.get(org));
        }
        if let Some(&cc) = self.country.find(addr) {
            info.country = Some(self.strings.get(cc));
        }
        for db in &self.mmdbs {
            if info.asn.is_some() && info.country.is_some() {
                break;
            }
            let found = db.lookup(addr);
            if info.asn.is_none() && found.asn.is_some() {
                info.asn = found.asn;
                info.as_org = found.as_org.map(Arc::from);
            }
            if info.country.is_none() {
                info.country = found.country.map(Arc::from);
            }
        }
        if let Some((cloud, ci)) = provider {
            info.cloud = cloud.map(|c| self.strings.get(c));
            info.ci = ci.map(|c| self.strings.get(c));
        }
        let exact = self
            .by_cidr
            .find(addr)
            .or_else(|| info.asn.and_then(|asn| self.by_asn.get(&asn)));
        if let Some(&(name, kind)) = exact {
            info.org = Some(self.strings.get(name));
            info.org_kind = Some(kind);
            info.org_confidence = Some(1.0);
        } else if provider.is_some() {
            // A provider's own published range: the client runs there.
            info.org_kind = Some(OrgKind::Cloud);
            info.org_confidence = Some(1.0);
        } else if let Some(as_org) = &info.as_org {
            let (kind, confidence) = classify::kind_of(as_org);
            info.org_kind = Some(kind);
            info.org_confidence = Some(confidence);
            // Only a business AS names the organization behind the client;
            // a cloud or ISP AS names the provider.
            if kind == OrgKind::Business || kind == OrgKind::Education {
                info.org = Some(as_org.clone());
            }
            if kind == OrgKind::Cloud && info.cloud.is_none() {
                info.cloud = Some(as_org.clone());
            }
        }
        info
    }
}

pub type SharedEnricher = Arc<dyn Enricher>;
