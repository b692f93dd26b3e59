//! MaxMind-format (MMDB) databases: GeoLite2 / GeoIP2 ASN and Country, and
//! the ip-location-db MMDB builds. Field names differ between producers,
//! so records are read loosely: `autonomous_system_number` /
//! `autonomous_system_organization` for AS, `country.iso_code` or
//! `country_code` for the country.

use serde::Deserialize;
use std::net::IpAddr;

#[derive(Deserialize, Default)]
struct Record {
    autonomous_system_number: Option<u32>,
    autonomous_system_organization: Option<String>,
    country: Option<Country>,
    country_code: Option<String>,
}

#[derive(Deserialize, Default)]
struct Country {
    iso_code: Option<String>,
}

pub struct Mmdb {
    reader: maxminddb::Reader<Vec<u8>>,
    size: usize,
}

/// What one database knows about an address.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MmdbInfo {
    pub asn: Option<u32>,
    pub as_org: Option<String>,
    pub country: Option<String>,
}

impl Mmdb {
    pub fn open(path: &std::path::Path) -> Result<Self, String> {
        let size = std::fs::metadata(path).map_err(|e| e.to_string())?.len() as usize;
        maxminddb::Reader::open_readfile(path)
            .map(|reader| Mmdb { reader, size })
            .map_err(|e| e.to_string())
    }

    pub fn lookup(&self, addr: IpAddr) -> MmdbInfo {
        let record: Option<Record> = self
            .reader
            .lookup(addr)
            .ok()
            .and_then(|result| result.decode::<Record>().ok().flatten());
        let Some(record) = record else {
            return MmdbInfo::default();
        };
        MmdbInfo {
            asn: record.autonomous_system_number,
            as_org: record.autonomous_system_organization,
            country: record
                .country
                .and_then(|c| c.iso_code)
                .or(record.country_code),
        }
    }

    pub fn size_bytes(&self) -> usize {
        self.size
    }
}
