//! Cloud and CI provider ranges from the files the providers publish:
//! AWS `ip-ranges.json`, Google Cloud `cloud.json`, Azure service tags
//! (`ServiceTags_Public_*.json`) and GitHub's `meta` (`actions` ranges).
//! The format is recognised from the content.

use crate::ranges::parse_cidr;
use serde_json::Value;

/// One published range: (CIDR, cloud provider, CI provider).
pub type ProviderRange = (String, Option<&'static str>, Option<&'static str>);

/// What a provider file says.
pub fn parse(text: &str) -> Result<Vec<ProviderRange>, String> {
    let json: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    if let Some(prefixes) = json.get("prefixes").and_then(Value::as_array) {
        let aws = json.get("syncToken").is_some()
            || prefixes.iter().any(|p| p.get("ip_prefix").is_some());
        for p in prefixes.iter().chain(
            json.get("ipv6_prefixes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        ) {
            for key in ["ip_prefix", "ipv6_prefix", "ipv4Prefix", "ipv6Prefix"] {
                if let Some(cidr) = p.get(key).and_then(Value::as_str) {
                    out.push((
                        cidr.to_string(),
                        Some(if aws { "aws" } else { "gcp" }),
                        None,
                    ));
                }
            }
        }
    } else if let Some(values) = json.get("values").and_then(Value::as_array) {
        for v in values {
            for cidr in strings(v.get("properties").and_then(|p| p.get("addressPrefixes"))) {
                out.push((cidr, Some("azure"), None));
            }
        }
    } else if json.get("actions").is_some() {
        for cidr in strings(json.get("actions")) {
            out.push((cidr, Some("azure"), Some("github-actions")));
        }
    } else {
        return Err(
            "not a known provider range file (AWS, Google Cloud, Azure, GitHub meta)".into(),
        );
    }
    if let Some((bad, _, _)) = out.iter().find(|(cidr, _, _)| parse_cidr(cidr).is_none()) {
        return Err(format!("bad CIDR {bad:?}"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_each_format() {
        let aws = r#"{"syncToken":"1","prefixes":[{"ip_prefix":"3.5.140.0/22","service":"AMAZON"}],"ipv6_prefixes":[{"ipv6_prefix":"2600:1f00::/24","service":"AMAZON"}]}"#;
        let gcp = r#"{"prefixes":[{"ipv4Prefix":"34.80.0.0/15","service":"Google Cloud"},{"ipv6Prefix":"2600:1900::/35"}]}"#;
        let azure = r#"{"values":[{"name":"AzureCloud","properties":{"addressPrefixes":["13.64.0.0/16","2603:1000::/40"]}}]}"#;
        let github =
            r#"{"hooks":["192.30.252.0/22"],"actions":["4.148.0.0/16","2a01:111:f403::/48"]}"#;
        assert_eq!(parse(aws).unwrap().len(), 2);
        assert!(parse(aws).unwrap().iter().all(|r| r.1 == Some("aws")));
        assert!(parse(gcp).unwrap().iter().all(|r| r.1 == Some("gcp")));
        assert!(parse(azure).unwrap().iter().all(|r| r.1 == Some("azure")));
        assert!(parse(github)
            .unwrap()
            .iter()
            .all(|r| r.2 == Some("github-actions")));
        assert!(parse(r#"{"something":1}"#).is_err());
        assert!(parse(r#"{"actions":["not-a-cidr"]}"#).is_err());
    }
}
