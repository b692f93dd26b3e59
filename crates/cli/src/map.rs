//! `pullgate map`: add, remove, list, show, import and export mappings in
//! the DynamoDB table the gateway Lambda reads (`--table`, PULLGATE_TABLE)
//! or in a local mapping file (`--file`). Every entry goes through the
//! domain's validation before anything is written; bad input is refused
//! with the reason and a nonzero exit.
//!
//! `--file` rewrites the file in canonical form (comments are not kept).

use anyhow::{bail, Context};
use pullgate_aws::dynamo_mappings::{spec_from_item, DynamoMappings, PutError};
use pullgate_domain::mapping::{specs_from_toml, Mapping, MappingSpec, MappingTable, Mode};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("store").required(true).args(["table", "file"]))]
pub struct MapArgs {
    /// DynamoDB table the gateway reads (AWS credentials and region from
    /// the environment, as the AWS CLI takes them).
    #[arg(long, env = "PULLGATE_TABLE", global = true)]
    table: Option<String>,
    /// Local mapping file (TOML) instead of DynamoDB.
    #[arg(long, global = true)]
    file: Option<PathBuf>,
    #[command(subcommand)]
    command: MapCommand,
}

#[derive(clap::Subcommand)]
enum MapCommand {
    /// Add a mapping: `pullgate map add images.acme.dev/app docker.io/acme/app`.
    Add {
        /// Public HOST[/NAME]; HOST alone maps the whole host.
        public: String,
        /// Upstream: [https://]registry/repository (kind oci) or a base URL (kind http).
        upstream: String,
        /// redirect | proxy | auto
        #[arg(long, default_value = "auto")]
        mode: String,
        /// oci (registry, default) | http (Helm repository, release files)
        #[arg(long)]
        kind: Option<String>,
        /// Upstream that serves while the primary is marked down.
        #[arg(long)]
        fallback: Option<String>,
        /// Mark the primary down (the fallback serves).
        #[arg(long)]
        down: bool,
        /// kind http: do not rewrite index.yaml chart URLs.
        #[arg(long)]
        no_rewrite_index: bool,
        /// Where the upstream credentials live (never the secret itself):
        /// env:PREFIX, file:/path, secretsmanager:ID, ecr or none.
        #[arg(long, value_name = "REF")]
        credentials: Option<String>,
        /// Overwrite an existing mapping of the same HOST/NAME.
        #[arg(long)]
        replace: bool,
    },
    /// Remove a mapping.
    Rm { public: String },
    /// List mappings (all, or one host's).
    List { host: Option<String> },
    /// Show one mapping as a mapping-file entry.
    Show { public: String },
    /// Add every mapping of a mapping file (the whole file is checked first).
    Import {
        source: PathBuf,
        /// Overwrite existing mappings of the same HOST/NAME.
        #[arg(long)]
        replace: bool,
    },
    /// Print all mappings as a mapping file.
    Export,
}

/// `HOST[/NAME]` split into host and name prefix.
fn split_public(public: &str) -> (&str, &str) {
    match public.split_once('/') {
        Some((host, name)) => (host, name),
        None => (public, ""),
    }
}

/// Validates an entry; the error names the entry and the reason.
fn validate(spec: &MappingSpec) -> anyhow::Result<Mapping> {
    spec.clone().validate().map_err(|e| {
        let public = if spec.name.is_empty() {
            spec.host.clone()
        } else {
            format!("{}/{}", spec.host, spec.name)
        };
        anyhow::anyhow!("{public}: {e}")
    })
}

/// The entry as the store keeps it: host lowercased, name trimmed.
fn canonical(spec: &MappingSpec, mapping: &Mapping) -> MappingSpec {
    MappingSpec {
        host: mapping.host.clone(),
        name: mapping.name.clone(),
        upstream: spec.upstream.trim().to_string(),
        mode: mapping.mode,
        kind: spec.kind.clone(),
        fallback: spec.fallback.as_ref().map(|f| f.trim().to_string()),
        down: spec.down,
        rewrite_index: spec.rewrite_index,
        credentials: spec.credentials.as_ref().map(|c| c.trim().to_string()),
    }
}

/// TOML basic strings accept JSON's escapes.
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| format!("{text:?}"))
}

fn toml_entry(spec: &MappingSpec) -> String {
    let mut out = String::from("[[mappings]]\n");
    out += &format!("host = {}\n", quoted(&spec.host));
    out += &format!("name = {}\n", quoted(&spec.name));
    if let Some(kind) = &spec.kind {
        out += &format!("kind = {}\n", quoted(kind));
    }
    out += &format!("upstream = {}\n", quoted(&spec.upstream));
    out += &format!("mode = {}\n", quoted(spec.mode.as_str()));
    if let Some(fallback) = &spec.fallback {
        out += &format!("fallback = {}\n", quoted(fallback));
    }
    if spec.down {
        out += "down = true\n";
    }
    if !spec.rewrite_index {
        out += "rewrite_index = false\n";
    }
    if let Some(credentials) = &spec.credentials {
        out += &format!("credentials = {}\n", quoted(credentials));
    }
    out
}

fn toml_file(specs: &[MappingSpec]) -> String {
    specs.iter().map(toml_entry).collect::<Vec<_>>().join("\n")
}

fn summary(spec: &MappingSpec) -> String {
    let public = if spec.name.is_empty() {
        spec.host.clone()
    } else {
        format!("{}/{}", spec.host, spec.name)
    };
    let mut line = format!("{public} -> {} ({}", spec.upstream, spec.mode.as_str());
    if let Some(kind) = &spec.kind {
        line += &format!(", kind {kind}");
    }
    if let Some(fallback) = &spec.fallback {
        line += &format!(", fallback {fallback}");
    }
    if spec.down {
        line += ", primary down";
    }
    if let Some(credentials) = &spec.credentials {
        line += &format!(", credentials {credentials}");
    }
    line + ")"
}

fn sort(specs: &mut [MappingSpec]) {
    specs.sort_by(|a, b| (&a.host, &a.name).cmp(&(&b.host, &b.name)));
}

/// Where mappings are kept.
enum Store {
    Dynamo(DynamoMappings),
    File(PathBuf),
}

fn read_file_specs(path: &Path) -> anyhow::Result<Vec<MappingSpec>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(specs_from_toml(&text)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

impl Store {
    async fn all(&self) -> anyhow::Result<Vec<MappingSpec>> {
        let mut specs = match self {
            Store::File(path) => read_file_specs(path)?,
            Store::Dynamo(table) => {
                let mut specs = Vec::new();
                for item in table.all_items().await? {
                    match spec_from_item(&item) {
                        Ok(spec) => specs.push(spec),
                        Err(e) => eprintln!("pullgate: skipping an invalid item: {e}"),
                    }
                }
                specs
            }
        };
        sort(&mut specs);
        Ok(specs)
    }

    async fn get(&self, host: &str, name: &str) -> anyhow::Result<Option<MappingSpec>> {
        match self {
            Store::File(_) => Ok(self
                .all()
                .await?
                .into_iter()
                .find(|s| same_key(s, host, name))),
            Store::Dynamo(table) => match table.get(host, name).await? {
                Some(item) => Ok(Some(spec_from_item(&item).map_err(anyhow::Error::msg)?)),
                None => Ok(None),
            },
        }
    }

    /// Writes validated entries; refuses existing ones unless `replace`.
    async fn put(&self, entries: &[(MappingSpec, Mapping)], replace: bool) -> anyhow::Result<()> {
        match self {
            Store::Dynamo(table) => {
                // All or nothing where it is cheap: an import that would
                // overwrite is refused before anything is written.
                if !replace && entries.len() > 1 {
                    for (_, mapping) in entries {
                        if table.get(&mapping.host, &mapping.name).await?.is_some() {
                            bail!(
                                "mapping {} already exists (use --replace to overwrite it); nothing was written",
                                mapping.id()
                            );
                        }
                    }
                }
                for (spec, mapping) in entries {
                    match table.put(spec, mapping, replace).await {
                        Ok(()) => {}
                        Err(PutError::Exists(id)) => {
                            bail!("mapping {id} already exists (use --replace to overwrite it)")
                        }
                        Err(PutError::Store(e)) => return Err(e.into()),
                    }
                }
                Ok(())
            }
            Store::File(path) => {
                let mut specs = read_file_specs(path)?;
                for (spec, mapping) in entries {
                    let existing = specs
                        .iter()
                        .position(|s| same_key(s, &mapping.host, &mapping.name));
                    match (existing, replace) {
                        (Some(_), false) => bail!(
                            "mapping {} already exists (use --replace to overwrite it)",
                            mapping.id()
                        ),
                        (Some(i), true) => specs[i] = canonical(spec, mapping),
                        (None, _) => specs.push(canonical(spec, mapping)),
                    }
                }
                write_file(path, specs)
            }
        }
    }

    async fn remove(&self, host: &str, name: &str) -> anyhow::Result<bool> {
        match self {
            Store::Dynamo(table) => Ok(table.delete(host, name).await?),
            Store::File(path) => {
                let mut specs = read_file_specs(path)?;
                let before = specs.len();
                specs.retain(|s| !same_key(s, host, name));
                if specs.len() == before {
                    return Ok(false);
                }
                write_file(path, specs)?;
                Ok(true)
            }
        }
    }
}

fn same_key(spec: &MappingSpec, host: &str, name: &str) -> bool {
    spec.host.eq_ignore_ascii_case(host) && spec.name.trim_matches('/') == name
}

/// Checks the whole file as the gateway will read it, then writes it.
fn write_file(path: &Path, mut specs: Vec<MappingSpec>) -> anyhow::Result<()> {
    sort(&mut specs);
    let text = toml_file(&specs);
    MappingTable::from_toml(&text).context("the resulting mapping file would be invalid")?;
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, &text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// The key of a `HOST[/NAME]` argument, checked like a mapping's.
fn public_key(public: &str) -> anyhow::Result<(String, String)> {
    let (host, name) = split_public(public);
    let probe = MappingSpec {
        host: host.to_string(),
        name: name.to_string(),
        upstream: "registry.invalid".to_string(),
        mode: Mode::Auto,
        kind: None,
        fallback: None,
        down: false,
        rewrite_index: true,
        credentials: None,
    };
    let mapping = validate(&probe)?;
    Ok((mapping.host, mapping.name))
}

pub fn run(args: MapArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let store = match (&args.table, &args.file) {
            (_, Some(path)) => Store::File(path.clone()),
            (Some(table), None) => {
                let config = pullgate_aws::sdk_config().await;
                Store::Dynamo(DynamoMappings::new(&config, table))
            }
            (None, None) => {
                bail!("say where mappings live: --table NAME (or PULLGATE_TABLE) or --file PATH")
            }
        };
        command(&store, args.command).await
    })
}

async fn command(store: &Store, command: MapCommand) -> anyhow::Result<()> {
    match command {
        MapCommand::Add {
            public,
            upstream,
            mode,
            kind,
            fallback,
            down,
            no_rewrite_index,
            credentials,
            replace,
        } => {
            let (host, name) = split_public(&public);
            let spec = MappingSpec {
                host: host.to_string(),
                name: name.to_string(),
                upstream,
                mode: mode.parse().map_err(|e| anyhow::anyhow!("{public}: {e}"))?,
                kind,
                fallback,
                down,
                rewrite_index: !no_rewrite_index,
                credentials,
            };
            let mapping = validate(&spec)?;
            let canonical = canonical(&spec, &mapping);
            store.put(&[(canonical.clone(), mapping)], replace).await?;
            println!("added {}", summary(&canonical));
        }
        MapCommand::Rm { public } => {
            let (host, name) = public_key(&public)?;
            if !store.remove(&host, &name).await? {
                bail!("no mapping {public}");
            }
            println!("removed {public}");
        }
        MapCommand::List { host } => {
            let host = host.map(|h| h.to_ascii_lowercase());
            for spec in store.all().await? {
                if host.as_deref().is_none_or(|h| h == spec.host) {
                    println!("{}", summary(&spec));
                }
            }
        }
        MapCommand::Show { public } => {
            let (host, name) = public_key(&public)?;
            match store.get(&host, &name).await? {
                Some(spec) => print!("{}", toml_entry(&spec)),
                None => bail!("no mapping {public}"),
            }
        }
        MapCommand::Import { source, replace } => {
            let text = std::fs::read_to_string(&source)
                .with_context(|| format!("cannot read {}", source.display()))?;
            MappingTable::from_toml(&text)
                .with_context(|| format!("{} is not a valid mapping file", source.display()))?;
            let mut entries = Vec::new();
            let mut keys = HashSet::new();
            for spec in specs_from_toml(&text)? {
                let mapping = validate(&spec)?;
                if !keys.insert((mapping.host.clone(), mapping.name.clone())) {
                    // The table is keyed by host and name: an oci and an
                    // http mapping cannot share a name there.
                    bail!("{}: two mappings with the same host and name", mapping.id());
                }
                entries.push((canonical(&spec, &mapping), mapping));
            }
            store.put(&entries, replace).await?;
            println!("imported {} mappings", entries.len());
        }
        MapCommand::Export => print!("{}", toml_file(&store.all().await?)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exported_files_read_back_the_same() {
        let text = r#"
            [[mappings]]
            host = "images.acme.dev"
            upstream = "docker.io/acme"
            mode = "redirect"
            [[mappings]]
            host = "images.acme.dev"
            name = "charts"
            kind = "http"
            upstream = "https://github.com/acme/charts/releases/download"
            rewrite_index = false
            [[mappings]]
            host = "images.acme.dev"
            name = "app"
            upstream = "docker.io/acme/app"
            fallback = "ghcr.io/acme/app"
            down = true
            [[mappings]]
            host = "images.acme.dev"
            name = "private"
            upstream = "ghcr.io/acme/private"
            mode = "proxy"
            credentials = "secretsmanager:pullgate/ghcr"
        "#;
        let mut specs = specs_from_toml(text).unwrap();
        sort(&mut specs);
        let exported = toml_file(&specs);
        let mut again = specs_from_toml(&exported).unwrap();
        sort(&mut again);
        assert_eq!(specs, again);
        MappingTable::from_toml(&exported).unwrap();
    }

    /// `pullgate map --file F ARGS…`, parsed as the command line is.
    fn map(file: &Path, args: &[&str]) -> anyhow::Result<()> {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            map: MapArgs,
        }
        let file = file.to_str().unwrap();
        let argv = ["pullgate-map", "--file", file]
            .into_iter()
            .chain(args.iter().copied());
        run(<Cli as clap::Parser>::try_parse_from(argv)?.map)
    }

    #[test]
    fn map_add_writes_the_credentials_reference_and_refuses_a_bad_one() {
        let dir = std::env::temp_dir().join(format!("pullgate-map-creds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("mappings.toml");
        let _ = std::fs::remove_file(&file);
        map(
            &file,
            &[
                "add",
                "images.acme.dev/private",
                "ghcr.io/acme/private",
                "--mode",
                "proxy",
                "--credentials",
                " secretsmanager:pullgate/ghcr ",
            ],
        )
        .unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.contains("credentials = \"secretsmanager:pullgate/ghcr\"\n"),
            "{text}"
        );
        let table = MappingTable::from_toml(&text).unwrap();
        let mapping = table.host("images.acme.dev").unwrap().oci()[0].clone();
        assert!(mapping.has_credentials());

        let refusals = [
            ("vault:x", "invalid credentials \"vault:…\": unknown scheme"),
            ("hunter2", "invalid credentials \"…\": unknown scheme"),
            ("env:", "empty name after the scheme"),
            ("file:relative.json", "file: needs an absolute path"),
        ];
        for (value, why) in refusals {
            let args = [
                "add",
                "images.acme.dev/other",
                "ghcr.io/acme/other",
                "--mode",
                "proxy",
                "--credentials",
                value,
            ];
            let error = format!("{:#}", map(&file, &args).unwrap_err());
            assert!(error.starts_with("images.acme.dev/other: "), "{error}");
            assert!(error.contains(why), "{value}: {error}");
        }
        // A redirected client talks to the upstream itself: no account.
        let args = [
            "add",
            "images.acme.dev/r",
            "ghcr.io/acme/r",
            "--mode",
            "redirect",
            "--credentials",
            "env:GHCR",
        ];
        assert!(map(&file, &args).is_err());
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            text,
            "a refused add wrote nothing"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn public_names_split_into_host_and_prefix() {
        assert_eq!(split_public("images.acme.dev"), ("images.acme.dev", ""));
        assert_eq!(
            split_public("images.acme.dev/a/b"),
            ("images.acme.dev", "a/b")
        );
        assert!(public_key("images.acme.dev/Bad").is_err());
        assert!(public_key("bad host/x").is_err());
    }
}
