//! Token scopes (`repository:acme/app:pull`) and their rewriting between
//! public and upstream names.

use crate::reference::is_valid_name;

/// A parsed repository scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepositoryScope<'a> {
    /// `repository` or `repository(plugin)`.
    pub resource_type: &'a str,
    pub name: &'a str,
    pub actions: &'a str,
}

impl<'a> RepositoryScope<'a> {
    pub fn parse(scope: &'a str) -> Option<Self> {
        let (resource_type, rest) = scope.split_once(':')?;
        let (name, actions) = rest.rsplit_once(':')?;
        let type_ok = resource_type == "repository"
            || resource_type
                .strip_prefix("repository(")
                .and_then(|r| r.strip_suffix(')'))
                .is_some_and(|class| {
                    !class.is_empty() && class.bytes().all(|b| b.is_ascii_alphanumeric())
                });
        let actions_ok = actions
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b',' || b == b'*');
        (type_ok && actions_ok && is_valid_name(name)).then_some(RepositoryScope {
            resource_type,
            name,
            actions,
        })
    }

    pub fn with_name(&self, name: &str) -> String {
        format!("{}:{}:{}", self.resource_type, name, self.actions)
    }
}

/// Rewrites every repository scope in a (space-separated) scope value with
/// `rename`; scopes it cannot rename, and non-repository scopes, are dropped
/// so that nothing the host does not serve reaches an upstream.
pub fn rewrite_all(value: &str, mut rename: impl FnMut(&str) -> Option<String>) -> Vec<String> {
    value
        .split(' ')
        .filter_map(RepositoryScope::parse)
        .filter_map(|scope| rename(scope.name).map(|name| scope.with_name(&name)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rewrites() {
        let s = RepositoryScope::parse("repository:app:pull").unwrap();
        assert_eq!(s.with_name("acme/app"), "repository:acme/app:pull");
        let s = RepositoryScope::parse("repository(plugin):a/b:pull,push").unwrap();
        assert_eq!(s.with_name("x"), "repository(plugin):x:pull,push");
        assert!(RepositoryScope::parse("registry:catalog:*").is_none());
        assert!(RepositoryScope::parse("repository:../x:pull").is_none());
        assert!(RepositoryScope::parse("repository:a:pull\"").is_none());
        let rename = |n: &str| (n == "app").then(|| "acme/app".to_string());
        assert_eq!(
            rewrite_all(
                "repository:app:pull repository:other:pull registry:catalog:*",
                rename
            ),
            vec!["repository:acme/app:pull".to_string()]
        );
    }
}
