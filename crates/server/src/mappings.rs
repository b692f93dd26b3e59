//! The mapping table `pullgate serve` answers from: a TOML file, or the
//! embedded example so that `pullgate serve` works with no file at all; and
//! `pullgate check-mappings`, which prints what a file maps.

use anyhow::Context;
use pullgate_domain::mapping::{MappingTable, Target};
use std::path::Path;

/// The mapping file used when none is given.
const EMBEDDED_MAPPINGS: &str = include_str!("../../../examples/mappings.toml");

/// The table from `config`, or the embedded one; a table mapping nothing
/// is an error (every request would be a 404).
pub(crate) fn load(config: Option<&Path>) -> anyhow::Result<MappingTable> {
    let (text, origin) = match config {
        Some(path) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read mapping file {}", path.display()))?,
            path.display().to_string(),
        ),
        None => (
            EMBEDDED_MAPPINGS.to_string(),
            "embedded examples/mappings.toml".into(),
        ),
    };
    parse(&text, &origin)
}

fn parse(text: &str, origin: &str) -> anyhow::Result<MappingTable> {
    let table = MappingTable::from_toml(text).with_context(|| format!("in {origin}"))?;
    if table.is_empty() {
        anyhow::bail!("{origin} maps nothing: add [[mappings]] entries");
    }
    Ok(table)
}

pub fn check_mappings(file: &Path) -> anyhow::Result<()> {
    println!("{}", describe(&load(Some(file))?).join("\n"));
    Ok(())
}

/// One line per mapping, sorted: `host/name<TAB>mode<TAB>target`, and
/// `<TAB>credentials REF` where the upstream is asked with credentials
/// (the reference, never the secret).
fn describe(table: &MappingTable) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for (host, mappings) in table.hosts() {
        for m in mappings.oci().iter().chain(mappings.http()) {
            let (target, credentials) = match &m.target {
                Target::Oci { upstream, .. } => (
                    format!("{}/{}", upstream.registry.base, upstream.repository),
                    upstream.credentials.as_ref(),
                ),
                Target::Http { base, .. } => (base.clone(), None),
            };
            let mut line = format!("{host}/{}\t{}\t{target}", m.name, m.mode.as_str());
            if let Some(credentials) = credentials {
                line += &format!("\tcredentials {credentials}");
            }
            lines.push(line);
        }
    }
    lines.sort();
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_mappings_load() {
        let lines = describe(&load(None).unwrap());
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("localhost/library/alpine\t")),
            "{lines:?}"
        );
        let mut sorted = lines.clone();
        sorted.sort();
        assert_eq!(lines, sorted);
    }

    #[test]
    fn credentials_show_as_their_reference() {
        let table = parse(
            "[[mappings]]\nhost = \"h\"\nname = \"p\"\nupstream = \"ghcr.io/acme/p\"\n\
             credentials = \"env:GHCR\"\n\
             [[mappings]]\nhost = \"h\"\nname = \"e\"\n\
             upstream = \"123456789012.dkr.ecr.us-east-1.amazonaws.com/e\"\n",
            "test.toml",
        )
        .unwrap();
        assert_eq!(
            describe(&table),
            [
                "h/e\tauto\thttps://123456789012.dkr.ecr.us-east-1.amazonaws.com/e\tcredentials ecr",
                "h/p\tauto\thttps://ghcr.io/acme/p\tcredentials env:GHCR",
            ]
        );
    }

    #[test]
    fn a_table_mapping_nothing_is_an_error_naming_its_origin() {
        let error = parse("", "test.toml").unwrap_err().to_string();
        assert_eq!(error, "test.toml maps nothing: add [[mappings]] entries");
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let error = load(Some(Path::new("/nonexistent/mappings.toml")))
            .unwrap_err()
            .to_string();
        assert!(error.contains("/nonexistent/mappings.toml"), "{error}");
    }
}
