//! Filesystem writes: which syscalls write a path and where their arguments are (`PATH_SPEC`,
//! filled at load), and the [`PathEvent`]s the kernel side sends, placed in the writing
//! process's own view of the filesystem.
//!
//! A relative path is resolved against the process's working directory (or the directory
//! descriptor it named) read from `/proc` when the event is drained, every tick: a process
//! gone by then leaves the path unresolved, and the recording says so. A path is given as the
//! process sees it: for a process under `chroot` or in a container, below its own root.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use cinch_common::{
    ARCH_COMPAT, ARCH_NATIVE, ARG_SPEC_LEN, AT_FDCWD, DIR_COMPLETE, MAX_SYSCALLS, PathEvent,
    PathSpec, counter,
};
use profile_gen::Arch;
use profile_gen::filesystem::{FileWrites, MAX_UNRESOLVED};

use super::loader::table_arch;

/// Syscalls that write a path, with where their arguments are (include/linux/syscalls.h).
/// For link and symlink only the new name is written.
const PATH_SYSCALLS: &[(&str, PathSpec)] = &[
    ("open", spec(Some(0), None, Some(1), None, None)),
    ("openat", spec(Some(1), Some(0), Some(2), None, None)),
    ("creat", spec(Some(0), None, None, None, None)),
    ("mkdir", spec(Some(0), None, None, None, None)),
    ("mkdirat", spec(Some(1), Some(0), None, None, None)),
    ("mknod", spec(Some(0), None, None, None, None)),
    ("mknodat", spec(Some(1), Some(0), None, None, None)),
    ("unlink", spec(Some(0), None, None, None, None)),
    ("unlinkat", spec(Some(1), Some(0), None, None, None)),
    ("rmdir", spec(Some(0), None, None, None, None)),
    ("rename", spec(Some(0), None, None, Some(1), None)),
    ("renameat", spec(Some(1), Some(0), None, Some(3), Some(2))),
    ("renameat2", spec(Some(1), Some(0), None, Some(3), Some(2))),
    ("link", spec(Some(1), None, None, None, None)),
    ("linkat", spec(Some(3), Some(2), None, None, None)),
    ("symlink", spec(Some(1), None, None, None, None)),
    ("symlinkat", spec(Some(2), Some(1), None, None, None)),
    ("chmod", spec(Some(0), None, None, None, None)),
    ("fchmodat", spec(Some(1), Some(0), None, None, None)),
    ("fchmodat2", spec(Some(1), Some(0), None, None, None)),
    ("chown", spec(Some(0), None, None, None, None)),
    ("chown32", spec(Some(0), None, None, None, None)),
    ("lchown", spec(Some(0), None, None, None, None)),
    ("lchown32", spec(Some(0), None, None, None, None)),
    ("fchownat", spec(Some(1), Some(0), None, None, None)),
    ("truncate", spec(Some(0), None, None, None, None)),
    ("truncate64", spec(Some(0), None, None, None, None)),
    ("utime", spec(Some(0), None, None, None, None)),
    ("utimes", spec(Some(0), None, None, None, None)),
    ("futimesat", spec(Some(1), Some(0), None, None, None)),
    ("utimensat", spec(Some(1), Some(0), None, None, None)),
    ("setxattr", spec(Some(0), None, None, None, None)),
    ("lsetxattr", spec(Some(0), None, None, None, None)),
    ("removexattr", spec(Some(0), None, None, None, None)),
    ("lremovexattr", spec(Some(0), None, None, None, None)),
];

/// openat2's flags are the first field of the `struct open_how` its third argument points to.
const OPENAT2: PathSpec = PathSpec {
    path: Some(1),
    dirfd: Some(0),
    flags: Some(2),
    how: true,
    path2: None,
    dirfd2: None,
};

const fn spec(
    path: Option<u32>,
    dirfd: Option<u32>,
    flags: Option<u32>,
    path2: Option<u32>,
    dirfd2: Option<u32>,
) -> PathSpec {
    PathSpec {
        path,
        dirfd,
        flags,
        how: false,
        path2,
        dirfd2,
    }
}

/// `PATH_SPEC`: per (architecture table, number), the encoded spec of a path-writing syscall.
pub(super) fn path_table(native: Arch) -> [u16; ARG_SPEC_LEN] {
    let mut table = [0u16; ARG_SPEC_LEN];
    for t in [ARCH_NATIVE, ARCH_COMPAT] {
        let Some(arch) = table_arch(native, t) else {
            continue;
        };
        let entries = PATH_SYSCALLS.iter().copied().chain([("openat2", OPENAT2)]);
        for (name, spec) in entries {
            if let Some(nr) = profile_gen::naming::syscall_number(arch, name)
                && nr < MAX_SYSCALLS
            {
                table[counter(t, nr) as usize] = spec.encode();
            }
        }
    }
    table
}

/// The writes of every target, as drained so far.
#[derive(Debug, Default)]
pub(crate) struct Writes {
    by_slot: BTreeMap<u32, FileWrites>,
}

impl Writes {
    /// Places the event's paths and counts them for its target.
    pub(super) fn add(&mut self, native: Arch, e: &PathEvent) {
        let w = self.by_slot.entry(e.slot).or_default();
        let op = table_arch(native, e.arch)
            .and_then(|a| profile_gen::naming::syscall_name(a, e.nr))
            .unwrap_or_else(|| format!("syscall {}", e.nr));
        let comm = c_str(&e.comm);
        // The directory the kernel side walked for the first path (leaf first).
        let walked = (e.dir_state == DIR_COMPLETE).then(|| {
            let names: Vec<String> = e.dir[..(e.dir_depth as usize).min(e.dir.len())]
                .iter()
                .rev()
                .map(|n| c_str(n))
                .collect();
            format!("/{}", names.join("/"))
        });
        for (raw, dirfd) in [(&e.path[..], e.dirfd), (&e.path2[..], e.dirfd2)] {
            let path = c_str(raw);
            if path.is_empty() {
                // No path (utimensat on a descriptor), or it could not be read.
                continue;
            }
            let placed = match &walked {
                Some(dir) if !path.starts_with('/') && dirfd == e.dirfd => {
                    Some(normalize(&Path::new(dir).join(&path)))
                }
                _ => place(e.tgid, dirfd, &path),
            };
            match placed {
                Some(p) => w.add(p, &op, &comm),
                None => {
                    if w.unresolved.len() < MAX_UNRESOLVED && !w.unresolved.contains(&path) {
                        w.unresolved.push(path);
                    }
                }
            }
        }
    }

    /// The writes of `slot`, with `lost` writes the kernel could not pass on.
    pub(crate) fn take(&mut self, slot: u32, lost: u64) -> FileWrites {
        let mut w = self.by_slot.remove(&slot).unwrap_or_default();
        w.lost = lost;
        w
    }
}

fn c_str(bytes: &[u8]) -> String {
    let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..len]).into_owned()
}

/// `path` as process `tgid` sees it: absolute paths as they are, relative ones against its
/// working directory or `dirfd`, below its own root. `None` when the process is gone.
fn place(tgid: u32, dirfd: i32, path: &str) -> Option<String> {
    if path.starts_with('/') {
        return Some(normalize(Path::new(path)));
    }
    let proc = PathBuf::from(format!("/proc/{tgid}"));
    let base = if dirfd == AT_FDCWD {
        std::fs::read_link(proc.join("cwd")).ok()?
    } else {
        std::fs::read_link(proc.join("fd").join(dirfd.to_string())).ok()?
    };
    let root = std::fs::read_link(proc.join("root")).ok()?;
    let base = base
        .strip_prefix(&root)
        .map_or(base.clone(), |b| Path::new("/").join(b));
    Some(normalize(&base.join(path)))
}

/// `.` and `..` taken out lexically (a `..` at the root stays at the root).
fn normalize(path: &Path) -> String {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cinch_common::{path_spec_field, path_spec_how};

    #[test]
    fn the_table_places_openat_and_renameat2() {
        let table = path_table(Arch::X86_64);
        let openat = table[counter(ARCH_NATIVE, libc::SYS_openat as u32) as usize];
        assert_eq!(path_spec_field(openat, 0), Some(1));
        assert_eq!(path_spec_field(openat, 1), Some(0));
        assert_eq!(path_spec_field(openat, 2), Some(2));
        assert!(!path_spec_how(openat));
        let rename = table[counter(ARCH_NATIVE, libc::SYS_renameat2 as u32) as usize];
        assert_eq!(path_spec_field(rename, 3), Some(3));
        assert_eq!(path_spec_field(rename, 4), Some(2));
        let openat2 = table[counter(ARCH_NATIVE, libc::SYS_openat2 as u32) as usize];
        assert!(path_spec_how(openat2));
        // Reading is not writing.
        assert_eq!(
            table[counter(ARCH_NATIVE, libc::SYS_read as u32) as usize],
            0
        );
        // i386: open is 5 there.
        assert_ne!(table[counter(ARCH_COMPAT, 5) as usize], 0);
    }

    #[test]
    fn paths_are_normalized_and_relative_ones_placed() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), "/a/c");
        assert_eq!(normalize(Path::new("/../x")), "/x");
        assert_eq!(place(1, AT_FDCWD, "/tmp//x").as_deref(), Some("/tmp/x"));
        let me = std::process::id();
        let cwd = std::env::current_dir().expect("cwd");
        assert_eq!(
            place(me, AT_FDCWD, "note").expect("placed"),
            cwd.join("note").display().to_string()
        );
        // A process that is gone cannot be asked.
        assert_eq!(place(u32::MAX, AT_FDCWD, "note"), None);
    }
}
