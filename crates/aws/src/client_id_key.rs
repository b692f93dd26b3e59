//! The HMAC key for client ids, kept in Secrets Manager (the template
//! generates it; CloudFormation cannot create SSM SecureString
//! parameters). Read once when the function starts.

use aws_sdk_secretsmanager::error::DisplayErrorContext;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read secret {id}: {reason}")]
    Read { id: String, reason: String },
    #[error("secret {0} has no usable string value (need at least 16 bytes)")]
    Empty(String),
}

/// The secret's string value, as bytes for the HMAC.
pub async fn client_id_key(config: &aws_config::SdkConfig, id: &str) -> Result<Vec<u8>, KeyError> {
    let client = aws_sdk_secretsmanager::Client::new(config);
    let out = client
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|e| KeyError::Read {
            id: id.to_string(),
            reason: DisplayErrorContext(e).to_string(),
        })?;
    match out.secret_string() {
        Some(text) if text.trim().len() >= 16 => Ok(text.trim().as_bytes().to_vec()),
        _ => Err(KeyError::Empty(id.to_string())),
    }
}
