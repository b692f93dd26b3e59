//! What our token endpoint asks an upstream realm for: the client's scopes
//! in upstream names, the registry whose realm issues the token, and
//! whether the mapping's credentials are used.
//!
//! The rule that keeps a publisher's account for the publisher's images:
//! the mapping's credentials are used only for an anonymous client, and
//! only when every repository scope of the request lies inside that
//! mapping's upstream repository prefix on its registry; a request naming
//! anything else is refused, never served with the publisher's account.
//! Under those credentials only `pull` is asked: the token reaches the
//! client, and it must not let anyone push as the publisher.

use crate::credentials::CredentialSource;
use crate::error::{refusals, RegistryError};
use crate::mapping::{HostMappings, Registry, Upstream};
use crate::scope::RepositoryScope;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenScopes {
    /// The registry the kept scopes belong to (the first scope's).
    pub registry: Option<Arc<Registry>>,
    /// Scopes to ask the realm for, in upstream names.
    pub scopes: Vec<String>,
    /// The mapping's credentials to ask with.
    pub credentials: Option<Arc<CredentialSource>>,
}

struct Entry<'s, 'm> {
    scope: RepositoryScope<'s>,
    /// The upstream serving the name and the repository there.
    upstream: Option<(&'m Upstream, String)>,
}

/// `values` are the decoded `scope` parameters (each may hold several
/// space-separated scopes); unparseable and non-repository scopes are
/// dropped, as are scopes for another registry than the first one's (one
/// token comes from one realm).
pub fn plan<'s>(
    values: impl IntoIterator<Item = &'s str>,
    host: &HostMappings,
    anonymous: bool,
) -> Result<TokenScopes, RegistryError> {
    let entries: Vec<Entry<'s, '_>> = values
        .into_iter()
        .flat_map(|value| value.split(' '))
        .filter_map(RepositoryScope::parse)
        .map(|scope| {
            let upstream = host.lookup(scope.name).and_then(|matched| {
                let upstream = matched.mapping.active_upstream()?;
                Some((upstream, upstream.repository_for(matched.rest).into_owned()))
            });
            Entry { scope, upstream }
        })
        .collect();
    let registry = entries
        .iter()
        .find_map(|e| e.upstream.as_ref())
        .map(|(up, _)| up.registry.clone());
    let kept = || {
        entries.iter().filter_map(|e| {
            let (up, repository) = e.upstream.as_ref()?;
            let same = registry
                .as_ref()
                .is_some_and(|r| r.base == up.registry.base);
            same.then_some((e, repository.as_str()))
        })
    };
    let owner = anonymous
        .then(|| {
            kept().find(|(e, _)| {
                e.upstream
                    .as_ref()
                    .is_some_and(|(up, _)| up.credentials.is_some())
            })
        })
        .flatten()
        .and_then(|(e, _)| e.upstream.as_ref().map(|(up, _)| *up));
    let Some(owner) = owner else {
        let scopes = kept().map(|(e, repo)| e.scope.with_name(repo)).collect();
        return Ok(TokenScopes {
            registry,
            scopes,
            credentials: None,
        });
    };
    let inside = |e: &Entry| {
        e.upstream.as_ref().is_some_and(|(up, repo)| {
            up.registry.base == owner.registry.base && within(&owner.repository, repo)
        })
    };
    if !entries.iter().all(inside) {
        return Err(refusals::CREDENTIALS_SCOPE_DENIED);
    }
    let scopes = entries
        .iter()
        .filter_map(|e| {
            let (_, repo) = e.upstream.as_ref()?;
            Some(format!("{}:{repo}:pull", e.scope.resource_type))
        })
        .collect();
    Ok(TokenScopes {
        registry,
        scopes,
        credentials: owner.credentials.clone(),
    })
}

/// Whether `repository` is `prefix` or below it ("" holds everything).
pub fn within(prefix: &str, repository: &str) -> bool {
    prefix.is_empty()
        || repository
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::MappingTable;

    const FILE: &str = r#"
[[mappings]]
host = "h"
name = "private/app"
upstream = "http://127.0.0.1:5000/private/app"
mode = "proxy"
credentials = "env:PRIV"

[[mappings]]
host = "h"
name = "app"
upstream = "http://127.0.0.1:5000/app"
mode = "proxy"

[[mappings]]
host = "h"
name = "other"
upstream = "ghcr.io/acme/other"
mode = "proxy"
"#;

    /// The upstream scopes and credentials a plan gives.
    type Outcome = Result<(Vec<String>, Option<Arc<CredentialSource>>), RegistryError>;

    #[test]
    fn the_publisher_s_credentials_serve_only_the_mapping_they_belong_to() {
        let table = MappingTable::from_toml(FILE).unwrap();
        let host = table.host("h").unwrap();
        let creds = Some(Arc::new(CredentialSource::Env("PRIV".into())));
        let denied = Err(refusals::CREDENTIALS_SCOPE_DENIED);
        let ok = |scopes: &[&str], credentials: &Option<Arc<CredentialSource>>| {
            Ok((
                scopes.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                credentials.clone(),
            ))
        };
        // (scope values, anonymous, result: (upstream scopes, credentials))
        let cases: Vec<(Vec<&str>, bool, Outcome)> = vec![
            (
                vec!["repository:private/app:pull"],
                true,
                ok(&["repository:private/app:pull"], &creds),
            ),
            (
                vec!["repository:private/app/sub:pull"],
                true,
                ok(&["repository:private/app/sub:pull"], &creds),
            ),
            // Only pull is asked under the publisher's account.
            (
                vec!["repository:private/app:pull,push"],
                true,
                ok(&["repository:private/app:pull"], &creds),
            ),
            (
                vec!["repository:private/app:*"],
                true,
                ok(&["repository:private/app:pull"], &creds),
            ),
            // A client with its own credentials: verbatim, none of ours.
            (
                vec!["repository:private/app:pull,push"],
                false,
                ok(&["repository:private/app:pull,push"], &None),
            ),
            (
                vec!["repository:private/app:pull repository:app:pull"],
                false,
                ok(
                    &["repository:private/app:pull", "repository:app:pull"],
                    &None,
                ),
            ),
            // Anything beside the mapping's repositories is refused…
            (
                vec!["repository:private/app:pull repository:app:pull"],
                true,
                denied.clone(),
            ),
            (
                vec!["repository:private/app:pull", "repository:app:pull"],
                true,
                denied.clone(),
            ),
            (
                vec!["repository:app:pull", "repository:private/app:pull"],
                true,
                denied.clone(),
            ),
            (
                vec!["repository:private/app:pull", "repository:unmapped:pull"],
                true,
                denied.clone(),
            ),
            (
                vec!["repository:private/app:pull", "repository:other:pull"],
                true,
                denied.clone(),
            ),
            // …while mappings without credentials keep today's rules.
            (
                vec!["repository:app:pull"],
                true,
                ok(&["repository:app:pull"], &None),
            ),
            (
                vec!["repository:app:pull repository:unmapped:pull"],
                true,
                ok(&["repository:app:pull"], &None),
            ),
            (
                vec!["repository:app:pull", "repository:other:pull"],
                true,
                ok(&["repository:app:pull"], &None),
            ),
            (vec!["registry:catalog:*"], true, ok(&[], &None)),
        ];
        for (values, anonymous, expected) in cases {
            let got =
                plan(values.iter().copied(), host, anonymous).map(|p| (p.scopes, p.credentials));
            assert_eq!(got, expected, "{values:?} anonymous={anonymous}");
        }
    }

    #[test]
    fn within_is_a_prefix_at_a_path_boundary() {
        for (prefix, repository, inside) in [
            ("private/app", "private/app", true),
            ("private/app", "private/app/sub", true),
            ("private/app", "private/apple", false),
            ("private/app", "private", false),
            ("", "anything/at/all", true),
        ] {
            assert_eq!(within(prefix, repository), inside, "{prefix} {repository}");
        }
    }
}
