//! Recovery of the event files an earlier run left open: a process that
//! dies (`kill -9`, an OOM kill, a panic that aborts) leaves its current
//! file as a `.part` holding a gzip stream cut short. The writer
//! sync-flushes that stream every second, so it decodes up to the last
//! flush (and usually a little further).
//!
//! For each `DIR/events/dt=*/NAME.json.gz.part` whose lock can be taken
//! (one a running process writes is locked, and left alone):
//!
//! 1. decode as far as the stream is intact and keep the complete lines
//!    (up to the last `\n`) that are JSON;
//! 2. write them as a complete gzip file `NAME-recovered.json.gz.recovering`
//!    and sync it;
//! 3. rename that to `NAME-recovered.json.gz` (readers only read
//!    `.json.gz`, so this is where the lines are published, atomically);
//! 4. remove the `.part`.
//!
//! A crash at any step leaves a state the next start finishes without
//! publishing a line twice: a `.recovering` beside its `.part` is an
//! unpublished attempt, overwritten by the redo; a `NAME-recovered.json.gz`
//! beside its `.part` means only step 4 was missed. The recovered name is
//! derived from the `.part`'s, which is what makes that second case
//! recognizable. A `.part` with no intact line is removed.

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::lock;

/// What a writer names its open file: `NAME.json.gz` + this.
const PART: &str = ".part";
const COMPLETE: &str = ".json.gz";
const RECOVERED: &str = "-recovered.json.gz";
/// A recovered file before it is published.
const RECOVERING: &str = ".recovering";
/// Decoded bytes read at a time: recovery streams, so a 64 MiB file is
/// never held in memory whole.
const CHUNK: usize = 256 * 1024;

/// What recovery found on start, reported in the log (and to tests).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryStats {
    /// `.part` files dealt with: recovered, or removed with no intact line.
    pub files: u64,
    /// Lines published again.
    pub events: u64,
    /// Decoded bytes not kept: a line cut short, or a line that is not JSON.
    pub bytes_dropped: u64,
    /// `.part` files locked by a running process, left alone.
    pub in_use: u64,
    /// `.part` files that could not be recovered now (kept for next start).
    pub failed: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error("cannot list {}: {source}", path.display())]
    List { path: PathBuf, source: io::Error },
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot lock {}: {source}", path.display())]
    Lock { path: PathBuf, source: io::Error },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot publish {}: {source}", path.display())]
    Publish { path: PathBuf, source: io::Error },
    #[error("cannot remove {}: {source}", path.display())]
    Remove { path: PathBuf, source: io::Error },
}

/// What became of one `.part`.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Recovered {
        to: PathBuf,
        events: u64,
        bytes_dropped: u64,
        /// Why decoding stopped before the end of a complete stream.
        cut: Option<String>,
    },
    /// Nothing intact: removed.
    Empty { bytes_dropped: u64 },
    /// Recovered by an earlier start that stopped before removing it.
    AlreadyRecovered { to: PathBuf },
    /// Locked: a running process writes it.
    InUse,
    /// Gone, or renamed by its writer, since the directory was listed.
    Vanished,
}

/// Recovers every `.part` under `events` (the `DIR/events` directory) and
/// logs one line per file and a total. Failures are logged and leave the
/// file for the next start: the sink starts regardless.
pub fn recover(events: &Path) -> RecoveryStats {
    let mut stats = RecoveryStats::default();
    let partitions = match list(events) {
        Ok(entries) => entries,
        Err(error) => {
            tracing::warn!(%error, "event files left by an earlier run not looked for");
            return stats;
        }
    };
    for partition in partitions.iter().filter(|p| p.is_dir()) {
        let names = match list(partition) {
            Ok(names) => names,
            Err(error) => {
                tracing::warn!(%error, "event files left by an earlier run not looked for");
                continue;
            }
        };
        for part in names.iter().filter(|p| recovered_name(p).is_some()) {
            match recover_one(part) {
                Ok(outcome) => tally(&mut stats, part, outcome),
                Err(error) => {
                    stats.failed += 1;
                    tracing::warn!(%error, file = %part.display(), "event file not recovered; kept for the next start");
                }
            }
        }
        for temporary in names.iter().filter(|p| has_suffix(p, RECOVERING)) {
            remove_orphaned(temporary);
        }
    }
    if stats != RecoveryStats::default() {
        tracing::warn!(
            files = stats.files,
            events_recovered = stats.events,
            bytes_dropped = stats.bytes_dropped,
            in_use = stats.in_use,
            failed = stats.failed,
            "event files left by an earlier run recovered"
        );
    }
    stats
}

fn tally(stats: &mut RecoveryStats, part: &Path, outcome: Outcome) {
    let file = part.display();
    match outcome {
        Outcome::Recovered {
            to,
            events,
            bytes_dropped,
            cut,
        } => {
            stats.files += 1;
            stats.events += events;
            stats.bytes_dropped += bytes_dropped;
            metrics::counter!("pullgate_events_recovered_total", "sink" => "file")
                .increment(events);
            let cut = cut.as_deref().unwrap_or("complete stream");
            tracing::info!(%file, to = %to.display(), events, bytes_dropped, cut, "event file recovered");
        }
        Outcome::Empty { bytes_dropped } => {
            stats.files += 1;
            stats.bytes_dropped += bytes_dropped;
            tracing::info!(%file, bytes_dropped, "event file with no intact line removed");
        }
        Outcome::AlreadyRecovered { to } => {
            stats.files += 1;
            tracing::info!(%file, to = %to.display(), "event file already recovered; removed");
        }
        Outcome::InUse => {
            stats.in_use += 1;
            tracing::info!(%file, "event file in use by a running process; left alone");
        }
        Outcome::Vanished => {}
    }
}

fn list(dir: &Path) -> Result<Vec<PathBuf>, RecoveryError> {
    let error = |source| RecoveryError::List {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::read_dir(dir)
        .map_err(error)?
        .map(|entry| entry.map(|e| e.path()).map_err(error))
        .collect()
}

fn has_suffix(path: &Path, suffix: &str) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(suffix))
}

/// `NAME-recovered.json.gz` for a writer's `NAME.json.gz.part`, `None` for
/// any other file.
fn recovered_name(part: &Path) -> Option<PathBuf> {
    let name = part.file_name()?.to_str()?;
    let base = name.strip_suffix(PART)?.strip_suffix(COMPLETE)?;
    Some(part.with_file_name(format!("{base}{RECOVERED}")))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn recover_one(part: &Path) -> Result<Outcome, RecoveryError> {
    let Some(to) = recovered_name(part) else {
        return Ok(Outcome::Vanished);
    };
    let read_error = |source| RecoveryError::Read {
        path: part.to_path_buf(),
        source,
    };
    let file = match File::open(part) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Outcome::Vanished),
        Err(error) => return Err(read_error(error)),
    };
    // Held until this function returns: two processes starting at once
    // cannot both recover the file.
    match lock::try_lock(&file) {
        Ok(true) => {}
        Ok(false) => return Ok(Outcome::InUse),
        Err(source) => {
            return Err(RecoveryError::Lock {
                path: part.to_path_buf(),
                source,
            })
        }
    }
    if !lock::still_named(&file, part).map_err(read_error)? {
        return Ok(Outcome::Vanished);
    }
    if to.try_exists().map_err(read_error)? {
        remove(part)?;
        return Ok(Outcome::AlreadyRecovered { to });
    }
    let temporary = with_suffix(&to, RECOVERING);
    let copied = match copy_intact_lines(file, part, &temporary) {
        Ok(copied) => copied,
        Err(error) => {
            // Unpublished; the next start redoes it from the `.part`.
            let _ = std::fs::remove_file(&temporary);
            return Err(error);
        }
    };
    if copied.events == 0 {
        remove(&temporary)?;
        remove(part)?;
        return Ok(Outcome::Empty {
            bytes_dropped: copied.bytes_dropped,
        });
    }
    let publish_error = |source| RecoveryError::Publish {
        path: to.clone(),
        source,
    };
    std::fs::rename(&temporary, &to).map_err(publish_error)?;
    // The rename must be on disk before the `.part` is gone, or a power
    // loss could keep neither.
    if let Some(dir) = to.parent() {
        sync_dir(dir).map_err(publish_error)?;
    }
    remove(part)?;
    Ok(Outcome::Recovered {
        to,
        events: copied.events,
        bytes_dropped: copied.bytes_dropped,
        cut: copied.cut,
    })
}

fn remove(path: &Path) -> Result<(), RecoveryError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(RecoveryError::Remove {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// A `.recovering` whose `.part` is gone cannot be one a recovery is
/// writing (it holds the `.part` until it has renamed this away), and it
/// was never published: removed.
fn remove_orphaned(temporary: &Path) {
    let Some(part) = part_of_temporary(temporary) else {
        return;
    };
    if matches!(part.try_exists(), Ok(false)) {
        match remove(temporary) {
            Ok(()) => {
                tracing::info!(file = %temporary.display(), "unpublished recovery attempt removed")
            }
            Err(error) => tracing::warn!(%error, "unpublished recovery attempt not removed"),
        }
    }
}

/// `NAME.json.gz.part` for `NAME-recovered.json.gz.recovering`.
fn part_of_temporary(temporary: &Path) -> Option<PathBuf> {
    let name = temporary.file_name()?.to_str()?;
    let base = name.strip_suffix(RECOVERING)?.strip_suffix(RECOVERED)?;
    Some(temporary.with_file_name(format!("{base}{COMPLETE}{PART}")))
}

#[derive(Debug, Default)]
struct Copied {
    events: u64,
    bytes_dropped: u64,
    cut: Option<String>,
}

/// Decodes `part` as far as it is intact and writes its complete JSON
/// lines to `temporary` as one complete, synced gzip stream.
fn copy_intact_lines(part: File, path: &Path, temporary: &Path) -> Result<Copied, RecoveryError> {
    let write_error = |source| RecoveryError::Write {
        path: temporary.to_path_buf(),
        source,
    };
    // Truncates what an interrupted attempt left: the redo starts over.
    let out = File::create(temporary).map_err(write_error)?;
    let mut out = GzEncoder::new(BufWriter::with_capacity(CHUNK, out), Compression::fast());
    let mut decoder = GzDecoder::new(BufReader::with_capacity(CHUNK, part));
    let mut copied = Copied::default();
    let mut pending: Vec<u8> = Vec::with_capacity(2 * CHUNK);
    let mut chunk = vec![0u8; CHUNK];
    loop {
        match decoder.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => pending.extend_from_slice(&chunk[..n]),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            // A stream cut short ends here: a truncated deflate block, no
            // trailer, or garbage a power loss left in the tail.
            Err(error) => {
                copied.cut = Some(error.to_string());
                break;
            }
        }
        if let Some(last) = pending.iter().rposition(|&b| b == b'\n') {
            copy_lines(&pending[..=last], &mut out, &mut copied).map_err(write_error)?;
            pending.drain(..=last);
        }
    }
    if !pending.is_empty() {
        copied.bytes_dropped += pending.len() as u64;
        copied.cut.get_or_insert_with(|| "a line cut short".into());
    }
    let mut inner = out.finish().map_err(write_error)?;
    inner.flush().map_err(write_error)?;
    inner.get_ref().sync_data().map_err(write_error)?;
    tracing::debug!(file = %path.display(), events = copied.events, "event file decoded");
    Ok(copied)
}

/// Copies the lines of `complete` (which ends with `\n`) that are JSON; a
/// line that is not (a power loss can leave garbage that still decodes)
/// would make every reader of the file fail.
fn copy_lines(complete: &[u8], out: &mut impl Write, copied: &mut Copied) -> io::Result<()> {
    for line in complete.split_inclusive(|&b| b == b'\n') {
        let json = line.strip_suffix(b"\n").unwrap_or(line);
        if serde_json::from_slice::<serde::de::IgnoredAny>(json).is_ok() {
            out.write_all(line)?;
            copied.events += 1;
        } else {
            copied.bytes_dropped += line.len() as u64;
        }
    }
    Ok(())
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_part() {
        let part = Path::new("/d/events/dt=2026-11-21/pullgate-1-2-000003.json.gz.part");
        let to = recovered_name(part).unwrap();
        assert_eq!(
            to,
            Path::new("/d/events/dt=2026-11-21/pullgate-1-2-000003-recovered.json.gz")
        );
        assert_eq!(
            part_of_temporary(&with_suffix(&to, RECOVERING)).as_deref(),
            Some(part)
        );
        assert_eq!(recovered_name(Path::new("/d/other.part")), None);
        assert_eq!(recovered_name(Path::new("/d/x.json.gz")), None);
    }
}
