//! Free and total space of the filesystem holding a path (`statvfs`): the capture's disk
//! floor (`capture.min_free_mb`), and `check-config`'s check of the state directory's
//! bound.

use std::io;
use std::path::{Path, PathBuf};

/// Bytes in a MiB (the unit of every `*_mb` capture setting).
pub const MIB: u64 = 1024 * 1024;

/// The space of one filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Space {
    /// Bytes an unprivileged process may still write (`f_bavail`: root's reserve excluded).
    pub available: u64,
    /// The filesystem's size in bytes (`f_blocks`).
    pub total: u64,
}

impl Space {
    /// Available space in whole MiB.
    #[must_use]
    pub fn available_mb(&self) -> u64 {
        self.available / MIB
    }

    /// The filesystem's size in whole MiB.
    #[must_use]
    pub fn total_mb(&self) -> u64 {
        self.total / MIB
    }
}

/// The space of the filesystem holding `path`.
///
/// # Errors
/// `statvfs` fails (no such path, no permission).
pub fn space(path: &Path) -> io::Result<Space> {
    let st = rustix::fs::statvfs(path).map_err(io::Error::from)?;
    Ok(Space {
        available: st.f_bavail.saturating_mul(st.f_frsize),
        total: st.f_blocks.saturating_mul(st.f_frsize),
    })
}

/// The space of the filesystem `path` will be on: that of `path`, or of its parent when
/// it does not exist yet (a state directory not created yet, under an existing
/// `/var/lib`). Further up is another machine's business (a build sandbox): not found.
///
/// # Errors
/// Neither `path` nor its parent can be examined.
pub fn space_for(path: &Path) -> io::Result<(PathBuf, Space)> {
    let path = std::path::absolute(path)?;
    match space(&path) {
        Ok(s) => Ok((path, s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let parent = path.parent().ok_or(e)?.to_path_buf();
            let s = space(&parent)?;
            Ok((parent, s))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn space_of_a_real_filesystem() {
        let s = space(&std::env::temp_dir()).unwrap();
        assert!(s.total > 0 && s.available <= s.total, "{s:?}");
        assert!(space(Path::new("/nonexistent/netdigest")).is_err());
    }

    #[test]
    fn a_path_not_created_yet_takes_its_parents_filesystem() {
        let tmp = std::path::absolute(std::env::temp_dir()).unwrap();
        let absent = tmp.join(format!("netdigest-absent-{}", std::process::id()));
        let (at, s) = space_for(&absent).unwrap();
        assert_eq!(at, tmp);
        assert_eq!(s.total, space(&tmp).unwrap().total);
        let err = space_for(&absent.join("state")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "not further up");
    }
}
