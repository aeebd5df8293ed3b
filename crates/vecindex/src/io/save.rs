//! Saving without ever leaving a torn or half-written file, and without leftovers.
//!
//! Every save writes a temp file beside its target (`.NAME.tmp-PID-N`), syncs it and renames it
//! over the target: a crash leaves the old file or the new one. The temp files of saves in
//! progress are tracked, so that a program stopped by a signal can remove them
//! ([`abandon_saves`]; the CLI does, from a signal-handling thread), and a save removes the temp
//! files that saves in processes no longer running (`kill -9`) left for the same target.

use crate::error::{Error, Result};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// Files this process has created for saves and not yet committed.
static UNCOMMITTED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn uncommitted() -> MutexGuard<'static, Vec<PathBuf>> {
    UNCOMMITTED.lock().unwrap_or_else(|p| p.into_inner())
}

/// Removes the files of every save in progress in this process and blocks any save from creating
/// or committing a file from now on; returns how many files were removed. For a program about to
/// end because of a signal: call it, then end the process (saves in progress never finish).
pub fn abandon_saves() -> usize {
    let mut files = uncommitted();
    let removed = files
        .drain(..)
        .filter(|p| std::fs::remove_file(p).is_ok())
        .count();
    // The lock stays held: a save that reaches its create or its rename waits for the end.
    std::mem::forget(files);
    removed
}

/// A file written for a save that is not committed yet: tracked (see [`abandon_saves`]) and
/// removed when dropped uncommitted, e.g. when a later step of the save fails.
pub(crate) struct Uncommitted {
    path: PathBuf,
    live: bool,
}

impl Uncommitted {
    /// Creates `path` (truncating it) as an uncommitted file.
    fn create(path: PathBuf) -> std::io::Result<(Uncommitted, File)> {
        let mut files = uncommitted();
        let file = File::create(&path)?;
        files.push(path.clone());
        Ok((Uncommitted { path, live: true }, file))
    }

    /// Stops tracking the file (the caller holds the lock): it now belongs to a committed save.
    fn commit(mut self, files: &mut Vec<PathBuf>) {
        files.retain(|p| p != &self.path);
        self.live = false;
    }
}

impl Drop for Uncommitted {
    fn drop(&mut self) {
        if self.live {
            let mut files = uncommitted();
            let _ = std::fs::remove_file(&self.path);
            files.retain(|p| p != &self.path);
        }
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsync, rename,
/// fsync of the directory. A crash leaves either the old file or the new one, never a torn one.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    atomic_write_committing(path, bytes, None)
}

/// [`atomic_write`], committing `also` (an uncommitted file of the same save) in the same step as
/// the rename: a stop by signal either removes both or neither.
pub(crate) fn atomic_write_committing(
    path: &Path,
    bytes: &[u8],
    also: Option<Uncommitted>,
) -> Result<()> {
    let tmp = write_temp(path, bytes)?;
    let mut files = uncommitted();
    if let Err(e) = std::fs::rename(&tmp.path, path) {
        drop(files);
        return Err(Error::io(path, e));
    }
    tmp.commit(&mut files);
    if let Some(also) = also {
        also.commit(&mut files);
    }
    drop(files);
    sync_parent(path);
    Ok(())
}

/// [`atomic_write`] whose result stays uncommitted: removed if the rest of the save fails or the
/// process is stopped by a signal before [`atomic_write_committing`] commits it.
pub(crate) fn write_uncommitted(path: &Path, bytes: &[u8]) -> Result<Uncommitted> {
    let mut tmp = write_temp(path, bytes)?;
    let mut files = uncommitted();
    if let Err(e) = std::fs::rename(&tmp.path, path) {
        drop(files);
        return Err(Error::io(path, e));
    }
    for p in files.iter_mut().filter(|p| **p == tmp.path) {
        *p = path.to_path_buf();
    }
    tmp.path = path.to_path_buf();
    drop(files);
    sync_parent(path);
    Ok(tmp)
}

/// The synced temp file for a save to `path`.
fn write_temp(path: &Path, bytes: &[u8]) -> Result<Uncommitted> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| Error::invalid(format!("{} is not a file path", path.display())))?
        .to_string_lossy()
        .to_string();
    remove_stale_temps(&dir, &name);
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp_path = dir.join(format!(".{name}.tmp-{}-{n}", std::process::id()));
    let (tmp, mut f) = Uncommitted::create(tmp_path).map_err(|e| Error::io(path, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::io(path, e))?;
    Ok(tmp)
}

/// Removes the `.NAME.tmp-PID-N` files that saves to `NAME` by processes no longer running left
/// behind (killed mid-save). Only where liveness can be told (`/proc`); a live or unknown process's
/// file is left alone, and so is this process's (another thread may be saving).
fn remove_stale_temps(dir: &Path, name: &str) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let prefix = format!(".{name}.tmp-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(rest) = file.to_str().and_then(|f| f.strip_prefix(&prefix)) else {
            continue;
        };
        let Some((pid, n)) = rest.split_once('-') else {
            continue;
        };
        let (Ok(pid), Ok(_)) = (pid.parse::<u32>(), n.parse::<u64>()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Makes a rename into `path`'s directory durable (best effort: not every platform or file system
/// lets a directory be opened and synced).
pub fn sync_parent(path: &Path) {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_save_removes_temp_files_of_dead_processes_only() {
        if !Path::new("/proc/self").exists() {
            return; // liveness cannot be told here: nothing is removed
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.index");
        std::fs::write(&path, b"old").unwrap();
        // A pid that surely ran and ended: a finished child's.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let stale = dir.path().join(format!(".x.index.tmp-{dead}-0"));
        let live = dir.path().join(".x.index.tmp-1-0");
        let mine = dir
            .path()
            .join(format!(".x.index.tmp-{}-99", std::process::id()));
        let other = dir.path().join(format!(".y.index.tmp-{dead}-0"));
        for p in [&stale, &live, &mine, &other] {
            std::fs::write(p, b"partial").unwrap();
        }
        atomic_write(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert!(!stale.exists(), "a dead process's temp file is removed");
        assert!(live.exists() && mine.exists() && other.exists());
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.index");
        atomic_write(&p, b"old").unwrap();
        atomic_write(&p, b"new").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // A directory that does not exist: error, and nothing created.
        assert!(atomic_write(&dir.path().join("no/such/x"), b"z").is_err());
        // A rename that fails (the target is a non-empty directory): the temp file is removed.
        std::fs::create_dir(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d/inner"), b"x").unwrap();
        assert!(atomic_write(&dir.path().join("d"), b"z").is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn uncommitted_files_are_removed_unless_committed() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let pending = write_uncommitted(&a, b"forest").unwrap();
        assert!(uncommitted().contains(&a));
        drop(pending);
        assert!(
            !a.exists() && !uncommitted().contains(&a),
            "dropped: removed"
        );
        let pending = write_uncommitted(&a, b"forest").unwrap();
        atomic_write_committing(&b, b"sidecar", Some(pending)).unwrap();
        assert!(a.exists() && b.exists(), "committed together");
        assert!(!uncommitted().iter().any(|p| p.starts_with(dir.path())));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
