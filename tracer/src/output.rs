//! Output files: checked before any work starts (so a long recording is not lost to a typo in
//! `-o`), and written atomically.

use std::path::Path;

use crate::error::input;

/// Fails early when `path` cannot be written: a directory, or a missing / read-only parent.
pub fn check_writable(path: &Path) -> anyhow::Result<()> {
    if path.is_dir() {
        return Err(input(format!(
            "{} is a directory; give a file name",
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
    if nix::unistd::access(parent, nix::unistd::AccessFlags::W_OK).is_err() {
        return Err(input(format!(
            "cannot write {}: directory {} is not writable",
            path.display(),
            parent.display()
        )));
    }
    Ok(())
}

pub fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    profile_gen::fsutil::write_atomic(path, bytes).map_err(|e| input(e.to_string()))
}
