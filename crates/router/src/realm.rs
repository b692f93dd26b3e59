//! Fetching token realms safely (the rule: `pullgate_domain::realm`). The
//! realm comes from the upstream's challenge and the gateway can reach
//! what clients cannot, so realms are fetched by clients of their own:
//! one per set of admitted address kinds, each with a DNS resolver that
//! keeps only the addresses the set admits. The check on a name thus
//! happens on the addresses the connection really uses (no window for a
//! name to change its answer between a check and the call); an IP literal
//! never reaches a resolver and is checked before the call.

use pullgate_domain::realm::{self, Allowed, RealmError};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

pub(crate) struct RealmClients {
    timeout: Duration,
    /// What each upstream's own addresses admit, learnt with its auth
    /// discovery's lifetime.
    upstreams: RwLock<HashMap<String, (Allowed, Instant)>>,
    ttl: Duration,
    clients: Mutex<HashMap<Allowed, reqwest::Client>>,
}

/// Why a realm was not fetched.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RealmRefused {
    #[error(transparent)]
    Rule(#[from] RealmError),
    #[error("cannot build the realm client: {0}")]
    Build(#[source] reqwest::Error),
}

impl RealmClients {
    pub(crate) fn new(timeout: Duration, ttl: Duration) -> Self {
        RealmClients {
            timeout,
            upstreams: RwLock::new(HashMap::new()),
            ttl,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The client to fetch `realm` with for the upstream at
    /// `upstream_base`, if the realm rule lets it be fetched at all.
    pub(crate) async fn client_for(
        &self,
        realm: &str,
        upstream_base: &str,
    ) -> Result<reqwest::Client, RealmRefused> {
        let allowed = self.upstream_allows(upstream_base).await;
        realm::check(realm, upstream_base, allowed)?;
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(client) = clients.get(&allowed) {
            return Ok(client.clone());
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(self.timeout)
            .user_agent(crate::upstream::USER_AGENT)
            .dns_resolver(Arc::new(Filtering { allowed }))
            .build()
            .map_err(RealmRefused::Build)?;
        clients.insert(allowed, client.clone());
        Ok(client)
    }

    /// The non-public kinds of address the upstream itself is at. A name
    /// that does not resolve admits public addresses only.
    async fn upstream_allows(&self, upstream_base: &str) -> Allowed {
        if let Ok(known) = self.upstreams.read() {
            if let Some((allowed, at)) = known.get(upstream_base) {
                if at.elapsed() < self.ttl {
                    return *allowed;
                }
            }
        }
        let Some(host) = realm::upstream_host(upstream_base) else {
            return Allowed::PUBLIC;
        };
        let allowed = match host.parse::<IpAddr>() {
            Ok(ip) => Allowed::for_upstream([ip]),
            Err(_) => match tokio::net::lookup_host((host, 0)).await {
                Ok(addrs) => Allowed::for_upstream(addrs.map(|a| a.ip())),
                Err(error) => {
                    tracing::warn!(upstream = %upstream_base, %error, "upstream name does not resolve; its realm may be public only");
                    Allowed::PUBLIC
                }
            },
        };
        if let Ok(mut known) = self.upstreams.write() {
            known.insert(upstream_base.to_string(), (allowed, Instant::now()));
        }
        allowed
    }
}

/// Resolves with the system resolver, keeping only admitted addresses.
struct Filtering {
    allowed: Allowed,
}

#[derive(Debug, thiserror::Error)]
#[error("token realm {0} resolves to no address the upstream's realm may be at")]
struct NoAdmittedAddress(String);

impl Resolve for Filtering {
    fn resolve(&self, name: Name) -> Resolving {
        let allowed = self.allowed;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let kept = admitted(&host, allowed).await?;
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

async fn admitted(
    host: &str,
    allowed: Allowed,
) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
    let kept: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
        .await?
        .filter(|addr| allowed.admits(addr.ip()))
        .collect();
    if kept.is_empty() {
        tracing::warn!(
            realm_host = host,
            "token realm refused: no admitted address"
        );
        return Err(Box::new(NoAdmittedAddress(host.to_string())));
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn names_are_checked_on_what_they_resolve_to() {
        let loopback = Allowed::for_upstream(["127.0.0.1".parse().unwrap()]);
        // `localhost` is loopback: refused for a public upstream's realm,
        // admitted for a loopback upstream's.
        let refused = admitted("localhost", Allowed::PUBLIC).await.unwrap_err();
        assert_eq!(
            refused.to_string(),
            "token realm localhost resolves to no address the upstream's realm may be at"
        );
        let kept = admitted("localhost", loopback).await.unwrap();
        assert!(kept.iter().all(|a| a.ip().is_loopback()), "{kept:?}");
    }

    #[tokio::test]
    async fn a_realm_the_rule_refuses_gets_no_client() {
        let clients = RealmClients::new(Duration::from_secs(5), Duration::from_secs(60));
        for (realm, base) in [
            (
                "http://169.254.169.254/latest/meta-data/",
                "http://127.0.0.1:5000",
            ),
            ("http://127.0.0.1:5001/token", "https://203.0.113.7"),
            ("https://10.0.0.1/token", "https://203.0.113.7"),
        ] {
            let refused = clients.client_for(realm, base).await;
            assert!(
                matches!(refused, Err(RealmRefused::Rule(_))),
                "{realm} for {base}"
            );
        }
        assert!(clients
            .client_for("http://127.0.0.1:5001/token", "http://127.0.0.1:5000")
            .await
            .is_ok());
    }
}
