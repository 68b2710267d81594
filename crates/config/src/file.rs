//! Locked, atomic updates of a configuration file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::{Config, Error};

/// Reads `path` (a missing file counts as empty), lets `change` modify the
/// configuration, and writes the result back atomically.
///
/// Writers are serialised by an exclusive lock on a sidecar file
/// (`.NAME.lock` beside the configuration), so concurrent updates never
/// lose each other's changes. The new text goes to a temporary file in the
/// same directory, is synced, and replaces the old file by `rename`; readers
/// see either the old or the new file, never a mix. When `change` fails, or
/// the file does not parse, nothing is written; nor is it when the new text
/// would not read back as exactly the changed configuration (it must parse,
/// name every parameter once and hold the same values), which is
/// [`Error::EditRefused`]. A new file is created with
/// mode 0600 (it may hold secrets); an existing file keeps its mode.
///
/// # Errors
/// Whatever `change` returns, a parse error of the current file, or
/// [`Error::Io`].
pub fn update_file<R>(
    path: &Path,
    change: impl FnOnce(&mut Config) -> Result<R, Error>,
) -> Result<R, Error> {
    let io = |p: &Path| {
        let p = p.to_owned();
        move |source: io::Error| Error::Io { path: p, source }
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| Error::Io {
            path: path.to_owned(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "not a file name"),
        })?
        .to_string_lossy()
        .into_owned();
    let lock_path = dir.join(format!(".{name}.lock"));
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .map_err(io(&lock_path))?;
    lock.lock().map_err(io(&lock_path))?;

    let (text, mode) = match fs::read_to_string(path) {
        Ok(t) => {
            let mode = fs::metadata(path).map_err(io(path))?.permissions().mode();
            (t, mode & 0o7777)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => (String::new(), 0o600),
        Err(e) => return Err(io(path)(e)),
    };
    let mut config = Config::parse(&text)?;
    let result = change(&mut config)?;
    let new_text = config.to_string();
    if new_text != text {
        // Never write what would not read back as the configuration meant.
        config.check_reads_back(&new_text)?;
        let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
        let written = write_synced(&tmp, new_text.as_bytes(), mode)
            .and_then(|()| fs::rename(&tmp, path))
            .and_then(|()| File::open(&dir)?.sync_all());
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io(path)(e));
        }
    }
    // The lock is released when `lock` is dropped.
    drop(lock);
    Ok(result)
}

fn write_synced(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(mode)
        .open(path)?;
    f.set_permissions(fs::Permissions::from_mode(mode))?;
    f.write_all(bytes)?;
    f.sync_all()
}
