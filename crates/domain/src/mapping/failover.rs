//! Automatic failover, the rule: a mapping with a fallback whose primary
//! registry is failing is served as if the operator had marked it `down`,
//! so every decision that follows (redirect or proxy, the `/v2/` answer,
//! public names) is the one the fallback gets. Which registries are failing
//! is the gateway's to tell (its health state: proxied failures trip it, a
//! probe of `/v2/` clears it); this module only applies the answer.

use super::{HostMappings, Mapping, Registry, Target};
use std::sync::Arc;

impl Mapping {
    /// The primary registry, when this mapping has a fallback to switch
    /// to and is not already switched by the operator.
    pub fn failover_primary(&self) -> Option<&Arc<Registry>> {
        match &self.target {
            Target::Oci {
                upstream,
                fallback: Some(_),
            } if !self.down => Some(&upstream.registry),
            _ => None,
        }
    }

    /// Whether this mapping's answer is the fallback's: by the operator or
    /// by failover.
    pub fn serves_fallback(&self) -> bool {
        self.down
            && matches!(
                self.target,
                Target::Oci {
                    fallback: Some(_),
                    ..
                }
            )
    }
}

impl HostMappings {
    /// The primary registries whose health decides this host's answers.
    pub fn failover_primaries(&self) -> impl Iterator<Item = &Arc<Registry>> {
        self.oci.iter().filter_map(Mapping::failover_primary)
    }

    /// These mappings with every one whose primary `failing` says is
    /// failing switched to its fallback; `None` when none is (the common
    /// case: nothing is copied).
    pub fn failed_over(&self, failing: impl Fn(&Registry) -> bool) -> Option<HostMappings> {
        let switch = |m: &Mapping| m.failover_primary().is_some_and(|r| failing(r));
        if !self.oci.iter().any(switch) {
            return None;
        }
        let oci = self
            .oci
            .iter()
            .map(|m| {
                let mut m = m.clone();
                if switch(&m) {
                    m.down = true;
                    m.failed_over = true;
                }
                m
            })
            .collect();
        Some(HostMappings {
            oci,
            http: self.http.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::mapping::MappingTable;

    fn host(toml: &str) -> std::sync::Arc<crate::mapping::HostMappings> {
        MappingTable::from_toml(toml)
            .unwrap()
            .host("images.example")
            .cloned()
            .unwrap()
    }

    const TWO: &str = r#"
[[mappings]]
host = "images.example"
name = "app"
upstream = "primary.example/acme/app"
fallback = "ghcr.io/acme/app"

[[mappings]]
host = "images.example"
name = "tools"
upstream = "primary.example/acme/tools"

[[mappings]]
host = "images.example"
name = "manual"
upstream = "primary.example/acme/manual"
fallback = "ghcr.io/acme/manual"
down = true
"#;

    #[test]
    fn only_mappings_with_a_fallback_switch_and_only_while_their_primary_fails() {
        let mappings = host(TWO);
        let primaries: Vec<&str> = mappings
            .failover_primaries()
            .map(|r| r.base.as_str())
            .collect();
        assert_eq!(
            primaries,
            ["https://primary.example"],
            "manual is already switched"
        );
        assert!(mappings.failed_over(|_| false).is_none());

        let switched = mappings
            .failed_over(|r| r.base == "https://primary.example")
            .unwrap();
        let app = switched.lookup("app").unwrap();
        assert!(app.mapping.down && app.mapping.failed_over);
        assert_eq!(app.upstream().unwrap().registry.base, "https://ghcr.io");
        let tools = switched.lookup("tools").unwrap();
        assert!(
            !tools.mapping.down,
            "no fallback: the primary keeps serving"
        );
        let manual = switched.lookup("manual").unwrap();
        assert!(manual.mapping.down && !manual.mapping.failed_over);
        assert!(manual.mapping.serves_fallback() && app.mapping.serves_fallback());
        // Another registry failing switches nothing here.
        assert!(mappings
            .failed_over(|r| r.base == "https://ghcr.io")
            .is_none());
    }
}
