//! Organization kind from an AS name: a heuristic with a confidence, used
//! only where no operator override says better.

use pullgate_domain::enrich::OrgKind;

const CLOUD: [&str; 22] = [
    "amazon",
    "aws",
    "google",
    "microsoft",
    "azure",
    "digitalocean",
    "hetzner",
    "ovh",
    "linode",
    "akamai",
    "oracle",
    "alibaba",
    "tencent",
    "cloudflare",
    "vultr",
    "scaleway",
    "contabo",
    "ionos",
    "fastly",
    "leaseweb",
    "hosting",
    "datacenter",
];
const EDUCATION: [&str; 9] = [
    "universit",
    "college",
    "school",
    "academ",
    "institute of technology",
    "research and education",
    "educat",
    "hochschule",
    "politecnico",
];
const ISP: [&str; 16] = [
    "telecom",
    "telekom",
    "communications",
    "broadband",
    "cable",
    "mobile",
    "wireless",
    "internet service",
    "comcast",
    "verizon",
    "vodafone",
    "orange",
    "telefonica",
    "charter",
    "at&t",
    "isp",
];

/// (kind, confidence)
pub fn kind_of(as_org: &str) -> (OrgKind, f32) {
    let lower = as_org.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| lower.contains(w));
    if has(&CLOUD) {
        (OrgKind::Cloud, 0.9)
    } else if has(&EDUCATION) {
        (OrgKind::Education, 0.8)
    } else if has(&ISP) {
        (OrgKind::Isp, 0.7)
    } else {
        (OrgKind::Business, 0.5)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        assert_eq!(kind_of("AMAZON-02").0, OrgKind::Cloud);
        assert_eq!(kind_of("Google LLC").0, OrgKind::Cloud);
        assert_eq!(
            kind_of("Massachusetts Institute of Technology").0,
            OrgKind::Education
        );
        assert_eq!(kind_of("Deutsche Telekom AG").0, OrgKind::Isp);
        assert_eq!(kind_of("Siemens AG").0, OrgKind::Business);
    }
}
