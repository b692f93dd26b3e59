//! The mapping table in DynamoDB (aws-sdk-dynamodb).
//!
//! One item per mapping, keyed by host (partition key) and public name
//! prefix (sort key); a host's mappings are read with one Query, so unknown
//! names under a known host never cost a read. DynamoDB refuses empty key
//! strings, so the whole-host prefix ("" in the mapping file) is stored as
//! `name = "/"` (never a valid repository name, so it cannot collide).
//!
//! Item attributes (see the README for an `aws dynamodb put-item` example):
//! `host` S, `name` S, `upstream` S, and optional `mode` S (redirect | proxy |
//! auto), `kind` S (oci | http), `fallback` S, `down` BOOL, `rewrite_index`
//! BOOL, `credentials` S (where the upstream credentials live: `env:PREFIX`,
//! `file:/path`, `secretsmanager:ID`, `ecr`, `none`; never the secret).
//! Other attributes are ignored. Items are checked with the same
//! validation as the mapping file; an invalid item is logged and skipped, so
//! one bad item cannot take a host down.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::get_item::GetItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::query::QueryError;
use aws_sdk_dynamodb::operation::scan::ScanError;
use aws_sdk_dynamodb::types::AttributeValue;
use pullgate_domain::mapping::{HostMappings, Mapping, MappingError, MappingSpec, Mode};
use pullgate_domain::store::{host_candidates, MappingSource, StoreError};
use std::collections::HashMap;
use std::sync::Arc;

/// The sort key of the whole-host mapping (`name = ""` in files).
pub const WHOLE_HOST_NAME: &str = "/";

type Item = HashMap<String, AttributeValue>;

pub struct DynamoMappings {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PutError {
    #[error("mapping {0} already exists (use --replace to overwrite it)")]
    Exists(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A DynamoDB call that failed, the SDK's error kept as it came (service
/// error, dispatch failure, timeout...). The gateway sees it as the cause
/// of a [`StoreError::Unavailable`].
#[derive(Debug, thiserror::Error)]
pub enum DynamoError {
    #[error("DynamoDB Query on table {table} failed")]
    Query {
        table: String,
        #[source]
        source: SdkError<QueryError>,
    },
    #[error("DynamoDB Scan on table {table} failed")]
    Scan {
        table: String,
        #[source]
        source: SdkError<ScanError>,
    },
    #[error("DynamoDB GetItem on table {table} failed")]
    GetItem {
        table: String,
        #[source]
        source: SdkError<GetItemError>,
    },
    #[error("DynamoDB PutItem on table {table} failed")]
    PutItem {
        table: String,
        #[source]
        source: SdkError<PutItemError>,
    },
    #[error("DynamoDB DeleteItem on table {table} failed")]
    DeleteItem {
        table: String,
        #[source]
        source: SdkError<DeleteItemError>,
    },
}

impl From<DynamoError> for StoreError {
    fn from(error: DynamoError) -> Self {
        StoreError::unavailable(error)
    }
}

/// Why an item is not a mapping (the gateway logs and skips it).
#[derive(Debug, thiserror::Error)]
pub enum ItemError {
    #[error("item has no string attribute {0}")]
    MissingAttribute(&'static str),
    #[error(transparent)]
    Invalid(#[from] MappingError),
}

/// The sort key for a public name prefix.
pub fn sort_key(name: &str) -> &str {
    if name.is_empty() {
        WHOLE_HOST_NAME
    } else {
        name
    }
}

fn string(item: &Item, key: &str) -> Option<String> {
    item.get(key).and_then(|v| v.as_s().ok()).cloned()
}

fn boolean(item: &Item, key: &str) -> Option<bool> {
    item.get(key).and_then(|v| v.as_bool().ok()).copied()
}

/// An item as an operator's mapping entry (not yet validated).
pub fn spec_from_item(item: &Item) -> Result<MappingSpec, ItemError> {
    let attribute = |key: &'static str| string(item, key).ok_or(ItemError::MissingAttribute(key));
    let host = attribute("host")?;
    let name = attribute("name")?;
    let upstream = attribute("upstream")?;
    let mode = match string(item, "mode") {
        Some(text) => text.parse::<Mode>()?,
        None => Mode::default(),
    };
    Ok(MappingSpec {
        host,
        name: if name == WHOLE_HOST_NAME {
            String::new()
        } else {
            name
        },
        upstream,
        mode,
        kind: string(item, "kind"),
        fallback: string(item, "fallback"),
        down: boolean(item, "down").unwrap_or(false),
        rewrite_index: boolean(item, "rewrite_index").unwrap_or(true),
        credentials: string(item, "credentials"),
    })
}

/// An item as a validated mapping.
fn mapping_from_item(item: &Item) -> Result<Mapping, ItemError> {
    Ok(spec_from_item(item)?.validate()?)
}

/// A validated mapping's entry as an item (host lowercased, name trimmed:
/// the canonical form, so key lookups match what the gateway reads).
pub fn item_from_spec(spec: &MappingSpec, mapping: &Mapping) -> Item {
    let mut item = Item::new();
    item.insert("host".into(), AttributeValue::S(mapping.host.clone()));
    item.insert(
        "name".into(),
        AttributeValue::S(sort_key(&mapping.name).to_string()),
    );
    item.insert(
        "upstream".into(),
        AttributeValue::S(spec.upstream.trim().to_string()),
    );
    item.insert(
        "mode".into(),
        AttributeValue::S(mapping.mode.as_str().to_string()),
    );
    if let Some(kind) = &spec.kind {
        item.insert("kind".into(), AttributeValue::S(kind.clone()));
    }
    if let Some(fallback) = &spec.fallback {
        item.insert("fallback".into(), AttributeValue::S(fallback.trim().into()));
    }
    if spec.down {
        item.insert("down".into(), AttributeValue::Bool(true));
    }
    if !spec.rewrite_index {
        item.insert("rewrite_index".into(), AttributeValue::Bool(false));
    }
    if let Some(credentials) = &spec.credentials {
        item.insert(
            "credentials".into(),
            AttributeValue::S(credentials.trim().into()),
        );
    }
    item
}

impl DynamoMappings {
    pub fn new(config: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        DynamoMappings {
            client: aws_sdk_dynamodb::Client::new(config),
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Every item of one host (paginated Query).
    pub async fn host_items(&self, host: &str) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#h = :h")
                .expression_attribute_names("#h", "host")
                .expression_attribute_values(":h", AttributeValue::S(host.to_string()))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|source| DynamoError::Query {
                    table: self.table.clone(),
                    source,
                })?;
            items.extend(page.items().iter().cloned());
            match page.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => return Ok(items),
            }
        }
    }

    /// Every item of the table (paginated Scan; `pullgate map list/export`).
    pub async fn all_items(&self) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|source| DynamoError::Scan {
                    table: self.table.clone(),
                    source,
                })?;
            items.extend(page.items().iter().cloned());
            match page.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => return Ok(items),
            }
        }
    }

    pub async fn get(&self, host: &str, name: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("host", AttributeValue::S(host.to_string()))
            .key("name", AttributeValue::S(sort_key(name).to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|source| DynamoError::GetItem {
                table: self.table.clone(),
                source,
            })?;
        Ok(out.item().cloned())
    }

    /// Writes a validated mapping; refuses to overwrite unless `replace`.
    pub async fn put(
        &self,
        spec: &MappingSpec,
        mapping: &Mapping,
        replace: bool,
    ) -> Result<(), PutError> {
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item_from_spec(spec, mapping)));
        if !replace {
            request = request.condition_expression("attribute_not_exists(#h)");
            request = request.expression_attribute_names("#h", "host");
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(PutError::Exists(mapping.id().to_string()))
            }
            Err(source) => Err(PutError::Store(
                DynamoError::PutItem {
                    table: self.table.clone(),
                    source,
                }
                .into(),
            )),
        }
    }

    /// Deletes one mapping; `Ok(false)` when there was none.
    pub async fn delete(&self, host: &str, name: &str) -> Result<bool, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("host", AttributeValue::S(host.to_string()))
            .key("name", AttributeValue::S(sort_key(name).to_string()))
            .condition_expression("attribute_exists(#h)")
            .expression_attribute_names("#h", "host")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(source) => Err(DynamoError::DeleteItem {
                table: self.table.clone(),
                source,
            }
            .into()),
        }
    }

    /// One host's mappings from its items; invalid items are skipped.
    fn host_mappings(host: &str, items: &[Item]) -> Option<Arc<HostMappings>> {
        let mappings: Vec<Mapping> = items
            .iter()
            .filter_map(|item| match mapping_from_item(item) {
                Ok(mapping) => Some(mapping),
                Err(error) => {
                    tracing::error!(host, %error, "invalid mapping item skipped");
                    None
                }
            })
            .collect();
        (!mappings.is_empty()).then(|| Arc::new(HostMappings::new(mappings)))
    }
}

impl MappingSource for DynamoMappings {
    /// The Host header's mappings, one Query per key of `host_candidates`
    /// until one has mappings (as the mapping file lookup does).
    async fn host(&self, host_header: &str) -> Result<Option<Arc<HostMappings>>, StoreError> {
        for key in host_candidates(host_header).iter() {
            let items = self.host_items(key).await?;
            if let Some(found) = Self::host_mappings(key, &items) {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_round_trip_through_specs() {
        let spec = MappingSpec {
            host: "Images.Acme.dev".into(),
            name: "".into(),
            upstream: "docker.io/acme".into(),
            mode: Mode::Redirect,
            kind: None,
            fallback: Some("ghcr.io/acme".into()),
            down: true,
            rewrite_index: true,
            credentials: None,
        };
        let mapping = spec.clone().validate().unwrap();
        let item = item_from_spec(&spec, &mapping);
        assert_eq!(item["name"].as_s().unwrap(), "/");
        assert_eq!(item["host"].as_s().unwrap(), "images.acme.dev");
        let back = spec_from_item(&item).unwrap();
        assert_eq!(back.name, "");
        assert_eq!(back.clone().validate().unwrap(), mapping);
    }

    #[test]
    fn the_credentials_reference_round_trips_and_a_bad_one_says_why() {
        let spec = MappingSpec {
            host: "images.acme.dev".into(),
            name: "private/app".into(),
            upstream: "ghcr.io/acme/private".into(),
            mode: Mode::Proxy,
            kind: None,
            fallback: None,
            down: false,
            rewrite_index: true,
            credentials: Some(" secretsmanager:pullgate/ghcr ".into()),
        };
        let mapping = spec.clone().validate().unwrap();
        let item = item_from_spec(&spec, &mapping);
        assert_eq!(
            item["credentials"].as_s().unwrap(),
            "secretsmanager:pullgate/ghcr"
        );
        let back = spec_from_item(&item).unwrap();
        assert_eq!(back.validate().unwrap(), mapping);
        let mut bad = item.clone();
        bad.insert("credentials".into(), AttributeValue::S("vault:x".into()));
        let err = spec_from_item(&bad).unwrap().validate().unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid credentials \"vault:…\""),
            "{err}"
        );
    }

    #[test]
    fn bad_items_say_why() {
        let mut item = Item::new();
        item.insert("host".into(), AttributeValue::S("h".into()));
        assert!(spec_from_item(&item)
            .unwrap_err()
            .to_string()
            .contains("name"));
        item.insert("name".into(), AttributeValue::S("app".into()));
        item.insert("upstream".into(), AttributeValue::S("ghcr.io/a".into()));
        item.insert("mode".into(), AttributeValue::S("yolo".into()));
        assert!(spec_from_item(&item)
            .unwrap_err()
            .to_string()
            .contains("invalid mode"));
        item.insert("mode".into(), AttributeValue::S("proxy".into()));
        item.insert("upstream".into(), AttributeValue::S("ftp://x".into()));
        let err = spec_from_item(&item).unwrap().validate().unwrap_err();
        assert!(err.to_string().contains("invalid upstream"));
    }
}
