//! Upstream credentials per mapping: where the secret lives (the mapping
//! names a [`CredentialSource`], never the secret), the port that fetches
//! it ([`CredentialResolver`]), the cache in front of any resolver
//! ([`cache`]) and the resolver for sources on this machine ([`local`]:
//! environment variables and files). Secrets Manager and ECR resolvers live
//! with the AWS SDK in the aws crate.
//!
//! The rules that keep the publisher's account the publisher's: credentials
//! are used only for anonymous clients, only for the scopes of the mapping
//! they belong to ([`crate::token_scopes`]), and only at realms the
//! upstream may name ([`crate::realm`]).

pub mod cache;
pub mod local;
mod source;

pub use cache::CredentialCache;
pub use local::LocalCredentials;
pub use source::{ecr_registry_of, CredentialSource, EcrRegistry};

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A username and password for an upstream (ECR: `AWS` and a token).
/// `Debug` never shows the password, so a `{:?}` in a log line or a test
/// failure cannot leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// The `Authorization` value for Basic auth (RFC 7617).
    pub fn basic_authorization(&self) -> String {
        use base64::Engine;
        let pair = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }

    /// From a JSON object `{"username": "...", "password": "..."}` (the
    /// file and Secrets Manager formats). The error says what is wrong
    /// without quoting the text: a parser's message can quote a value.
    pub fn from_json(text: &str) -> Result<Credentials, &'static str> {
        #[derive(serde::Deserialize)]
        struct Pair {
            username: String,
            password: String,
        }
        let pair: Pair = serde_json::from_str(text)
            .map_err(|_| "not a JSON object with string fields username and password")?;
        if pair.username.is_empty() || pair.password.is_empty() {
            return Err("username or password is empty");
        }
        Ok(Credentials {
            username: pair.username,
            password: pair.password,
        })
    }
}

/// What a resolver found: the credentials and, when the source says so,
/// how long they stay valid (ECR tokens: 12 hours).
#[derive(Debug, Clone)]
pub struct Resolved {
    pub credentials: Credentials,
    pub valid_for: Option<Duration>,
}

/// Why no credentials could be had. Messages name the source (a variable,
/// a path, a secret id), never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// This build or entry point has no resolver for the source's kind.
    #[error("credentials {source_ref}: {hint}")]
    Unsupported {
        source_ref: String,
        hint: &'static str,
    },
    #[error("credentials {source_ref}: {reason}")]
    Missing { source_ref: String, reason: String },
    #[error("credentials {source_ref}: {reason}")]
    Invalid {
        source_ref: String,
        reason: &'static str,
    },
    /// The backend (Secrets Manager, ECR) failed the call.
    #[error("credentials {source_ref}: {reason}")]
    Backend { source_ref: String, reason: String },
}

/// A boxed future: resolvers are chosen at start-up and held as trait
/// objects, and their calls are rare (the cache answers in between).
pub type ResolveFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Resolved, CredentialError>> + Send + 'a>>;

/// The port: fetch the credentials a source names.
pub trait CredentialResolver: Send + Sync {
    fn resolve<'a>(&'a self, source: &'a CredentialSource) -> ResolveFuture<'a>;
}

#[cfg(test)]
mod tests;
