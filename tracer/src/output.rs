//! Output files: checked before any work starts (so a long recording is not lost to a typo in
//! `-o`), and written atomically.

use std::path::Path;

use crate::error::input;

/// Fails early when `path` cannot be written: a directory, a device or pipe, or a missing or
/// unwritable parent. Root passes every permission check, so the parent is tested by creating
/// (and removing) a file in it: that also catches /proc, /sys and read-only mounts.
pub(crate) fn check_writable(path: &Path) -> anyhow::Result<()> {
    if path.is_dir() {
        return Err(input(format!(
            "{} is a directory; give a file name",
            path.display()
        )));
    }
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
        return Err(input(format!(
            "cannot write {}: it is not a regular file (a device, pipe or socket); give the path of a file",
            path.display()
        )));
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(input(format!(
            "cannot write {}: directory {} does not exist",
            path.display(),
            parent.display()
        )));
    }
    let probe = parent.join(format!(".cinch-write-check-{}.tmp", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(input(format!(
            "cannot write {}: directory {} is not writable ({})",
            path.display(),
            parent.display(),
            profile_gen::files::io_message(&e)
        ))),
    }
}

pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    profile_gen::files::write_atomic(path, bytes).map_err(|e| input(e.to_string()))
}
