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

/// The space of the filesystem `path` will be on: that of `path`, or of its nearest
/// existing ancestor when it does not exist yet (a state directory not created yet).
///
/// # Errors
/// No ancestor can be examined.
pub fn space_for(path: &Path) -> io::Result<(PathBuf, Space)> {
    let mut p = std::path::absolute(path)?;
    loop {
        match space(&p) {
            Ok(s) => return Ok((p, s)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if !p.pop() {
                    return Err(e);
                }
            }
            Err(e) => return Err(e),
        }
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
    fn a_path_not_created_yet_takes_its_ancestors_filesystem() {
        let tmp = std::env::temp_dir();
        let (at, s) = space_for(&tmp.join("netdigest-absent/nights/x")).unwrap();
        assert_eq!(at, std::path::absolute(&tmp).unwrap());
        assert_eq!(s.total, space(&tmp).unwrap().total);
    }
}
