//! The enrichment port: what is known about a client address before the
//! event is written (AS, country, organization, cloud and CI ranges).
//! Adapters load operator-supplied files; with none configured,
//! [`NoEnrichment`] keeps the gateway working without it.

use std::net::IpAddr;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgKind {
    Business,
    Cloud,
    Isp,
    Education,
}

impl OrgKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OrgKind::Business => "business",
            OrgKind::Cloud => "cloud",
            OrgKind::Isp => "isp",
            OrgKind::Education => "education",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetworkInfo {
    pub asn: Option<u32>,
    pub as_org: Option<Arc<str>>,
    pub country: Option<Arc<str>>,
    pub org: Option<Arc<str>>,
    pub org_kind: Option<OrgKind>,
    pub org_confidence: Option<f32>,
    pub cloud: Option<Arc<str>>,
    pub ci: Option<Arc<str>>,
}

pub trait Enricher: Send + Sync + 'static {
    fn lookup(&self, addr: IpAddr) -> NetworkInfo;
}

pub struct NoEnrichment;

impl Enricher for NoEnrichment {
    fn lookup(&self, _addr: IpAddr) -> NetworkInfo {
        NetworkInfo::default()
    }
}
