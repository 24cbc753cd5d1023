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
    /// Creates `.<name>.tmp-<16 random hex digits>` beside `dest` as a new file
    /// (`O_CREAT|O_EXCL|O_NOFOLLOW`): nothing already at that name, a planted symlink
    /// least of all, is ever opened or followed, and the name cannot be guessed.
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
        let mut attempt = 0;
        let (tmp, file) = loop {
            let tmp = dir.join(format!(".{name}.tmp-{}", random_hex()?));
            match create_new(&tmp) {
                Ok(f) => break (tmp, f),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 8 => {
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        };
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

/// Opens `path` as a new file for writing: fails if anything (a symlink included) is
/// already there, and never follows a symlink.
///
/// # Errors
/// `AlreadyExists` when the name is taken; any other error of open(2).
pub fn create_new(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(nofollow())
        .open(path)
}

/// `O_NOFOLLOW` as `OpenOptionsExt::custom_flags` takes it.
fn nofollow() -> i32 {
    i32::try_from(rustix::fs::OFlags::NOFOLLOW.bits()).unwrap_or(0)
}

/// 64 random bits from the OS as 16 hex digits.
///
/// # Errors
/// The OS gives no random bytes.
pub fn random_hex() -> io::Result<String> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(|e| io::Error::other(format!("no random bytes: {e}")))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
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

/// [`move_aside`] a file found damaged, with one warning that says why, where it went
/// (or why it could not be moved) and what happens without it: `then`, for example
/// "left out of the history".
pub fn set_aside_warn(path: &Path, why: &str, then: &str) {
    match move_aside(path) {
        Ok(aside) => tracing::warn!(
            "{}: {why}; moved aside to {}, {then}",
            path.display(),
            aside.display()
        ),
        Err(m) => tracing::warn!("{}: {why}, not moved aside ({m}); {then}", path.display()),
    }
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

/// Writes `bytes` to `dest` atomically, readable by the file's group whatever the
/// umask (the hand-off of a stage's output to the next stage's user: see
/// [`crate::layout`]). Nothing is given to other users.
///
/// # Errors
/// As [`write_atomic`], or the mode cannot be set.
pub fn write_shared(dest: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt as _;
    let f = AtomicFile::create(dest)?;
    f.writer().write_all(bytes)?;
    let mode = f.writer().metadata()?.permissions().mode();
    f.writer()
        .set_permissions(std::fs::Permissions::from_mode(mode | 0o040))?;
    f.commit()
}

/// Adds the group permission `bits` (`0o050`: list and enter, `0o010`: enter only) to
/// directory `dir`, whatever the umask gave it: a hand-off directory (see
/// [`crate::layout`]).
///
/// # Errors
/// `dir` cannot be read or its mode set.
pub fn share_dir(dir: &Path, bits: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & bits != bits {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode((mode | bits) & 0o7777))?;
    }
    Ok(())
}

/// A buffered writer into an [`AtomicFile`] that its owner flushes (and sees the error
/// of) before committing, while a writer that takes ownership of it (polars' Parquet
/// writer, which never hands it back) writes through a clone. Parquet writers write
/// every page header and page on its own: unbuffered, a million-packet night took
/// 84,573 write(2) calls.
#[derive(Clone)]
pub struct SharedBuf(std::sync::Arc<std::sync::Mutex<io::BufWriter<File>>>);

impl SharedBuf {
    /// Buffers writes to a clone of `file`'s handle.
    ///
    /// # Errors
    /// The handle cannot be cloned.
    pub fn new(file: &AtomicFile) -> io::Result<Self> {
        let handle = file.writer().try_clone()?;
        Ok(SharedBuf(std::sync::Arc::new(std::sync::Mutex::new(
            io::BufWriter::with_capacity(1 << 20, handle),
        ))))
    }

    fn inner(&self) -> io::Result<std::sync::MutexGuard<'_, io::BufWriter<File>>> {
        self.0
            .lock()
            .map_err(|_| io::Error::other("the output buffer's lock is poisoned"))
    }
}

impl io::Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner()?.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner()?.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner()?.flush()
    }
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

    /// Symlinks planted at the names a temporary file used to have (`.<name>.tmp-<pid>`)
    /// are not followed: the file they point to is untouched, and the temporary name is
    /// random, new and never a symlink.
    #[test]
    fn planted_symlinks_are_not_followed() {
        use std::os::unix::fs::symlink;
        let dir = std::env::temp_dir().join(format!("nd-atomic-link-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        let victim = dir.join("victim");
        std::fs::write(&victim, b"precious").expect("victim");
        let dest = dir.join("out.json");
        let planted = dir.join(format!(".out.json.tmp-{}", std::process::id()));
        symlink(&victim, &planted).expect("symlink");
        let f = AtomicFile::create(&dest).expect("create");
        assert_ne!(f.tmp, planted);
        let tmp_name = f
            .tmp
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let suffix = tmp_name.strip_prefix(".out.json.tmp-").expect("prefix");
        assert!(suffix.len() == 16 && suffix.chars().all(|c| c.is_ascii_hexdigit()));
        assert!(
            !f.tmp
                .symlink_metadata()
                .expect("tmp")
                .file_type()
                .is_symlink()
        );
        drop(f);
        write_atomic(&dest, b"new").expect("write");
        assert_eq!(std::fs::read(&dest).expect("dest"), b"new");
        assert_eq!(std::fs::read(&victim).expect("victim"), b"precious");
        // Opening a planted name itself fails and writes nothing through the link.
        let e = create_new(&planted).expect_err("a symlink is refused");
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        let dangling = dir.join("dangling");
        symlink(dir.join("would-be-created"), &dangling).expect("symlink");
        assert!(create_new(&dangling).is_err());
        assert!(
            !dir.join("would-be-created").exists(),
            "dangling link followed"
        );
        assert_eq!(std::fs::read(&victim).expect("victim"), b"precious");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn corrupt_file_is_moved_aside() {
        let dir = std::env::temp_dir().join(format!("nd-aside-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        let p = dir.join("state.json");
        std::fs::write(&p, b"{").expect("write");
        let a = move_aside(&p).expect("aside");
        std::fs::write(&p, b"{{").expect("write");
        let b = move_aside(&p).expect("aside again");
        assert!(!p.exists());
        assert_ne!(a, b);
        let name = a.file_name().expect("name").to_string_lossy().into_owned();
        assert!(name.starts_with("state.json.corrupt-"), "{name}");
        assert_eq!(std::fs::read(&a).expect("a"), b"{");
        assert_eq!(std::fs::read(&b).expect("b"), b"{{");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
