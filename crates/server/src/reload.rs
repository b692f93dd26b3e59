//! Reloading the mapping file: on SIGHUP, and when the file changes (its
//! size, modification time or inode, looked at every second). A new file
//! that does not parse, or maps nothing, is refused with the reason and
//! the mappings already loaded keep serving.
//!
//! A change is acted on once the file has looked the same for two looks in
//! a row, so an editor still writing it is not read half-written; writing
//! the new file beside the old and renaming it over (what `pullgate map
//! export` and most deploy tools do) is never seen half-written at all.

use crate::mappings;
use pullgate_domain::store::SwappableTable;
use pullgate_settings::defaults;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// What identifies one version of the file on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Version {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

fn version(path: &Path) -> Option<Version> {
    let metadata = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&metadata);
    #[cfg(not(unix))]
    let inode = 0;
    Some(Version {
        len: metadata.len(),
        modified: metadata.modified().ok(),
        inode,
    })
}

/// Why a reload happened, for the log line.
#[derive(Debug, Clone, Copy)]
enum Trigger {
    Signal,
    FileChanged,
}

/// Runs until the process ends (on the control runtime). `hangup` is
/// installed by the caller before the server listens, so an early SIGHUP
/// never meets the default action (ending the process).
pub(crate) async fn watch(path: PathBuf, table: Arc<SwappableTable>, mut hangup: Hangup) {
    let mut loaded = version(&path);
    // A version seen once and not yet acted on (it must hold still first).
    let mut pending: Option<Option<Version>> = None;
    let mut tick = tokio::time::interval(defaults::MAPPING_FILE_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let trigger = tokio::select! {
            _ = tick.tick() => None,
            Some(()) = next_hangup(&mut hangup) => Some(Trigger::Signal),
        };
        let now = version(&path);
        let trigger = match trigger {
            Some(signal) => Some(signal),
            None if now == loaded => {
                pending = None;
                None
            }
            None if pending.as_ref() == Some(&now) => Some(Trigger::FileChanged),
            None => {
                pending = Some(now.clone());
                None
            }
        };
        if let Some(trigger) = trigger {
            pending = None;
            loaded = now;
            reload(&path, &table, trigger);
        }
    }
}

fn reload(path: &Path, table: &SwappableTable, trigger: Trigger) {
    match mappings::load(Some(path)) {
        Ok(new) => {
            let hosts = new.hosts().count();
            table.replace(new);
            metrics::counter!("pullgate_mapping_reloads_total", "result" => "ok").increment(1);
            tracing::info!(file = %path.display(), ?trigger, hosts, "mappings reloaded");
        }
        Err(error) => {
            metrics::counter!("pullgate_mapping_reloads_total", "result" => "refused").increment(1);
            tracing::warn!(
                file = %path.display(),
                ?trigger,
                error = format!("{error:#}"),
                "new mapping file refused; the mappings loaded before keep serving"
            );
        }
    }
}

#[cfg(unix)]
pub(crate) type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
pub(crate) type Hangup = ();

/// The SIGHUP handler; must be called inside a runtime.
#[cfg(unix)]
pub(crate) fn hangup_signal() -> Hangup {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(signal) => Some(signal),
        Err(error) => {
            tracing::warn!(%error, "cannot handle SIGHUP: mappings reload only when the file changes");
            None
        }
    }
}

#[cfg(not(unix))]
pub(crate) fn hangup_signal() -> Hangup {}

/// The next SIGHUP; never, without a handler.
#[cfg(unix)]
async fn next_hangup(hangup: &mut Hangup) -> Option<()> {
    match hangup {
        Some(signal) => signal.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn next_hangup(_: &mut Hangup) -> Option<()> {
    std::future::pending().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rewritten_file_is_a_new_version() {
        let dir = std::env::temp_dir().join(format!("pullgate-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.toml");
        std::fs::write(&path, "a").unwrap();
        let first = version(&path);
        assert!(first.is_some());
        // Written beside and renamed over: a new inode even at equal size
        // and within the clock's resolution.
        std::fs::write(dir.join("m.toml.new"), "b").unwrap();
        std::fs::rename(dir.join("m.toml.new"), &path).unwrap();
        assert_ne!(version(&path), first);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(version(&path), None);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
