//! The `credentials` field of a mapping: its grammar and what it names.

use std::fmt;

/// Where a mapping's upstream credentials live, as the `credentials` field
/// names it. It is a reference, never the secret: it may be shown in
/// `pullgate check-mappings`, store items and error messages.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CredentialSource {
    /// `env:PREFIX`: `PREFIX_USERNAME` and `PREFIX_PASSWORD` in the
    /// gateway's environment.
    Env(String),
    /// `file:/path`: a JSON file `{"username": ..., "password": ...}`.
    File(String),
    /// `secretsmanager:ID-or-ARN`: a JSON secret of the same shape.
    SecretsManager(String),
    /// `ecr`: a token from `ecr:GetAuthorizationToken` with the gateway's
    /// IAM role, for this registry.
    Ecr(EcrRegistry),
}

/// The ECR registry a token is asked for: the account and region read
/// from an `ACCOUNT.dkr.ecr.REGION.amazonaws.com` upstream, or neither (the
/// role's own account, the SDK's region) for an upstream of another name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct EcrRegistry {
    pub account: Option<String>,
    pub region: Option<String>,
}

/// Why a `credentials` value was refused.
pub(crate) type Why = &'static str;

impl CredentialSource {
    /// Parses a `credentials` value for an upstream at `authority`
    /// (`host[:port]`). `Ok(None)` is `none`: no credentials, not even
    /// the ECR ones an ECR host implies.
    pub fn parse(value: &str, authority: &str) -> Result<Option<CredentialSource>, Why> {
        let value = value.trim();
        match value {
            "" => {
                return Err(
                    "empty: expected env:PREFIX, file:/path, secretsmanager:ID, ecr or none",
                )
            }
            "none" => return Ok(None),
            "ecr" => {
                return Ok(Some(CredentialSource::Ecr(
                    ecr_registry_of(authority).unwrap_or_default(),
                )))
            }
            _ => {}
        }
        let Some((scheme, name)) = value.split_once(':') else {
            return Err(
                "unknown scheme: expected env:PREFIX, file:/path, secretsmanager:ID, ecr or none",
            );
        };
        if name.is_empty() {
            return Err("empty name after the scheme");
        }
        match scheme {
            "env" => {
                let mut bytes = name.bytes();
                let first_ok = bytes
                    .next()
                    .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
                if !first_ok || !bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    return Err("env: needs a variable prefix of letters, digits and _ (PREFIX_USERNAME, PREFIX_PASSWORD)");
                }
                Ok(Some(CredentialSource::Env(name.to_string())))
            }
            "file" => {
                // Relative to what? The gateway's working directory is no
                // place an operator can be sure of.
                if !name.starts_with('/') {
                    return Err("file: needs an absolute path");
                }
                Ok(Some(CredentialSource::File(name.to_string())))
            }
            "secretsmanager" => {
                let ok = name.len() <= 2048
                    && name.bytes().all(|b| {
                        b.is_ascii_alphanumeric()
                            || matches!(b, b'/' | b'_' | b'+' | b'=' | b'.' | b'@' | b'-' | b':')
                    });
                if !ok {
                    return Err("secretsmanager: needs a secret name or ARN");
                }
                Ok(Some(CredentialSource::SecretsManager(name.to_string())))
            }
            _ => Err(
                "unknown scheme: expected env:PREFIX, file:/path, secretsmanager:ID, ecr or none",
            ),
        }
    }

    /// The kind, for log fields and errors that must not name more.
    pub fn kind(&self) -> &'static str {
        match self {
            CredentialSource::Env(_) => "env",
            CredentialSource::File(_) => "file",
            CredentialSource::SecretsManager(_) => "secretsmanager",
            CredentialSource::Ecr(_) => "ecr",
        }
    }

    /// Whether only the AWS adapters can resolve it.
    pub fn needs_aws(&self) -> bool {
        matches!(
            self,
            CredentialSource::SecretsManager(_) | CredentialSource::Ecr(_)
        )
    }
}

/// The value as written in a mapping (`ecr` for every ECR registry: the
/// registry comes from the upstream, not from the field).
impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSource::Env(prefix) => write!(f, "env:{prefix}"),
            CredentialSource::File(path) => write!(f, "file:{path}"),
            CredentialSource::SecretsManager(id) => write!(f, "secretsmanager:{id}"),
            CredentialSource::Ecr(_) => f.write_str("ecr"),
        }
    }
}

/// The account and region of an ECR registry host
/// (`ACCOUNT.dkr.ecr[-fips].REGION.amazonaws.com[.cn]`), if it is one.
pub fn ecr_registry_of(authority: &str) -> Option<EcrRegistry> {
    let host = authority.to_ascii_lowercase();
    let rest = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"))?;
    let mut labels = rest.split('.');
    let account = labels.next()?;
    let (dkr, ecr, region) = (labels.next()?, labels.next()?, labels.next()?);
    let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    let region_ok = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    (labels.next().is_none()
        && account_ok
        && dkr == "dkr"
        && matches!(ecr, "ecr" | "ecr-fips")
        && region_ok)
        .then(|| EcrRegistry {
            account: Some(account.to_string()),
            region: Some(region.to_string()),
        })
}
