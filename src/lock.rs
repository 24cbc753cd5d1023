//! Advisory locks with flock(2) on a file beside what they guard: `capture.lock` (one
//! capture per night), `nightly.lock` (one `netdigest nightly` per state directory) and
//! `mail.lock` (one sender per night).
//!
//! The kernel holds a lock for as long as the process keeps the file open and drops it
//! when the process ends, however it ends (kill -9, a panic, a power cut): no lock is
//! ever stale, and nothing has to look at `/proc` (which `ProtectProc=invisible` hides).
//! A lock file is never removed: removing it would let one process lock the old file
//! and another a new one under the same name. It holds the holder's pid, for messages
//! only.

use std::fs::File;
use std::io::{self, Read as _, Seek as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{FlockOperation, flock};

/// A lock held until dropped (or the process ends).
#[derive(Debug)]
pub struct FileLock {
    path: PathBuf,
    _file: File,
}

/// The lock is held by another process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Busy {
    /// The holder's pid as it wrote it, if it could be read.
    pub pid: Option<u32>,
}

impl Busy {
    /// `" (pid N)"`, or nothing when the pid is unknown.
    #[must_use]
    pub fn pid_note(&self) -> String {
        self.pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    }
}

fn open(path: &Path, create: bool) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(create)
        .create(create)
        .custom_flags(i32::try_from(rustix::fs::OFlags::NOFOLLOW.bits()).unwrap_or(0))
        .mode(0o644)
        .open(path)
}

fn holder(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

impl FileLock {
    /// Takes the exclusive lock on `path` (created if missing), trying for up to
    /// `patience` (a process that only looks whether the lock is held, with
    /// [`is_held`], holds it for an instant).
    ///
    /// # Errors
    /// `Ok(Err(Busy))` when another process holds it; `Err` when the file cannot be
    /// opened or locked.
    pub fn acquire(path: &Path, patience: Duration) -> io::Result<Result<FileLock, Busy>> {
        let mut file = open(path, true)?;
        let start = Instant::now();
        loop {
            match flock(&file, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => break,
                Err(rustix::io::Errno::WOULDBLOCK) if start.elapsed() < patience => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(rustix::io::Errno::WOULDBLOCK) => {
                    return Ok(Err(Busy {
                        pid: holder(&mut file),
                    }));
                }
                Err(e) => return Err(e.into()),
            }
        }
        // Ours now: record the pid (for the messages of the processes that find it held).
        file.set_len(0)?;
        file.rewind()?;
        writeln!(file, "{}", std::process::id())?;
        Ok(Ok(FileLock {
            path: path.to_path_buf(),
            _file: file,
        }))
    }

    /// The lock file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Whether another process holds the lock at `path` (a missing file is not held).
/// Takes a shared lock for an instant, so it never blocks a holder, and a process
/// taking the lock at that instant waits for it ([`FileLock::acquire`]'s patience).
///
/// # Errors
/// The file exists but cannot be opened or locked.
pub fn is_held(path: &Path) -> io::Result<Option<Busy>> {
    let mut file = match open(path, false) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    match flock(&file, FlockOperation::NonBlockingLockShared) {
        Ok(()) => Ok(None),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(Some(Busy {
            pid: holder(&mut file),
        })),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_until_dropped_and_never_stale() {
        let dir = std::env::temp_dir().join(format!("nd-lock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        let p = dir.join("x.lock");
        assert_eq!(is_held(&p).expect("probe"), None, "no file, no lock");
        let l = FileLock::acquire(&p, Duration::ZERO)
            .expect("open")
            .expect("free");
        // A second open file description (as another process has) finds it held.
        let busy = FileLock::acquire(&p, Duration::from_millis(60))
            .expect("open")
            .expect_err("held");
        assert_eq!(busy.pid, Some(std::process::id()));
        assert_eq!(is_held(&p).expect("probe"), Some(busy));
        drop(l);
        assert!(p.exists(), "lock files stay");
        assert_eq!(is_held(&p).expect("probe"), None);
        // What a crashed process leaves (a file with a pid, no flock) is no lock at all.
        std::fs::write(&p, "999999999\n").expect("write");
        let l = FileLock::acquire(&p, Duration::ZERO)
            .expect("open")
            .expect("free");
        assert_eq!(
            std::fs::read_to_string(l.path()).expect("read").trim(),
            std::process::id().to_string()
        );
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
