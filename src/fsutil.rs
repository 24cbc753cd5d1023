//! Atomic output files: written under a temporary name in the same directory,
//! fsynced, then renamed over the final name. A run that fails or is killed never
//! leaves a file under the final name that looks complete.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// A file being written; becomes visible under its final name only on [`AtomicFile::commit`].
/// Dropped without commit, the temporary file is removed.
#[derive(Debug)]
pub struct AtomicFile {
    tmp: PathBuf,
    dest: PathBuf,
    file: Option<File>,
}

impl AtomicFile {
    /// Creates `.<name>.tmp-<pid>` beside `dest`.
    ///
    /// # Errors
    /// The directory does not exist or is not writable, or `dest` is a directory.
    pub fn create(dest: &Path) -> io::Result<Self> {
        if dest.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "is a directory",
            ));
        }
        let name = dest
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?
            .to_string_lossy()
            .into_owned();
        let dir = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
        let file = File::create(&tmp)?;
        Ok(AtomicFile {
            tmp,
            dest: dest.to_path_buf(),
            file: Some(file),
        })
    }

    /// The open file, for writing (clone the handle to hand it to a writer that owns it).
    ///
    /// # Panics
    /// Never: the file is only taken by `commit`, which consumes `self`.
    #[must_use]
    pub fn writer(&self) -> &File {
        match &self.file {
            Some(f) => f,
            None => unreachable!("file is present until commit"),
        }
    }

    /// Flushes to disk and renames into place.
    ///
    /// # Errors
    /// fsync or rename failed; the temporary file is removed.
    pub fn commit(mut self) -> io::Result<()> {
        if let Some(f) = self.file.take() {
            f.sync_all()?;
        }
        std::fs::rename(&self.tmp, &self.dest)?;
        if let Some(dir) = self.dest.parent().filter(|p| !p.as_os_str().is_empty())
            && let Ok(d) = File::open(dir)
        {
            let _ = d.sync_all();
        }
        self.tmp = PathBuf::new();
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Moves a corrupt state file out of the way: renames `path` to
/// `<name>.corrupt-<UTC timestamp>` beside it (a `-N` suffix when that name is taken)
/// and returns the new path. The caller warns and goes on without the file.
///
/// # Errors
/// The rename failed (the file stays where it was).
pub fn move_aside(path: &Path) -> io::Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?
        .to_string_lossy()
        .into_owned();
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let base = format!("{name}.corrupt-{stamp}");
    let mut aside = path.with_file_name(&base);
    let mut n = 1;
    while aside.symlink_metadata().is_ok() {
        n += 1;
        aside = path.with_file_name(format!("{base}-{n}"));
    }
    std::fs::rename(path, &aside)?;
    Ok(aside)
}

/// Writes `bytes` to `dest` atomically.
///
/// # Errors
/// As [`AtomicFile::create`] and [`AtomicFile::commit`].
pub fn write_atomic(dest: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let f = AtomicFile::create(dest)?;
    f.writer().write_all(bytes)?;
    f.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncommitted_file_leaves_nothing() {
        let dir = std::env::temp_dir().join(format!("nd-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let dest = dir.join("out.bin");
        {
            let f = AtomicFile::create(&dest).expect("create");
            use std::io::Write;
            f.writer().write_all(b"half").expect("write");
        }
        assert!(!dest.exists());
        assert_eq!(
            std::fs::read_dir(&dir).expect("ls").count(),
            0,
            "temp file removed"
        );
        write_atomic(&dest, b"whole").expect("write");
        assert_eq!(std::fs::read(&dest).expect("read"), b"whole");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
