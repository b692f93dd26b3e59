//! `pullgate refresh-ranges DIR`: fetches the cloud and CI providers'
//! published range files into DIR, where the machine has internet, for
//! `serve --cloud-ranges`. Each file is checked (it must parse as the
//! provider format) before it replaces the previous copy, so a failed or
//! truncated download never leaves a broken file behind. The IP-to-ASN and
//! country data come from their own packages (ip-location-db on npm, or
//! MaxMind's GeoLite2 with a licence key) and are not fetched here.

use anyhow::Context;
use std::path::PathBuf;

/// (file name, default source)
const SOURCES: [(&str, &str); 3] = [
    (
        "aws-ip-ranges.json",
        "https://ip-ranges.amazonaws.com/ip-ranges.json",
    ),
    (
        "gcp-cloud.json",
        "https://www.gstatic.com/ipranges/cloud.json",
    ),
    ("github-meta.json", "https://api.github.com/meta"),
];

#[derive(clap::Args)]
pub struct RefreshArgs {
    /// Directory to write the range files to.
    dir: PathBuf,
    /// Override a source: FILE=URL (e.g. a mirror).
    #[arg(long = "source", value_name = "FILE=URL")]
    sources: Vec<String>,
}

pub fn run(args: RefreshArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let mut sources: Vec<(String, String)> = SOURCES
        .iter()
        .map(|(f, u)| (f.to_string(), u.to_string()))
        .collect();
    for spec in &args.sources {
        let (file, url) = spec
            .split_once('=')
            .with_context(|| format!("--source {spec:?}: expected FILE=URL"))?;
        match sources.iter_mut().find(|(f, _)| f == file) {
            Some(entry) => entry.1 = url.to_string(),
            None => anyhow::bail!("--source {file}: unknown file (known: aws-ip-ranges.json, gcp-cloud.json, github-meta.json)"),
        }
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = reqwest::Client::builder()
        .user_agent(concat!("pullgate/", env!("CARGO_PKG_VERSION")))
        .timeout(std::time::Duration::from_secs(60))
        .build()?;
    let mut failed = Vec::new();
    for (file, url) in sources {
        let target = args.dir.join(&file);
        let result: anyhow::Result<usize> = runtime.block_on(async {
            let response = client.get(&url).send().await?.error_for_status()?;
            let body = response.bytes().await?;
            let mut check = pullgate_enrich::FileEnricher::new();
            let partial = args.dir.join(format!("{file}.part"));
            std::fs::write(&partial, &body)?;
            let ranges = check
                .load_provider_ranges(&partial)
                .map_err(|e| anyhow::anyhow!("downloaded file is not usable: {e}"))?;
            std::fs::rename(&partial, &target)?;
            Ok(ranges)
        });
        match result {
            Ok(ranges) => println!("{file}: {ranges} ranges from {url}"),
            Err(error) => {
                let _ = std::fs::remove_file(args.dir.join(format!("{file}.part")));
                eprintln!("{file}: not refreshed from {url}: {error:#}");
                failed.push(file);
            }
        }
    }
    if !failed.is_empty() {
        anyhow::bail!(
            "not refreshed: {} (previous copies, if any, are unchanged)",
            failed.join(", ")
        );
    }
    Ok(())
}
