//! Filesystem writes and reads: which syscalls write or read a path and where their arguments
//! are (`PATH_SPEC`, filled at load), and the [`PathEvent`]s the kernel side sends, placed in
//! the process's own view of the filesystem. A read is kept when it names a regular file, with
//! its size and its symbolic links resolved inside the process's root; a process with a root
//! of its own (a container) also has that root taken stock of, once per target.
//!
//! A relative path is resolved against the process's working directory (or the directory
//! descriptor it named) read from `/proc` when the event is drained, every tick: a process
//! gone by then leaves the path unresolved, and the recording says so. A path is given as the
//! process sees it: for a process under `chroot` or in a container, below its own root.

use std::collections::BTreeMap;
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Component, Path, PathBuf};

use cinch_common::{
    ARCH_COMPAT, ARCH_NATIVE, ARG_SPEC_LEN, AT_FDCWD, DIR_COMPLETE, MAX_SYSCALLS, OPEN_WRITE_FLAGS,
    PathEvent, PathSpec, counter,
};
use profile_gen::Arch;
use profile_gen::filesystem::{FileWrites, SCRATCH, canonical_scratch, keep_unresolved};
use profile_gen::image::FileReads;
use profile_gen::user::Ownership;

use super::loader::table_arch;

/// Syscalls that write or read a path, with where their arguments are
/// (include/linux/syscalls.h). For link and symlink only the new name is written; the opens
/// read when their flags carry no write intent, the execs always read.
const PATH_SYSCALLS: &[(&str, PathSpec)] = &[
    ("execve", EXEC),
    (
        "execveat",
        PathSpec {
            dirfd: Some(0),
            path: Some(1),
            ..EXEC
        },
    ),
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

const EXEC: PathSpec = PathSpec {
    path: Some(0),
    dirfd: None,
    flags: None,
    how: false,
    path2: None,
    dirfd2: None,
    exec: true,
};

/// openat2's flags are the first field of the `struct open_how` its third argument points to.
const OPENAT2: PathSpec = PathSpec {
    path: Some(1),
    dirfd: Some(0),
    flags: Some(2),
    how: true,
    path2: None,
    dirfd2: None,
    exec: false,
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
        exec: false,
    }
}

/// `PATH_SPEC`: per (architecture table, number), the encoded spec of a syscall that writes or
/// reads a path.
pub(super) fn path_table(native: Arch) -> [u32; ARG_SPEC_LEN] {
    let mut table = [0u32; ARG_SPEC_LEN];
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

/// The writes and reads of every target, as drained so far.
#[derive(Debug, Default)]
pub(crate) struct Files {
    writes: BTreeMap<u32, FileWrites>,
    reads: BTreeMap<u32, FileReads>,
    /// Each target's root, held open from its first read (a process gone before its reads
    /// are drained is placed in the root its target's processes share).
    roots: BTreeMap<u32, Root>,
    /// The last process of each target that wrote a path.
    writers: BTreeMap<u32, u32>,
    /// Targets whose root the tracer was not allowed to open: their reads stay unresolved.
    denied: std::collections::BTreeSet<u32>,
    /// When the scratch directories were last sampled.
    sampled: Option<std::time::Instant>,
}

impl Files {
    /// Places the event's paths and counts them for its target.
    pub(super) fn add(&mut self, native: Arch, e: &PathEvent) {
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
        let exec = op == "execve" || op == "execveat";
        let read = exec || (OPENS.contains(&op.as_str()) && e.flags & OPEN_WRITE_FLAGS == 0);
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
            if read {
                self.add_read(e.slot, e.tgid, placed.ok_or(path), exec, &comm);
                continue;
            }
            let w = self.writes.entry(e.slot).or_default();
            self.writers.insert(e.slot, e.tgid);
            match placed {
                Some(p) => {
                    let seen = w.paths.get(&p).is_some_and(|pw| pw.dir_owner.is_some());
                    let dir = (!seen)
                        .then(|| root_of(&self.roots, e.slot, e.tgid))
                        .flatten()
                        .and_then(|root| ownership(&root, profile_gen::filesystem::parent(&p)));
                    let w = self.writes.entry(e.slot).or_default();
                    w.add(p.clone(), &op, &comm);
                    if let Some(entry) = w.paths.get_mut(&p) {
                        entry.dir_owner = entry.dir_owner.or(dir);
                    }
                }
                None => keep_unresolved(&mut w.unresolved, &path),
            }
        }
    }

    /// Keeps a read of a regular file in process `tgid`'s root, with its size; a path that
    /// names no file there (an open that failed: a library searched for on a path list) is
    /// left out. Takes stock of the root the first time, when it is the process's own; then
    /// the files of what is mounted on it (volumes, secrets, `/proc`...) are marked as not the
    /// image's: the mounts are read at that time, which is before the workload runs for a
    /// container, and still known when its processes are gone. A read under a mount whose
    /// process is gone stays unresolved: the mount went with it, and what the root shows
    /// there (the engine's empty mount point) is not what it read.
    fn add_read(
        &mut self,
        slot: u32,
        tgid: u32,
        placed: Result<String, String>,
        exec: bool,
        comm: &str,
    ) {
        let r = self.reads.entry(slot).or_default();
        let unresolved =
            |r: &mut FileReads, path: String| keep_unresolved(&mut r.unresolved, &path);
        let placed = match placed {
            Ok(p) => p,
            Err(raw) => return unresolved(r, raw),
        };
        let mut root = PathBuf::from(format!("/proc/{tgid}/root"));
        let own = match self.roots.entry(slot) {
            std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::btree_map::Entry::Vacant(v) => {
                match Root::open(tgid, &root, r) {
                    Ok(own) => v.insert(own),
                    Err(e) => {
                        // Gone before the tracer could look, or not the tracer's to look at.
                        if e.kind() == std::io::ErrorKind::PermissionDenied {
                            self.denied.insert(slot);
                        }
                        return unresolved(r, placed);
                    }
                }
            }
        };
        if std::fs::metadata(&root).is_err() {
            // Gone: its root is still reachable, what its mount namespace mounted on it is not.
            if profile_gen::user::RUNTIME_FILES
                .iter()
                .any(|d| profile_gen::filesystem::under(&placed, d))
            {
                return;
            }
            if own.is_mounted(&placed) {
                return unresolved(r, placed);
            }
            root = PathBuf::from(format!("/proc/self/fd/{}", own.dir.as_raw_fd()));
        }
        let Some(path) = profile_gen::image::resolve_in_root(&root, &placed) else {
            return;
        };
        // A volume, a secret, /proc...: not the image.
        let mounted = own.is_mounted(&path);
        let inside = root.join(path.trim_start_matches('/'));
        if let Ok(meta) = std::fs::metadata(inside)
            && meta.is_file()
        {
            let owner = Ownership {
                uid: meta.uid(),
                gid: meta.gid(),
                mode: meta.mode() & 0o7777,
            };
            r.add(path.clone(), meta.len(), exec, comm, Some(owner));
            if mounted && let Some(read) = r.paths.get_mut(&path) {
                read.mounted = true;
            }
        }
    }

    /// Samples, at most every [`SAMPLE_EVERY`], the bytes the files each target wrote under
    /// its scratch directories hold, and keeps the most for each directory: what its tmpfs
    /// needs. Files created and removed between two samples are not seen.
    pub(super) fn sample_scratch(&mut self) {
        if self.sampled.is_some_and(|t| t.elapsed() < SAMPLE_EVERY) {
            return;
        }
        self.sampled = Some(std::time::Instant::now());
        for (slot, w) in &mut self.writes {
            let Some(root) = self
                .writers
                .get(slot)
                .and_then(|&tgid| root_of(&self.roots, *slot, tgid))
            else {
                continue;
            };
            let mut now: BTreeMap<&str, u64> = BTreeMap::new();
            let scratch = w.paths.keys().filter_map(|p| {
                let dir = SCRATCH
                    .iter()
                    .find(|s| profile_gen::filesystem::under(p, s))?;
                Some((canonical_scratch(dir), p))
            });
            for (dir, path) in scratch.take(MAX_SAMPLED) {
                let bytes = profile_gen::image::resolve_in_root(&root, path)
                    .and_then(|p| {
                        std::fs::symlink_metadata(root.join(p.trim_start_matches('/'))).ok()
                    })
                    .filter(std::fs::Metadata::is_file)
                    .map_or(0, |m| m.len());
                *now.entry(dir).or_default() += bytes;
            }
            for (dir, bytes) in now {
                let peak = w.scratch_bytes.entry(dir.to_owned()).or_default();
                *peak = (*peak).max(bytes);
            }
        }
    }

    /// The writes of `slot`, with `lost` writes the kernel could not pass on.
    pub(crate) fn take_writes(&mut self, slot: u32, lost: u64) -> FileWrites {
        self.sampled = None;
        self.sample_scratch();
        self.writers.remove(&slot);
        let mut w = self.writes.remove(&slot).unwrap_or_default();
        w.lost = lost;
        w
    }

    /// Whether the tracer was refused `slot`'s root.
    pub(crate) fn root_denied(&self, slot: u32) -> bool {
        self.denied.contains(&slot)
    }

    /// Drops everything kept for `slot` (its slot is being reused).
    pub(crate) fn forget(&mut self, slot: u32) {
        self.denied.remove(&slot);
        self.writes.remove(&slot);
        self.reads.remove(&slot);
        self.roots.remove(&slot);
        self.writers.remove(&slot);
    }

    /// The reads of `slot`, with `lost` reads the kernel could not pass on.
    pub(crate) fn take_reads(&mut self, slot: u32, lost: u64) -> FileReads {
        self.roots.remove(&slot);
        let mut r = self.reads.remove(&slot).unwrap_or_default();
        r.lost = lost;
        r
    }
}

/// Where process `tgid` of `slot` finds its files: its `/proc/PID/root` while it runs, else
/// its target's root held open.
fn root_of(roots: &BTreeMap<u32, Root>, slot: u32, tgid: u32) -> Option<PathBuf> {
    let live = PathBuf::from(format!("/proc/{tgid}/root"));
    if std::fs::metadata(&live).is_ok() {
        return Some(live);
    }
    roots
        .get(&slot)
        .map(|own| PathBuf::from(format!("/proc/self/fd/{}", own.dir.as_raw_fd())))
}

/// The owner and permission bits of `path` (absolute, in the view of a process whose root is
/// `root`), its links resolved inside that root.
fn ownership(root: &Path, path: &str) -> Option<Ownership> {
    let inside = profile_gen::image::resolve_in_root(root, path)?;
    let meta = std::fs::metadata(root.join(inside.trim_start_matches('/'))).ok()?;
    Some(Ownership {
        uid: meta.uid(),
        gid: meta.gid(),
        mode: meta.mode() & 0o7777,
    })
}

/// A target's root.
#[derive(Debug)]
struct Root {
    /// Held open: `/proc/self/fd/N` reaches it when the target's processes are gone (without
    /// what their mount namespace mounted on it).
    dir: std::fs::File,
    /// When the root is the target's own: where its mount namespace mounts something below
    /// it (`/proc/PID/mountinfo`, field 5).
    mounts: Option<Vec<String>>,
}

impl Root {
    /// Process `tgid`'s root (`root`: its `/proc/PID/root`); when it is its own, its mounts,
    /// and `reads.image` takes stock of it. An error when the process is gone, or when the
    /// tracer may not look (permission denied: no CAP_SYS_PTRACE over it).
    fn open(tgid: u32, root: &Path, reads: &mut FileReads) -> std::io::Result<Root> {
        let dir = std::fs::File::open(root)?;
        let own = dir.metadata()?;
        let host = std::fs::metadata("/")?;
        if (host.dev(), host.ino()) == (own.dev(), own.ino()) {
            return Ok(Root { dir, mounts: None });
        }
        match profile_gen::image::inventory(root) {
            Ok(inv) => reads.image = Some(inv),
            Err(e) => tracing::warn!(tgid, %e, "cannot take stock of the process's root"),
        }
        Ok(Root {
            dir,
            mounts: Some(mount_points(tgid)),
        })
    }

    /// Whether `path` is, or is below, something mounted on this root.
    fn is_mounted(&self, path: &str) -> bool {
        self.mounts.iter().flatten().any(|m| {
            path == m
                || path
                    .strip_prefix(m.as_str())
                    .is_some_and(|r| r.starts_with('/'))
        })
    }
}

/// The mount points below `/` of process `tgid`'s mount namespace, as it sees them.
fn mount_points(tgid: u32) -> Vec<String> {
    let Ok(info) = std::fs::read_to_string(format!("/proc/{tgid}/mountinfo")) else {
        return Vec::new();
    };
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| *p != "/")
        .map(unescape_octal)
        .collect()
}

/// mountinfo's `\040`-style escapes (space, tab, newline, backslash) taken out.
fn unescape_octal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest
            .get(i + 1..i + 4)
            .and_then(|o| u8::from_str_radix(o, 8).ok());
        match code {
            Some(c) => {
                out.push(char::from(c));
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// How often the scratch directories are sampled.
const SAMPLE_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// Written paths sampled per target and sample.
const MAX_SAMPLED: usize = 4096;

/// The syscalls that read their path unless their flags say they write.
const OPENS: &[&str] = &["open", "openat", "openat2"];

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
    fn mount_points_are_unescaped() {
        assert_eq!(unescape_octal(r"/srv/my\040data"), "/srv/my data");
        assert_eq!(unescape_octal(r"/a\134b"), r"/a\b");
        assert_eq!(unescape_octal(r"/odd\x"), r"/odd\x");
        // This process's own mounts: /proc is one wherever the tests run.
        let mine = mount_points(std::process::id());
        assert!(mine.iter().any(|m| m == "/proc"), "{mine:?}");
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
