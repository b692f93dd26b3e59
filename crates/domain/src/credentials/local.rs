//! The resolver for sources on the gateway's own machine: environment
//! variables (`env:PREFIX`) and files (`file:/path`). Sources only the AWS
//! adapters resolve get an error naming what would (the build flag, or the
//! entry point that has them).

use super::Resolved;
use super::{CredentialError, CredentialResolver, CredentialSource, Credentials, ResolveFuture};

type EnvLookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

pub struct LocalCredentials {
    env: EnvLookup,
    /// Said for `secretsmanager:` and `ecr` sources.
    aws_hint: &'static str,
}

/// Files larger than this are no credentials file.
const MAX_FILE_BYTES: u64 = 64 * 1024;

impl LocalCredentials {
    /// Reads the process environment. `aws_hint` is what the error for an
    /// AWS source says, e.g. that the build lacks the `aws` feature.
    pub fn new(aws_hint: &'static str) -> Self {
        Self::with_env(aws_hint, |name| std::env::var(name).ok())
    }

    /// With another environment (tests).
    pub fn with_env(
        aws_hint: &'static str,
        env: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        LocalCredentials {
            env: Box::new(env),
            aws_hint,
        }
    }

    /// Resolves `env:` and `file:` sources now (they need no await).
    pub fn resolve_now(&self, source: &CredentialSource) -> Result<Resolved, CredentialError> {
        let credentials = match source {
            CredentialSource::Env(prefix) => self.read_env(source, prefix)?,
            CredentialSource::File(path) => from_file(source, path)?,
            CredentialSource::SecretsManager(_) | CredentialSource::Ecr(_) => {
                return Err(CredentialError::Unsupported {
                    source_ref: source.to_string(),
                    hint: self.aws_hint,
                })
            }
        };
        Ok(Resolved {
            credentials,
            valid_for: None,
        })
    }

    fn read_env(
        &self,
        source: &CredentialSource,
        prefix: &str,
    ) -> Result<Credentials, CredentialError> {
        let var = |suffix: &str| {
            let name = format!("{prefix}_{suffix}");
            (self.env)(&name)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| CredentialError::Missing {
                    source_ref: source.to_string(),
                    reason: format!("{name} is not set or empty"),
                })
        };
        Ok(Credentials {
            username: var("USERNAME")?,
            password: var("PASSWORD")?,
        })
    }
}

/// A small local file, read in place: the cache makes this a read every
/// few minutes, not one per request.
fn from_file(source: &CredentialSource, path: &str) -> Result<Credentials, CredentialError> {
    let missing = |reason: String| CredentialError::Missing {
        source_ref: source.to_string(),
        reason,
    };
    let metadata = std::fs::metadata(path).map_err(|e| missing(format!("cannot read: {e}")))?;
    if metadata.len() > MAX_FILE_BYTES {
        return Err(CredentialError::Invalid {
            source_ref: source.to_string(),
            reason: "larger than 64 KiB",
        });
    }
    let text = std::fs::read_to_string(path).map_err(|e| missing(format!("cannot read: {e}")))?;
    Credentials::from_json(&text).map_err(|reason| CredentialError::Invalid {
        source_ref: source.to_string(),
        reason,
    })
}

impl CredentialResolver for LocalCredentials {
    fn resolve<'a>(&'a self, source: &'a CredentialSource) -> ResolveFuture<'a> {
        let resolved = self.resolve_now(source);
        Box::pin(async move { resolved })
    }
}
