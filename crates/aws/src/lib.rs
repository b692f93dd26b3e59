//! AWS adapters of pullgate's ports.

pub mod client_id_key;
pub mod dynamo_mappings;
pub mod firehose_sink;
pub mod upstream_credentials;

/// The SDK configuration type, for entry points that hold one.
pub use aws_config::SdkConfig;

/// The SDK configuration from the environment (region, credentials,
/// `AWS_ENDPOINT_URL` for tests against moto).
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::load_from_env().await
}
