//! Upstream credentials from AWS: `secretsmanager:ID` (a JSON secret
//! `{"username": ..., "password": ...}`) and `ecr` (a token from
//! `ecr:GetAuthorizationToken` with the gateway's role; the registry API
//! takes it as Basic `AWS:<token>`, valid 12 hours). `env:` and `file:`
//! sources go to the local resolver. Behind the domain's credential cache,
//! these calls happen once per cache lifetime, not per request.

use aws_sdk_ecr::error::DisplayErrorContext;
use pullgate_domain::credentials::{
    CredentialError, CredentialResolver, CredentialSource, Credentials, EcrRegistry,
    LocalCredentials, ResolveFuture, Resolved,
};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub struct AwsCredentials {
    local: LocalCredentials,
    config: aws_config::SdkConfig,
    secrets: aws_sdk_secretsmanager::Client,
    /// One ECR client per region asked (an ECR host names its region).
    ecr: Mutex<HashMap<Option<String>, aws_sdk_ecr::Client>>,
}

impl AwsCredentials {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        AwsCredentials {
            // Never said: this resolver has the AWS sources itself.
            local: LocalCredentials::new("resolved by the AWS resolver"),
            config: config.clone(),
            secrets: aws_sdk_secretsmanager::Client::new(config),
            ecr: Mutex::new(HashMap::new()),
        }
    }

    async fn secret(
        &self,
        source: &CredentialSource,
        id: &str,
    ) -> Result<Resolved, CredentialError> {
        let out = self
            .secrets
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| CredentialError::Backend {
                source_ref: source.to_string(),
                reason: DisplayErrorContext(e).to_string(),
            })?;
        let text = out.secret_string().ok_or(CredentialError::Invalid {
            source_ref: source.to_string(),
            reason: "the secret has no string value",
        })?;
        let credentials =
            Credentials::from_json(text).map_err(|reason| CredentialError::Invalid {
                source_ref: source.to_string(),
                reason,
            })?;
        Ok(Resolved {
            credentials,
            valid_for: None,
        })
    }

    fn ecr_client(&self, region: &Option<String>) -> aws_sdk_ecr::Client {
        let mut clients = self
            .ecr
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        clients
            .entry(region.clone())
            .or_insert_with(|| {
                let mut config = aws_sdk_ecr::config::Builder::from(&self.config);
                if let Some(region) = region {
                    config = config.region(aws_config::Region::new(region.clone()));
                }
                aws_sdk_ecr::Client::from_conf(config.build())
            })
            .clone()
    }

    async fn ecr_token(
        &self,
        source: &CredentialSource,
        registry: &EcrRegistry,
    ) -> Result<Resolved, CredentialError> {
        let backend = |reason: String| CredentialError::Backend {
            source_ref: source.to_string(),
            reason,
        };
        // No registry id: ECR deprecated it, the token serves every
        // registry of the region the role may read. The region matters.
        let out = self
            .ecr_client(&registry.region)
            .get_authorization_token()
            .send()
            .await
            .map_err(|e| backend(DisplayErrorContext(e).to_string()))?;
        let data = out
            .authorization_data()
            .first()
            .ok_or_else(|| backend("no authorization data in the answer".into()))?;
        let token = data
            .authorization_token()
            .ok_or_else(|| backend("no token in the answer".into()))?;
        let credentials = decode_token(token).ok_or(CredentialError::Invalid {
            source_ref: source.to_string(),
            reason: "the token is not base64 of user:password",
        })?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs() as i64;
        let valid_for = data.expires_at().map(|at| {
            let left = at.secs() - now;
            if left <= 0 {
                tracing::warn!(credentials = %source, "ECR token answered as already expired");
            }
            Duration::from_secs(left.max(0) as u64)
        });
        Ok(Resolved {
            credentials,
            valid_for,
        })
    }
}

/// ECR's token is base64 of `AWS:<password>`.
fn decode_token(token: &str) -> Option<Credentials> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (username, password) = text.split_once(':')?;
    (!username.is_empty() && !password.is_empty()).then(|| Credentials {
        username: username.to_string(),
        password: password.to_string(),
    })
}

impl CredentialResolver for AwsCredentials {
    fn resolve<'a>(&'a self, source: &'a CredentialSource) -> ResolveFuture<'a> {
        Box::pin(async move {
            match source {
                CredentialSource::SecretsManager(id) => self.secret(source, id).await,
                CredentialSource::Ecr(registry) => self.ecr_token(source, registry).await,
                CredentialSource::Env(_) | CredentialSource::File(_) => {
                    self.local.resolve_now(source)
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecr_tokens_decode_to_user_and_password() {
        // What moto answers for account 123456789012.
        let token = "QVdTOjEyMzQ1Njc4OTAxMi1hdXRoLXRva2Vu";
        let credentials = decode_token(token).unwrap();
        assert_eq!(credentials.username, "AWS");
        assert_eq!(credentials.password, "123456789012-auth-token");
        assert!(decode_token("not base64!").is_none());
        assert!(decode_token("QVdT").is_none(), "AWS with no password");
    }
}
