//! The watched deploy directory: components shipped by file copy instead of the API.
//!
//! In: files at `<watch_dir>/<hospital>/<role>.wasm`. Each file that kept the same size
//! and modification time across two polls goes through [`Registry::deploy`], then moves
//! to `<hospital>/deployed/<sha256>.wasm`, or to `<hospital>/rejected/` with a `.txt`
//! file that gives the reason.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use super::{ChangeError, Registry, now_ms};
use crate::runtime::Role;

/// Time between two scans of the directory. A file is deployed once it is unchanged
/// across two scans, so a copy is picked up 2 to 4 s after it ends.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Subdirectory of a hospital directory that receives deployed components.
const DEPLOYED: &str = "deployed";
/// Subdirectory of a hospital directory that receives rejected files and their reasons.
const REJECTED: &str = "rejected";

/// A file waiting in a hospital directory, with what the last scan saw of it.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    size_bytes: u64,
    modified: Option<SystemTime>,
}

/// Polls `dir` every `poll_interval` and deploys what lands there until `shutdown` is
/// set.
///
/// Polling instead of file-system events works the same on every platform and on
/// network mounts, and the stability check needs a second look at the file anyway.
pub fn spawn(
    registry: Registry,
    dir: PathBuf,
    poll_interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tracing::info!(dir = %dir.display(), "watching for components to deploy");
        let mut previous: HashMap<PathBuf, Seen> = HashMap::new();
        loop {
            let scan_dir = dir.clone();
            let current = tokio::task::spawn_blocking(move || scan(&scan_dir))
                .await
                .unwrap_or_default();
            for (path, seen) in &current {
                if previous.get(path) == Some(seen) {
                    try_deploy(&registry, &dir, path).await;
                }
            }
            // A file that was handled is gone from the next scan; a file kept for a retry
            // stays stable and is tried again.
            previous = current;
            tokio::select! {
                _ = tokio::time::sleep(poll_interval) => {}
                _ = shutdown.changed() => return,
            }
        }
    })
}

/// Lists the candidate files: every non-hidden file directly inside a hospital
/// directory. Hidden files are skipped because copy tools write to one and rename it.
fn scan(dir: &Path) -> HashMap<PathBuf, Seen> {
    let mut found = HashMap::new();
    let Ok(hospitals) = std::fs::read_dir(dir) else {
        return found;
    };
    for hospital in hospitals.flatten() {
        let Ok(files) = std::fs::read_dir(hospital.path()) else {
            continue;
        };
        for file in files.flatten() {
            let hidden = file.file_name().to_string_lossy().starts_with('.');
            let Ok(metadata) = file.metadata() else {
                continue;
            };
            if hidden || !metadata.is_file() {
                continue;
            }
            let seen = Seen {
                size_bytes: metadata.len(),
                modified: metadata.modified().ok(),
            };
            found.insert(file.path(), seen);
        }
    }
    found
}

/// Deploys one stable file and moves it aside. The file stays in place for a retry when
/// Kafka or the disk failed rather than the file.
async fn try_deploy(registry: &Registry, dir: &Path, path: &Path) {
    let hospital_dir = path.parent().unwrap_or(dir).to_path_buf();
    let hospital = hospital_dir
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let outcome = deploy_file(registry, &hospital, &file_name, path).await;
    match outcome {
        Ok(sha256) => {
            let target = hospital_dir.join(DEPLOYED).join(format!("{sha256}.wasm"));
            tracing::info!(%hospital, file = %file_name, %sha256, "deployed from the watched directory");
            move_file(path, &target);
        }
        Err(ChangeError::Unavailable(reason)) => {
            // NOTE: retried every poll while Kafka or the disk fails, with a warning each time.
            tracing::warn!(%hospital, file = %file_name, %reason, "deploy from the watched directory failed, will retry");
        }
        Err(error) => {
            tracing::warn!(%hospital, file = %file_name, %error, "rejected a component from the watched directory");
            reject(&hospital_dir, path, &file_name, &error.to_string());
        }
    }
}

/// Checks the file name, reads the file and deploys it; returns the new sha256.
async fn deploy_file(
    registry: &Registry,
    hospital: &str,
    file_name: &str,
    path: &Path,
) -> Result<String, ChangeError> {
    let role: Role = file_name
        .strip_suffix(".wasm")
        .ok_or_else(|| {
            ChangeError::Invalid(format!(
                "invalid file name {file_name:?}: expected preprocess.wasm, score.wasm or \
                 alert-rules.wasm"
            ))
        })?
        .parse()
        .map_err(|error: String| ChangeError::Invalid(format!("{error} (file {file_name:?})")))?;
    let max = registry.config().max_component_bytes;
    let read_path = path.to_path_buf();
    let bytes = tokio::task::spawn_blocking(move || std::fs::read(read_path))
        .await
        .map_err(|error| ChangeError::Unavailable(format!("read task failed: {error}")))?
        .map_err(|error| ChangeError::Unavailable(format!("failed to read the file: {error}")))?;
    if bytes.len() > max {
        return Err(ChangeError::Invalid(format!(
            "component of {} bytes is larger than [registry] max_component_bytes {max}",
            bytes.len()
        )));
    }
    let by = format!("watch:{}", path.display());
    let report = registry.deploy(&by, hospital, role, bytes, None).await?;
    Ok(report.change.sha256.unwrap_or_default())
}

/// Moves a rejected file to `rejected/<stem>.<ms since epoch>.wasm` and writes the reason
/// next to it, as the same name with `.txt`.
fn reject(hospital_dir: &Path, path: &Path, file_name: &str, reason: &str) {
    let stem = file_name.strip_suffix(".wasm").unwrap_or(file_name);
    let stamped = format!("{stem}.{}", now_ms());
    let rejected = hospital_dir.join(REJECTED);
    move_file(path, &rejected.join(format!("{stamped}.wasm")));
    let note = rejected.join(format!("{stamped}.txt"));
    if let Err(error) = std::fs::write(&note, format!("{reason}\n")) {
        tracing::error!(file = %note.display(), %error, "failed to write the rejection reason");
    }
}

/// Renames `from` to `to`, creating the target directory; logs a failure.
fn move_file(from: &Path, to: &Path) {
    let result = to
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::rename(from, to));
    if let Err(error) = result {
        tracing::error!(from = %from.display(), to = %to.display(), %error, "failed to move a file in the watched directory");
    }
}
