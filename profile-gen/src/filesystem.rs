//! The filesystem setting, from the paths the workload wrote.
//!
//! The kernel side sees every path-writing syscall of a target (an open with a write intent,
//! creat, mkdir, mknod, unlink, rmdir, rename, link, symlink, chmod, chown, truncate, utimes,
//! setxattr, removexattr) and the tracer places each path in the process's own view of the
//! filesystem (a container's paths are the container's). A workload that wrote nothing outside
//! the places its runtime mounts writable (`/dev`, `/proc`, `/etc/hosts`...) and its own
//! volumes runs with a read-only root; what it wrote elsewhere gets a tmpfs (scratch: `/tmp`,
//! `/var/tmp`, `/run`) or a volume (any other directory: an anonymous volume starts as a copy
//! of the image's directory, so what the image put there is still there).
//!
//! Writes are seen when they are attempted: a write that failed (a file that could not be
//! created) still keeps its directory writable. Writes through a descriptor opened before the
//! recording began are not paths and are not seen (the open that made it writable is).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The writes of one recording, as `cinch record` saw them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileWrites {
    /// Absolute path (in the process's view) → what was done to it.
    pub paths: BTreeMap<String, PathWrite>,
    /// Relative paths that could not be placed (their process was gone before the tracer
    /// could read its working directory), up to [`MAX_UNRESOLVED`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unresolved: Vec<String>,
    /// Writes the kernel side could not pass on (its ring was full).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lost: u64,
    /// Per scratch directory ([`SCRATCH`], `/var/run` as `/run`): the most bytes the files
    /// written under it held at once, as the tracer sampled them while the target ran.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scratch_bytes: BTreeMap<String, u64>,
}

pub(crate) fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Unresolved relative paths kept in a recording.
pub const MAX_UNRESOLVED: usize = 16;

/// Keeps `path` among `unresolved` paths, once, up to [`MAX_UNRESOLVED`].
pub fn keep_unresolved(unresolved: &mut Vec<String>, path: &str) {
    if unresolved.len() < MAX_UNRESOLVED && !unresolved.iter().any(|u| u == path) {
        unresolved.push(path.to_owned());
    }
}

/// What was done to one path.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathWrite {
    /// The syscalls (`openat`, `mkdir`, `unlink`...).
    pub ops: BTreeSet<String>,
    pub count: u64,
    /// The processes that wrote it.
    pub comms: BTreeSet<String>,
    /// The owner and permission bits of its directory when the write was seen (absent in
    /// recordings before them, or when it could not be looked at).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir_owner: Option<crate::user::Ownership>,
}

impl FileWrites {
    /// Adds one write.
    pub fn add(&mut self, path: String, op: &str, comm: &str) {
        let w = self.paths.entry(path).or_default();
        w.count += 1;
        if !w.ops.contains(op) {
            w.ops.insert(op.to_owned());
        }
        if !comm.is_empty() && !w.comms.contains(comm) {
            w.comms.insert(comm.to_owned());
        }
    }

    /// Joins `other` into these writes.
    pub fn merge_in(&mut self, other: &FileWrites) {
        for (path, w) in &other.paths {
            let mine = self.paths.entry(path.clone()).or_default();
            mine.count += w.count;
            mine.ops.extend(w.ops.iter().cloned());
            mine.comms.extend(w.comms.iter().cloned());
            mine.dir_owner = mine.dir_owner.or(w.dir_owner);
        }
        for u in &other.unresolved {
            keep_unresolved(&mut self.unresolved, u);
        }
        self.lost += other.lost;
        for (dir, bytes) in &other.scratch_bytes {
            let mine = self.scratch_bytes.entry(dir.clone()).or_default();
            *mine = (*mine).max(*bytes);
        }
    }
}

/// Places a container runtime mounts writable whatever the root: writes there need nothing.
/// Docker and runc: `/dev` (tmpfs), `/dev/shm`, `/dev/mqueue`, `/proc`, `/sys`, and the bind
/// mounts of `/etc/hosts`, `/etc/hostname` and `/etc/resolv.conf`; Kubernetes adds the
/// termination log at `/dev/termination-log`.
pub const RUNTIME_WRITABLE: &[&str] = &[
    "/dev",
    "/proc",
    "/sys",
    "/etc/hosts",
    "/etc/hostname",
    "/etc/resolv.conf",
];

/// Directories whose contents are scratch by convention (FHS): a tmpfs, not a volume.
pub const SCRATCH: &[&str] = &["/tmp", "/var/tmp", "/run", "/var/run"];

/// How a written directory is kept writable under a read-only root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MountKind {
    /// A tmpfs: starts empty, in memory, gone with the container.
    Tmpfs,
    /// A volume: an anonymous volume starts as a copy of the image's directory.
    Volume,
}

/// One place to mount writable.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WritableMount {
    pub path: String,
    pub kind: MountKind,
    /// Written paths under it, up to a few, and how many in all.
    pub why: String,
    /// A tmpfs's size limit in bytes (whole MiB): twice the most its files held at once and
    /// [`TMPFS_MARGIN`] more; absent when no recording sampled it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// Bytes a tmpfs gets beyond twice what its files held at once.
pub const TMPFS_MARGIN: u64 = 16 << 20;

/// The size of a tmpfs whose files held at most `peak` bytes at once, rounded up to a MiB.
pub fn tmpfs_size(peak: u64) -> u64 {
    (peak.saturating_mul(2).saturating_add(TMPFS_MARGIN)).div_ceil(1 << 20) << 20
}

impl WritableMount {
    /// `tmpfs /tmp`, `volume /var/lib/redis`.
    pub fn label(&self) -> String {
        let kind = match self.kind {
            MountKind::Tmpfs => "tmpfs",
            MountKind::Volume => "volume",
        };
        format!("{kind} {}", self.path)
    }
}

/// The filesystem setting, with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilesystemSetting {
    /// Run with a read-only root filesystem.
    pub read_only: bool,
    /// Where to mount writable, when `read_only`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<WritableMount>,
    /// Why.
    pub why: String,
}

impl FilesystemSetting {
    /// `read-only root, tmpfs /tmp, volume /var/lib/redis`, or `writable root`.
    pub fn label(&self) -> String {
        if !self.read_only {
            return "writable root".to_owned();
        }
        let mut parts = vec!["read-only root".to_owned()];
        parts.extend(self.mounts.iter().map(WritableMount::label));
        parts.join(", ")
    }

    /// The mounts of `kind`.
    pub fn mounts_of(&self, kind: MountKind) -> impl Iterator<Item = &WritableMount> {
        self.mounts.iter().filter(move |m| m.kind == kind)
    }

    /// Whether `path` may be written under this setting: always without a read-only root; with
    /// it, under a suggested mount, a runtime-writable place or one of `volumes`.
    pub fn allows(&self, path: &str, volumes: &BTreeSet<String>) -> bool {
        !self.read_only
            || under_any(path, RUNTIME_WRITABLE.iter().copied())
            || under_any(path, volumes.iter().map(String::as_str))
            || under_any(path, self.mounts.iter().map(|m| m.path.as_str()))
    }
}

/// Whether `path` is `dir` or below it.
pub fn under(path: &str, dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    dir.is_empty()
        || path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

fn under_any(path: &str, dirs: impl IntoIterator<Item = impl AsRef<str>>) -> bool {
    let mut dirs = dirs.into_iter();
    dirs.any(|d| under(path, d.as_ref()))
}

/// The directory a written path needs writable: the path's parent (creating, removing or
/// renaming an entry writes its directory; writing a file needs it on a writable mount too).
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// `/var/run` is a symlink to `/run` in every image that has both.
pub fn canonical_scratch(dir: &str) -> &str {
    if dir == "/var/run" { "/run" } else { dir }
}

/// The setting the recordings support. `writes` is `None` when a recording could not say what
/// it wrote (recorded before writes were, or writes were lost); `volumes` are the writable
/// mounts the recorded containers already had.
pub fn analyze(
    writes: Option<&FileWrites>,
    unknown: &BTreeSet<PathBuf>,
    volumes: &BTreeSet<String>,
) -> FilesystemSetting {
    let keep = |why: String| FilesystemSetting {
        read_only: false,
        mounts: Vec::new(),
        why,
    };
    if !unknown.is_empty() {
        return keep(format!(
            "{} cannot say what it wrote (recorded before cinch saw writes): the root stays writable",
            crate::observed::recordings(unknown.len())
        ));
    }
    let Some(writes) = writes else {
        return keep("no recording says what it wrote: the root stays writable".to_owned());
    };
    if writes.lost > 0 {
        return keep(format!(
            "{} writes were lost (the kernel's ring was full): the root stays writable",
            writes.lost
        ));
    }
    if let Some(first) = writes.unresolved.first() {
        return keep(format!(
            "{} relative paths could not be placed (e.g. {first}: its process was gone before cinch read its working directory): the root stays writable",
            writes.unresolved.len()
        ));
    }
    // Directory to mount → the written paths it covers.
    let mut needed: BTreeMap<(String, MountKind), Vec<&str>> = BTreeMap::new();
    for path in writes.paths.keys() {
        if under_any(path, RUNTIME_WRITABLE.iter().copied())
            || under_any(path, volumes.iter().map(String::as_str))
        {
            continue;
        }
        let (dir, kind) = match SCRATCH.iter().find(|s| under(path, s)) {
            Some(s) => (canonical_scratch(s).to_owned(), MountKind::Tmpfs),
            None => (parent(path).to_owned(), MountKind::Volume),
        };
        needed.entry((dir, kind)).or_default().push(path);
    }
    // A mount inside another one is already covered by it.
    let dirs: Vec<String> = needed.keys().map(|(d, _)| d.clone()).collect();
    needed.retain(|(d, _), _| !dirs.iter().any(|o| o != d && under(d, o)));
    if needed.keys().any(|(d, _)| d == "/") {
        let paths: Vec<&str> = needed.values().flatten().copied().take(3).collect();
        return keep(format!(
            "it wrote in the root directory itself ({}): the root stays writable",
            paths.join(", ")
        ));
    }
    let mounts: Vec<WritableMount> = needed
        .into_iter()
        .map(|((path, kind), written)| {
            let peak = writes.scratch_bytes.get(&path).copied();
            let size = peak.filter(|_| kind == MountKind::Tmpfs).map(tmpfs_size);
            let mut why = written_list(&written);
            if let (Some(peak), Some(size)) = (peak, size) {
                why.push_str(&format!(
                    "; its files held at most {peak} bytes at once: size {} MiB (twice that and 16 MiB more)",
                    size >> 20
                ));
            }
            WritableMount {
                why,
                path,
                kind,
                size,
            }
        })
        .collect();
    let why = if writes.paths.is_empty() {
        "it wrote no file".to_owned()
    } else if mounts.is_empty() {
        "it wrote only where its runtime or its volumes make it writable".to_owned()
    } else {
        let list: Vec<String> = mounts.iter().map(WritableMount::label).collect();
        format!("it wrote only under {}", list.join(", "))
    };
    FilesystemSetting {
        read_only: true,
        mounts,
        why,
    }
}

fn written_list(paths: &[&str]) -> String {
    const SHOWN: usize = 3;
    let mut s = paths
        .iter()
        .take(SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if paths.len() > SHOWN {
        s.push_str(&format!(" and {} more", paths.len() - SHOWN));
    }
    format!("wrote {s}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writes(paths: &[&str]) -> FileWrites {
        let mut w = FileWrites::default();
        for p in paths {
            w.add((*p).to_owned(), "openat", "sh");
        }
        w
    }

    fn none() -> BTreeSet<PathBuf> {
        BTreeSet::new()
    }

    #[test]
    fn scratch_gets_a_tmpfs_and_data_a_volume() {
        let w = writes(&[
            "/tmp/note",
            "/tmp/a/b",
            "/var/run/nginx.pid",
            "/var/lib/redis/dump.rdb",
            "/var/lib/redis/temp-1.rdb",
            "/dev/null",
            "/etc/hosts",
        ]);
        let s = analyze(Some(&w), &none(), &BTreeSet::new());
        assert!(s.read_only, "{s:?}");
        let got: Vec<(&str, MountKind)> =
            s.mounts.iter().map(|m| (m.path.as_str(), m.kind)).collect();
        assert_eq!(
            got,
            [
                ("/run", MountKind::Tmpfs),
                ("/tmp", MountKind::Tmpfs),
                ("/var/lib/redis", MountKind::Volume),
            ]
        );
        assert_eq!(
            s.mounts[2].why,
            "wrote /var/lib/redis/dump.rdb, /var/lib/redis/temp-1.rdb"
        );
        assert!(s.allows("/tmp/x", &BTreeSet::new()));
        assert!(!s.allows("/etc/passwd", &BTreeSet::new()));
    }

    #[test]
    fn writes_into_a_volume_or_nothing_need_no_mount() {
        let volumes: BTreeSet<String> = ["/data".to_owned()].into();
        let s = analyze(Some(&writes(&["/data/x", "/dev/null"])), &none(), &volumes);
        assert!(s.read_only && s.mounts.is_empty(), "{s:?}");
        assert_eq!(
            s.why,
            "it wrote only where its runtime or its volumes make it writable"
        );
        let s = analyze(Some(&FileWrites::default()), &none(), &BTreeSet::new());
        assert_eq!(s.why, "it wrote no file");
    }

    #[test]
    fn a_nested_directory_is_covered_by_its_parent_mount() {
        let s = analyze(
            Some(&writes(&["/srv/app/x", "/srv/app/cache/y"])),
            &none(),
            &BTreeSet::new(),
        );
        let got: Vec<&str> = s.mounts.iter().map(|m| m.path.as_str()).collect();
        assert_eq!(got, ["/srv/app"]);
    }

    #[test]
    fn what_cannot_be_placed_keeps_the_root_writable() {
        let mut w = writes(&["/tmp/x"]);
        w.unresolved.push("note".to_owned());
        assert!(!analyze(Some(&w), &none(), &BTreeSet::new()).read_only);
        let mut w = writes(&["/tmp/x"]);
        w.lost = 2;
        assert!(!analyze(Some(&w), &none(), &BTreeSet::new()).read_only);
        let old: BTreeSet<PathBuf> = [PathBuf::from("old.json")].into();
        let s = analyze(Some(&writes(&["/tmp/x"])), &old, &BTreeSet::new());
        assert!(
            !s.read_only && s.why.starts_with("1 recording cannot say"),
            "{s:?}"
        );
        let s = analyze(Some(&writes(&["/core"])), &none(), &BTreeSet::new());
        assert!(!s.read_only && s.why.contains("root directory"), "{s:?}");
    }

    /// A tmpfs gets twice the most its files held at once and 16 MiB, in whole MiB; a volume
    /// or a tmpfs nobody sampled gets no size.
    #[test]
    fn a_tmpfs_is_sized_from_the_bytes_seen() {
        assert_eq!(tmpfs_size(0), 16 << 20);
        assert_eq!(tmpfs_size(3 << 20), 22 << 20);
        assert_eq!(tmpfs_size(1), 17 << 20);
        let mut w = writes(&["/tmp/a", "/var/run/app.pid", "/srv/data/x"]);
        w.scratch_bytes.insert("/tmp".to_owned(), 3 << 20);
        let s = analyze(Some(&w), &BTreeSet::new(), &BTreeSet::new());
        let size = |p: &str| s.mounts.iter().find(|m| m.path == p).expect(p).size;
        assert_eq!(size("/tmp"), Some(22 << 20));
        assert_eq!(size("/run"), None);
        assert_eq!(size("/srv/data"), None);
        let tmp = s.mounts.iter().find(|m| m.path == "/tmp").expect("/tmp");
        assert!(
            tmp.why
                .contains("at most 3145728 bytes at once: size 22 MiB"),
            "{}",
            tmp.why
        );
    }

    #[test]
    fn under_is_by_component() {
        assert!(under("/tmp", "/tmp"));
        assert!(under("/tmp/x", "/tmp/"));
        assert!(!under("/tmpx", "/tmp"));
        assert!(under("/anything", "/"));
    }
}
