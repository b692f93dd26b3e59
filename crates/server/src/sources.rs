//! Where `serve` reads mappings from and writes events to, as the flags
//! and environment variables spell them: `--mappings FILE` or
//! `dynamodb:TABLE`, `--events on | off | firehose:STREAM`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

const DYNAMODB: &str = "dynamodb:";
const FIREHOSE: &str = "firehose:";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MappingsFrom {
    /// A TOML mapping file, reloaded when it changes and on SIGHUP.
    File(PathBuf),
    /// A DynamoDB table in the format `pullgate map` writes, behind the
    /// same cache as in Lambda.
    DynamoDb(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventsTo {
    /// Gzipped JSON lines under the data directory.
    Files,
    Off,
    /// A Firehose delivery stream, flushed on a timer and at shutdown.
    Firehose(String),
}

/// A flag value that names no source, said with what would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError(String);

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SourceError {}

/// The name after `prefix:`, which must not be empty.
fn named<'v>(value: &'v str, prefix: &str, what: &str) -> Result<Option<&'v str>, SourceError> {
    match value.strip_prefix(prefix) {
        None => Ok(None),
        Some("") => Err(SourceError(format!(
            "`{prefix}` needs {what}: {prefix}NAME"
        ))),
        Some(name) => Ok(Some(name)),
    }
}

impl FromStr for MappingsFrom {
    type Err = SourceError;

    fn from_str(value: &str) -> Result<Self, SourceError> {
        if value.is_empty() {
            return Err(SourceError(
                "a mapping file path or dynamodb:TABLE".to_string(),
            ));
        }
        Ok(match named(value, DYNAMODB, "a table name")? {
            Some(table) => MappingsFrom::DynamoDb(table.to_string()),
            None => MappingsFrom::File(PathBuf::from(value)),
        })
    }
}

impl FromStr for EventsTo {
    type Err = SourceError;

    fn from_str(value: &str) -> Result<Self, SourceError> {
        if let Some(stream) = named(value, FIREHOSE, "a delivery stream name")? {
            return Ok(EventsTo::Firehose(stream.to_string()));
        }
        match value {
            "on" | "files" => Ok(EventsTo::Files),
            "off" => Ok(EventsTo::Off),
            _ => Err(SourceError(format!(
                "`{value}` is not an event target: on (files under --data-dir), off, or firehose:STREAM"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_sources_parse() {
        for (value, expected) in [
            (
                "mappings.toml",
                Ok(MappingsFrom::File("mappings.toml".into())),
            ),
            (
                "/etc/pullgate/m.toml",
                Ok(MappingsFrom::File("/etc/pullgate/m.toml".into())),
            ),
            (
                "dynamodb:pullgate-mappings",
                Ok(MappingsFrom::DynamoDb("pullgate-mappings".into())),
            ),
            (
                "dynamodb:",
                Err("`dynamodb:` needs a table name: dynamodb:NAME"),
            ),
            ("", Err("a mapping file path or dynamodb:TABLE")),
        ] {
            let parsed = value.parse::<MappingsFrom>().map_err(|e| e.to_string());
            assert_eq!(parsed, expected.map_err(str::to_string), "{value:?}");
        }
    }

    #[test]
    fn event_targets_parse() {
        for (value, expected) in [
            ("on", Ok(EventsTo::Files)),
            ("files", Ok(EventsTo::Files)),
            ("off", Ok(EventsTo::Off)),
            ("firehose:pullgate-events", Ok(EventsTo::Firehose("pullgate-events".into()))),
            ("firehose:", Err("`firehose:` needs a delivery stream name: firehose:NAME")),
            (
                "kinesis:x",
                Err("`kinesis:x` is not an event target: on (files under --data-dir), off, or firehose:STREAM"),
            ),
        ] {
            let parsed = value.parse::<EventsTo>().map_err(|e| e.to_string());
            assert_eq!(parsed, expected.map_err(str::to_string), "{value:?}");
        }
    }
}
