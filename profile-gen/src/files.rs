//! Writing output files so that a failure never leaves a truncated or empty file behind: the
//! bytes go to a temporary file in the target's directory, are flushed to disk, and the file is
//! renamed over the target in one step. Used for profiles, settings and (by the tracer)
//! recordings.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Why an output file could not be written. Each variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot write {}: it is a directory; give a file name, e.g. {}", path.display(), path.join("seccomp.json").display())]
    IsDirectory { path: PathBuf },
    #[error("cannot write {}: it is not a regular file (a device, pipe or socket); give the path of a file", path.display())]
    NotAFile { path: PathBuf },
    #[error("cannot write {}: directory {} does not exist; create it or choose another output path", path.display(), dir.display())]
    NoDirectory { path: PathBuf, dir: PathBuf },
    #[error("cannot write {}: cannot create a file in {} ({}); choose a writable directory", path.display(), dir.display(), io_message(source))]
    CreateTemp {
        path: PathBuf,
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {}: {}", path.display(), io_message(source))]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {}: renaming the temporary file into place failed ({})", path.display(), io_message(source))]
    Rename {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Writes `bytes` to `path` atomically (temporary file in the same directory, fsync, rename),
/// mode 0644. When running as root under sudo (`SUDO_UID`/`SUDO_GID` set), the file is given to
/// the invoking user so they can edit and commit it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    write_atomic_all(&[(path, bytes)])
}

/// Writes several files so that either all are in place or none was touched, as far as the
/// filesystem allows: every temporary file is written and flushed before the first rename, so an
/// unwritable directory or a full disk for any of them leaves all targets unchanged.
pub fn write_atomic_all(files: &[(&Path, &[u8])]) -> Result<(), WriteError> {
    let mut staged: Vec<Staged> = Vec::with_capacity(files.len());
    for (path, bytes) in files {
        match stage(path, bytes) {
            Ok(s) => staged.push(s),
            Err(e) => {
                for s in &staged {
                    let _ = fs::remove_file(&s.temp);
                }
                return Err(e);
            }
        }
    }
    for (i, s) in staged.iter().enumerate() {
        if let Err(source) = fs::rename(&s.temp, &s.target) {
            for later in &staged[i..] {
                let _ = fs::remove_file(&later.temp);
            }
            return Err(WriteError::Rename {
                path: s.target.clone(),
                source,
            });
        }
        // Make the rename itself durable; a failure here does not undo the write.
        if let Ok(dir) = File::open(&s.dir) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

struct Staged {
    temp: PathBuf,
    target: PathBuf,
    dir: PathBuf,
}

fn stage(path: &Path, bytes: &[u8]) -> Result<Staged, WriteError> {
    if path.is_dir() || path.as_os_str().is_empty() || path.file_name().is_none() {
        return Err(WriteError::IsDirectory {
            path: path.to_owned(),
        });
    }
    // Renaming over a device, pipe or socket (`-o /dev/null`, `-o /dev/stdout`) would replace
    // the node itself with a regular file: as root, that breaks the system.
    if fs::metadata(path).is_ok_and(|m| !m.is_file()) {
        return Err(WriteError::NotAFile {
            path: path.to_owned(),
        });
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(WriteError::NoDirectory {
            path: path.to_owned(),
            dir,
        });
    }
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let temp = dir.join(format!(
        ".{file_name}.cinch-{}-{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&temp)
        .map_err(|source| WriteError::CreateTemp {
            path: path.to_owned(),
            dir: dir.clone(),
            source,
        })?;
    let result = (|| {
        file.write_all(bytes)?;
        // The umask may have narrowed the mode given at creation.
        file.set_permissions(fs::Permissions::from_mode(0o644))?;
        give_to_sudo_user(&file)?;
        file.sync_all()
    })();
    if let Err(source) = result {
        let _ = fs::remove_file(&temp);
        return Err(WriteError::Write {
            path: path.to_owned(),
            source,
        });
    }
    Ok(Staged {
        temp,
        target: path.to_owned(),
        dir,
    })
}

/// The largest recording, profile or settings file cinch reads. A recording holds at most a few
/// thousand syscall entries and 16,384 capability checks (a few MiB); Docker's default profile is
/// 20 KiB. Anything larger is not one of them, and reading it whole could exhaust memory (or
/// never end: `/dev/zero`).
pub const MAX_INPUT_BYTES: u64 = 64 * 1024 * 1024;

/// Reads an input file whole, refusing more than [`MAX_INPUT_BYTES`] (an error of kind
/// `FileTooLarge` whose message says so).
pub fn read_input(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    File::open(path)?
        .take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!(
                "it is larger than {} MiB, far more than any cinch recording or seccomp profile",
                MAX_INPUT_BYTES / (1024 * 1024)
            ),
        ));
    }
    Ok(bytes)
}

/// The invoking user's ids when running as root under sudo (`SUDO_UID`/`SUDO_GID`).
fn sudo_user() -> Option<(Option<u32>, Option<u32>)> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        return None;
    }
    let id = |var: &str| std::env::var(var).ok().and_then(|v| v.parse::<u32>().ok());
    match (id("SUDO_UID"), id("SUDO_GID")) {
        (None, None) => None,
        ids => Some(ids),
    }
}

fn give_to_sudo_user(file: &File) -> io::Result<()> {
    match sudo_user() {
        Some((uid, gid)) => std::os::unix::fs::fchown(file, uid, gid),
        None => Ok(()),
    }
}

/// `create_dir_all`, with every directory it creates given to the invoking user under sudo (as
/// the files written into it are), so that they can rename and remove what cinch wrote there.
pub fn create_dir_all_for_user(dir: &Path) -> io::Result<()> {
    let missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
        .collect();
    fs::create_dir_all(dir)?;
    if let Some((uid, gid)) = sudo_user() {
        for d in missing {
            std::os::unix::fs::chown(d, uid, gid)?;
        }
    }
    Ok(())
}

/// An I/O error as the lowercase phrase users read ("permission denied"), without Rust's
/// "(os error 13)" suffix.
pub fn io_message(e: &io::Error) -> String {
    let msg = e.to_string();
    let msg = match msg.find(" (os error") {
        Some(i) => &msg[..i],
        None => msg.as_str(),
    };
    let mut chars = msg.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};

    fn leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .expect("read dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".cinch-"))
            .collect()
    }

    #[test]
    fn writes_replaces_and_sets_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("p.json");
        write_atomic(&path, b"one\n").expect("first write");
        write_atomic(&path, b"two\n").expect("second write");
        assert_eq!(fs::read(&path).expect("read"), b"two\n");
        assert_eq!(fs::metadata(&path).expect("stat").mode() & 0o777, 0o644);
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn refuses_directories_and_missing_parents() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = write_atomic(dir.path(), b"x").expect_err("a directory");
        assert!(matches!(err, WriteError::IsDirectory { .. }));
        assert!(err.to_string().contains("is a directory"), "{err}");
        let err = write_atomic(&dir.path().join("nope/p.json"), b"x").expect_err("no parent");
        assert!(matches!(err, WriteError::NoDirectory { .. }), "{err:?}");
    }

    #[test]
    fn all_or_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = dir.path().join("good.json");
        let bad = dir.path().join("missing/bad.json");
        let err = write_atomic_all(&[(&good, b"x"), (&bad, b"y")]).expect_err("second fails");
        assert!(matches!(err, WriteError::NoDirectory { .. }));
        assert!(
            !good.exists(),
            "the first file must not be written when the second fails"
        );
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn refuses_to_replace_a_non_regular_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("fifo");
        nix_mkfifo(&fifo);
        let err = write_atomic(&fifo, b"x").expect_err("a pipe");
        assert!(matches!(err, WriteError::NotAFile { .. }), "{err:?}");
        assert!(fs::metadata(&fifo).expect("stat").file_type().is_fifo());
        assert!(leftovers(dir.path()).is_empty());
    }

    fn nix_mkfifo(path: &Path) {
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("no NUL");
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
    }

    #[test]
    fn reads_inputs_up_to_the_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let small = dir.path().join("small.json");
        fs::write(&small, b"{}").expect("write");
        assert_eq!(read_input(&small).expect("small"), b"{}");
        let big = dir.path().join("big.json");
        File::create(&big)
            .and_then(|f| f.set_len(MAX_INPUT_BYTES + 1))
            .expect("sparse file");
        let err = read_input(&big).expect_err("too large");
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
        assert!(
            io_message(&err).starts_with("it is larger than 64 MiB"),
            "{err}"
        );
    }

    #[test]
    fn io_messages_are_lowercase_phrases() {
        let e = io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(io_message(&e), "permission denied");
    }
}
