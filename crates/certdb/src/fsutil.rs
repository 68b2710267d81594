//! Crash-safe file primitives: write to a temporary file, sync, rename, sync
//! the directory.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The writers' lock file inside the database directory.
pub(crate) const LOCK_FILE: &str = "certdb.lock";

/// Prefix of temporary files; a writer removes stale ones when it starts.
pub(crate) const TMP_PREFIX: &str = ".tmp-";

/// Largest file the database reads (certificates, keys, the index).
pub(crate) const MAX_FILE: u64 = 64 * 1024 * 1024;

pub(crate) fn random_hex(n: usize) -> Result<String> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).map_err(|e| Error::Crypto(format!("random: {e}")))?;
    Ok(hex(&b))
}

/// Lower-case hex, as the index names files and stores digests.
pub(crate) fn hex(b: &[u8]) -> String {
    base16ct::lower::encode_string(b)
}

/// Hex of either case back to bytes; `None` for anything else.
pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    base16ct::mixed::decode_vec(s).ok()
}

/// How often a failed directory sync after a rename is tried again before
/// the write is reported as not durable.
pub(crate) const DIR_SYNC_ATTEMPTS: usize = 3;

#[cfg(test)]
thread_local! {
    /// Tests: the next directory syncs on this thread, `(succeed, then
    /// fail)`: the first number succeed, the second number after them fail.
    pub(crate) static DIR_SYNC_FAULTS: std::cell::Cell<(usize, usize)> =
        const { std::cell::Cell::new((0, 0)) };
}

/// Syncs a directory so that renames and unlinks inside it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(test)]
    {
        let (ok, fail) = DIR_SYNC_FAULTS.get();
        if ok > 0 {
            DIR_SYNC_FAULTS.set((ok - 1, fail));
        } else if fail > 0 {
            DIR_SYNC_FAULTS.set((0, fail - 1));
            return Err(Error::io(
                "syncing directory",
                dir,
                std::io::Error::other("injected failure"),
            ));
        }
    }
    let d = File::open(dir).map_err(|e| Error::io("opening directory", dir, e))?;
    d.sync_all()
        .map_err(|e| Error::io("syncing directory", dir, e))
}

/// Syncs `dir` after a rename into it, trying again a few times; the last
/// failure is [`Error::NotDurable`].
fn sync_after_rename(dir: &Path, path: &Path) -> Result<()> {
    let mut last = None;
    for attempt in 1..=DIR_SYNC_ATTEMPTS {
        match sync_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, attempt, "directory sync after rename failed");
                last = Some(e);
            }
        }
    }
    Err(Error::NotDurable {
        path: path.to_owned(),
        source: Box::new(last.unwrap_or_else(|| {
            Error::io(
                "syncing directory",
                dir,
                std::io::Error::other("no attempt"),
            )
        })),
    })
}

/// Writes `data` to `path` atomically: a reader sees the old content or the
/// new content, never a mixture, and after a crash the file is one or the
/// other. `private` files get mode 0600.
///
/// # Errors
/// [`Error::NotDurable`] when the new content is in place but the directory
/// sync after the rename kept failing: a crash may bring the old content
/// back, so the caller must treat both as possibly current (the database
/// then removes no file either may name). Any other error leaves the old
/// content in place.
pub(crate) fn atomic_write(path: &Path, data: &[u8], private: bool) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!("{TMP_PREFIX}{}", random_hex(8)?));
    let res = (|| {
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(if private { 0o600 } else { 0o644 });
        }
        #[cfg(not(unix))]
        let _ = private;
        let mut f = opts
            .open(&tmp)
            .map_err(|e| Error::io("creating", &tmp, e))?;
        f.write_all(data)
            .map_err(|e| Error::io("writing", &tmp, e))?;
        f.sync_all().map_err(|e| Error::io("syncing", &tmp, e))?;
        drop(f);
        fs::rename(&tmp, path).map_err(|e| Error::io("renaming into place", path, e))
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
        return res;
    }
    sync_after_rename(dir, path)
}

/// Reads a whole file, refusing anything over [`MAX_FILE`].
pub(crate) fn read_capped(path: &Path) -> Result<Vec<u8>> {
    let f = File::open(path).map_err(|e| Error::io("opening", path, e))?;
    let len = f
        .metadata()
        .map_err(|e| Error::io("reading", path, e))?
        .len();
    if len > MAX_FILE {
        return Err(Error::TooLarge(usize::try_from(len).unwrap_or(usize::MAX)));
    }
    fs::read(path).map_err(|e| Error::io("reading", path, e))
}

/// An exclusive writer lock on the database (`File::lock`, released on drop).
#[derive(Debug)]
pub(crate) struct WriteLock {
    file: File,
    dir: PathBuf,
    path: PathBuf,
}

impl WriteLock {
    pub(crate) fn acquire(dir: &Path) -> Result<WriteLock> {
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io("opening lock file", &path, e))?;
        file.lock().map_err(|e| Error::io("locking", &path, e))?;
        Ok(WriteLock {
            file,
            dir: dir.to_owned(),
            path,
        })
    }

    /// The database directory this lock guards.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for WriteLock {
    fn drop(&mut self) {
        if let Err(e) = self.file.unlock() {
            tracing::warn!(path = %self.path.display(), error = %e, "unlocking certificate database");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::{hex, unhex};

    #[test]
    fn hex_round_trips_and_refuses_non_hex() {
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(unhex("00abff").unwrap(), [0x00, 0xab, 0xff]);
        assert_eq!(unhex("00ABfF").unwrap(), [0x00, 0xab, 0xff]);
        assert_eq!(unhex("").unwrap(), Vec::<u8>::new());
        for bad in ["0", "0g", "+1", " 0a", "0a\n", "é0"] {
            assert!(unhex(bad).is_none(), "{bad:?}");
        }
    }
}
