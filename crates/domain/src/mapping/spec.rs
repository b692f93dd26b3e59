//! The mapping grammar as operators write it (mapping files, `pullgate
//! map`, store items): entries before validation, and their validation into
//! [`Mapping`]s.

use super::{is_valid_authority, Mapping, MappingError, Mode, Target, Upstream};
use crate::credentials::{ecr_registry_of, CredentialSource};
use crate::reference::is_valid_name;
use serde::Deserialize;
use std::sync::Arc;

/// The entries of a TOML mapping file as written, before validation
/// (`pullgate map` edits files entry by entry).
pub fn specs_from_toml(text: &str) -> Result<Vec<MappingSpec>, MappingError> {
    #[derive(Deserialize)]
    struct File {
        #[serde(default)]
        mappings: Vec<MappingSpec>,
    }
    let file: File = toml::from_str(text).map_err(|e| MappingError::File(e.to_string()))?;
    Ok(file.mappings)
}

/// A mapping as written by an operator (file, CLI, store item), before
/// validation.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MappingSpec {
    pub host: String,
    #[serde(default)]
    pub name: String,
    pub upstream: String,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub fallback: Option<String>,
    #[serde(default)]
    pub down: bool,
    #[serde(default = "default_true")]
    pub rewrite_index: bool,
    /// Where the upstream credentials live (`env:PREFIX`, `file:/path`,
    /// `secretsmanager:ID`, `ecr`, `none`): a reference, never a secret.
    #[serde(default)]
    pub credentials: Option<String>,
}

fn default_true() -> bool {
    true
}

impl MappingSpec {
    pub fn validate(self) -> Result<Mapping, MappingError> {
        let host = self.host.trim().to_ascii_lowercase();
        if !is_valid_authority(&host) {
            return Err(MappingError::Host(self.host));
        }
        let name = self.name.trim_matches('/').to_string();
        let kind = self.kind.as_deref().unwrap_or("oci");
        let target = match kind {
            "oci" => {
                if !name.is_empty() && !is_valid_name(&name) {
                    return Err(MappingError::Name(self.name));
                }
                let mut upstream = Upstream::parse(&self.upstream)?;
                let mut fallback = self.fallback.as_deref().map(Upstream::parse).transpose()?;
                upstream.credentials =
                    credentials_of(self.credentials.as_deref(), &upstream, self.mode)?;
                if let Some(fallback) = &mut fallback {
                    // The mapping's credentials are for its primary; a
                    // fallback on ECR gets the gateway role's ECR token.
                    fallback.credentials = credentials_of(None, fallback, self.mode)?;
                }
                Target::Oci { upstream, fallback }
            }
            "http" => {
                if !name.is_empty() && !name.split('/').all(|s| is_valid_name(s) || s.contains('.'))
                {
                    return Err(MappingError::Name(self.name));
                }
                Target::Http {
                    base: parse_http_base(&self.upstream)?,
                    rewrite_index: self.rewrite_index,
                }
            }
            other => return Err(MappingError::Kind(other.to_string())),
        };
        let id = if name.is_empty() {
            host.clone()
        } else {
            format!("{host}/{name}")
        };
        let mapping = Mapping {
            host,
            name,
            target,
            mode: self.mode,
            down: self.down,
            failed_over: false,
            id,
        };
        match &mapping.target {
            Target::Http { .. } if self.credentials.is_some() => {
                Err(MappingError::CredentialsOnHttp(mapping.id().to_string()))
            }
            Target::Oci { upstream, .. }
                if mapping.mode == Mode::Redirect && upstream.credentials.is_some() =>
            {
                Err(MappingError::CredentialsWithRedirect(
                    mapping.id().to_string(),
                ))
            }
            Target::Http { .. } if self.fallback.is_some() => {
                Err(MappingError::FallbackOnHttp(mapping.id().to_string()))
            }
            Target::Oci { fallback: None, .. } if mapping.down => {
                Err(MappingError::DownWithoutFallback(mapping.id().to_string()))
            }
            _ => Ok(mapping),
        }
    }
}

/// A refused `credentials` value as an error may quote it: an operator who
/// wrote the secret itself into the field (`credentials = "hunter2"`) must
/// not find it in the log line that skips the item. A known scheme's
/// value is a reference and shown whole; of anything else only the part
/// before a `:` is shown.
fn shown(value: &str) -> String {
    let value = value.trim();
    match value.split_once(':') {
        Some(("env" | "file" | "secretsmanager", _)) => value.to_string(),
        Some((scheme, _))
            if scheme.len() <= 32 && scheme.bytes().all(|b| b.is_ascii_lowercase()) =>
        {
            format!("{scheme}:…")
        }
        _ if matches!(value, "" | "ecr" | "none") => value.to_string(),
        _ => "…".to_string(),
    }
}

/// The credentials an upstream is asked with: the `credentials` value, or
/// for an ECR registry host without one, `ecr` (except in redirect mode,
/// where the client brings its own: docker's ECR credential helper).
fn credentials_of(
    value: Option<&str>,
    upstream: &Upstream,
    mode: Mode,
) -> Result<Option<Arc<CredentialSource>>, MappingError> {
    let source = match value {
        Some(value) => CredentialSource::parse(value, upstream.authority())
            .map_err(|why| MappingError::Credentials(shown(value), why))?,
        None if mode == Mode::Redirect => None,
        None => ecr_registry_of(upstream.authority()).map(CredentialSource::Ecr),
    };
    Ok(source.map(Arc::new))
}

fn parse_http_base(spec: &str) -> Result<String, MappingError> {
    let err = || MappingError::HttpUpstream(spec.to_string());
    let rest = spec
        .strip_prefix("https://")
        .or_else(|| spec.strip_prefix("http://"))
        .ok_or_else(err)?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if !is_valid_authority(&authority.to_ascii_lowercase()) {
        return Err(err());
    }
    let path_ok = path.bytes().all(|b| {
        b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/' | b'+' | b'{' | b'}')
    });
    if !path_ok || path.contains("..") {
        return Err(err());
    }
    Ok(spec.trim_end_matches('/').to_string())
}
