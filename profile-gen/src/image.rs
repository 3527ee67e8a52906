//! What the workload read of its image: the files it opened to read and the programs it
//! executed, against what its root filesystem holds. Evidence for a smaller image: a
//! package manager, a shell or a compiler the workload never touched is attack surface it
//! does not need (a distroless or multi-stage image leaves them out).
//!
//! The kernel side sends each path a target opens without a write intent, or executes, once
//! per target, directory and path. The tracer places it in the process's own view of the
//! filesystem, resolves its symbolic links inside the process's root (so `/bin/sh` of a
//! merged-`/usr` image is `/usr/bin/sh`) and keeps the regular files with their sizes. When
//! the process runs with a root of its own (a container), the tracer also takes stock of that
//! root once: its regular files and bytes, staying on the root's filesystem (volumes, `/proc`
//! and the like are not the image), and the known parts it holds.
//!
//! Not seen: files mapped or executed by the kernel without a syscall of the workload naming
//! them (the dynamic loader of an executable, a script's interpreter), and files opened
//! before the recording began.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The reads of one recording.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileReads {
    /// Absolute path in the process's root, symbolic links resolved → what was read.
    pub paths: BTreeMap<String, PathRead>,
    /// Paths that could not be placed or resolved (their process was gone first), up to
    /// [`crate::filesystem::MAX_UNRESOLVED`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unresolved: Vec<String>,
    /// Reads the kernel side could not pass on (its ring was full).
    #[serde(default, skip_serializing_if = "crate::filesystem::is_zero")]
    pub lost: u64,
    /// What the target's own root holds, when it has one (a container).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Inventory>,
}

/// One file read or executed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathRead {
    pub bytes: u64,
    /// Executed (execve), not only read.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exec: bool,
    /// The processes that read it.
    pub comms: BTreeSet<String>,
    /// Its owner and permission bits when it was read (absent in recordings before them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<crate::user::Ownership>,
    /// Below something mounted on the target's own root (a volume, a secret, `/proc`): not
    /// its image's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mounted: bool,
}

impl FileReads {
    /// Adds one read of a regular file of `bytes`, owned as `owner` says.
    pub fn add(
        &mut self,
        path: String,
        bytes: u64,
        exec: bool,
        comm: &str,
        owner: Option<crate::user::Ownership>,
    ) {
        let r = self.paths.entry(path).or_default();
        r.bytes = r.bytes.max(bytes);
        r.exec |= exec;
        r.owner = r.owner.or(owner);
        if !comm.is_empty() && !r.comms.contains(comm) {
            r.comms.insert(comm.to_owned());
        }
    }

    /// Joins `other` into these reads (the larger inventory of the two, for one image).
    pub fn merge_in(&mut self, other: &FileReads) {
        for (path, r) in &other.paths {
            let mine = self.paths.entry(path.clone()).or_default();
            mine.bytes = mine.bytes.max(r.bytes);
            mine.exec |= r.exec;
            mine.owner = mine.owner.or(r.owner);
            mine.mounted |= r.mounted;
            mine.comms.extend(r.comms.iter().cloned());
        }
        for u in &other.unresolved {
            crate::filesystem::keep_unresolved(&mut self.unresolved, u);
        }
        self.lost += other.lost;
        if other.image.as_ref().map(|i| i.files) > self.image.as_ref().map(|i| i.files) {
            self.image = other.image.clone();
        }
    }
}

/// What a root filesystem holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// Regular files.
    pub files: u64,
    pub bytes: u64,
    /// The known parts it holds ([`PARTS`]), by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parts: BTreeMap<String, Size>,
    /// The walk stopped at [`MAX_FILES`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// Files and bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Size {
    pub files: u64,
    pub bytes: u64,
}

impl Size {
    fn add(&mut self, bytes: u64) {
        self.files += 1;
        self.bytes += bytes;
    }
}

/// Files an inventory counts at most.
pub const MAX_FILES: u64 = 1_000_000;

/// Parts of an image a service rarely needs at run time, by the paths that make them (a
/// pattern ending in `*` matches paths that start with it, so also what is below a directory
/// of such a name; any other matches the path and what is below it). Both the `/bin` and the `/usr/bin` forms are listed: an image without
/// merged `/usr` has the first.
pub const PARTS: &[(&str, &[&str])] = &[
    (
        "package manager",
        &[
            "/usr/bin/apt*",
            "/usr/bin/dpkg*",
            "/usr/lib/apt",
            "/usr/lib/dpkg",
            "/var/lib/dpkg",
            "/var/lib/apt",
            "/var/cache/apt",
            "/var/cache/debconf",
            "/usr/share/debconf",
            "/sbin/apk",
            "/lib/apk",
            "/usr/bin/rpm",
            "/usr/bin/dnf*",
            "/usr/bin/yum",
            "/var/lib/rpm",
            "/usr/bin/pip*",
        ],
    ),
    (
        "shell",
        &[
            "/bin/sh",
            "/bin/bash",
            "/bin/dash",
            "/bin/ash",
            "/usr/bin/sh",
            "/usr/bin/bash",
            "/usr/bin/dash",
            "/usr/bin/zsh",
        ],
    ),
    (
        "compiler and build tools",
        &[
            "/usr/bin/gcc*",
            "/usr/bin/g++*",
            "/usr/bin/cc",
            "/usr/bin/c++",
            "/usr/bin/clang*",
            "/usr/bin/x86_64-linux-gnu-*",
            "/usr/bin/aarch64-linux-gnu-*",
            "/usr/lib/gcc",
            "/usr/libexec/gcc",
            "/usr/bin/make",
            "/usr/bin/ld",
            "/usr/bin/as",
            "/usr/include",
        ],
    ),
    (
        "perl",
        &[
            "/usr/bin/perl*",
            "/usr/share/perl*",
            "/usr/lib/x86_64-linux-gnu/perl*",
            "/usr/lib/aarch64-linux-gnu/perl*",
        ],
    ),
    ("python", &["/usr/bin/python*", "/usr/lib/python*"]),
    (
        "documentation",
        &["/usr/share/doc", "/usr/share/man", "/usr/share/info"],
    ),
    (
        "locales",
        &["/usr/share/locale", "/usr/share/i18n", "/usr/lib/locale"],
    ),
];

/// The part of [`PARTS`] `path` belongs to.
pub fn part_of(path: &str) -> Option<&'static str> {
    PARTS
        .iter()
        .find(|(_, patterns)| patterns.iter().any(|p| matches(p, path)))
        .map(|(name, _)| *name)
}

fn matches(pattern: &str, path: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => {
            path == pattern
                || path
                    .strip_prefix(pattern)
                    .is_some_and(|rest| rest.starts_with('/'))
        }
    }
}

/// Takes stock of the root filesystem at `root` (a process's `/proc/PID/root`): its regular
/// files, without crossing into other filesystems mounted below it.
pub fn inventory(root: &Path) -> std::io::Result<Inventory> {
    let dev = std::fs::metadata(root)?.dev();
    let mut inv = Inventory::default();
    let mut stack = vec![PathBuf::from("/")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(join(root, &dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if meta.dev() != dev {
                continue;
            }
            let path = dir.join(entry.file_name());
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() {
                if inv.files >= MAX_FILES {
                    inv.truncated = true;
                    return Ok(inv);
                }
                inv.files += 1;
                inv.bytes += meta.len();
                if let Some(part) = path.to_str().and_then(part_of) {
                    inv.parts
                        .entry(part.to_owned())
                        .or_default()
                        .add(meta.len());
                }
            }
        }
    }
    Ok(inv)
}

/// `path` (absolute, in the view of a process whose root is `root`) below `root`.
fn join(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

/// Symbolic links followed while resolving one path.
const MAX_LINKS: usize = 40;

/// `path` with its symbolic links resolved the way the kernel resolves them for a process
/// whose root is `root`: an absolute link target starts again at `root`, `..` stops there.
/// `None` when a component does not exist or the links loop.
pub fn resolve_in_root(root: &Path, path: &str) -> Option<String> {
    let mut done = PathBuf::from("/");
    let mut todo: Vec<String> = components(path).into_iter().rev().collect();
    let mut links = 0;
    while let Some(name) = todo.pop() {
        match name.as_str() {
            ".." => {
                done.pop();
                continue;
            }
            "." => continue,
            _ => {}
        }
        let next = done.join(&name);
        let meta = std::fs::symlink_metadata(join(root, &next)).ok()?;
        if meta.file_type().is_symlink() {
            links += 1;
            if links > MAX_LINKS {
                return None;
            }
            let target = std::fs::read_link(join(root, &next)).ok()?;
            let target = target.to_str()?;
            if target.starts_with('/') {
                done = PathBuf::from("/");
            }
            todo.extend(components(target).into_iter().rev());
        } else {
            done = next;
        }
    }
    done.to_str().map(str::to_owned)
}

fn components(path: &str) -> Vec<String> {
    Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => n.to_str().map(str::to_owned),
            Component::ParentDir => Some("..".to_owned()),
            _ => None,
        })
        .collect()
}

/// How much of its image a workload used, as the settings file carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageUse {
    /// The image (or the recorded container's image, as the engine named it).
    pub image: String,
    /// Regular files of the image the workload read or executed, and their bytes.
    pub used: Size,
    /// What the image holds.
    pub total: Size,
    /// Known parts it never read nor executed a file of, with their size.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub untouched: BTreeMap<String, Size>,
    /// Known parts it did use, with the programs or files that used them (up to a few).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub used_parts: BTreeMap<String, Vec<String>>,
    /// What it means, in one sentence.
    pub why: String,
}

/// Paths of a used part named as evidence.
const EVIDENCE_PATHS: usize = 3;

/// The image use of one image's reads; `None` without an inventory (not a container).
pub fn analyze(image: &str, reads: &FileReads) -> Option<ImageUse> {
    let inv = reads.image.as_ref()?;
    let mut used = Size::default();
    let mut used_parts: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (path, r) in reads.paths.iter().filter(|(_, r)| !r.mounted) {
        used.add(r.bytes);
        if let Some(part) = part_of(path) {
            let list = used_parts.entry(part.to_owned()).or_default();
            if list.len() < EVIDENCE_PATHS {
                list.push(path.clone());
            }
        }
    }
    let untouched: BTreeMap<String, Size> = inv
        .parts
        .iter()
        .filter(|(part, _)| !used_parts.contains_key(*part))
        .map(|(part, size)| (part.clone(), *size))
        .collect();
    let total = Size {
        files: inv.files,
        bytes: inv.bytes,
    };
    let mut why = format!(
        "it read or executed {} of the image's {} files ({} of {})",
        used.files,
        total.files,
        mib(used.bytes),
        mib(total.bytes)
    );
    if !untouched.is_empty() {
        let spare: u64 = untouched.values().map(|s| s.bytes).sum();
        why.push_str(&format!(
            "; it never touched its {} ({}): a smaller image (multi-stage, distroless) can leave them out",
            untouched.keys().cloned().collect::<Vec<_>>().join(", "),
            mib(spare)
        ));
    }
    if reads.lost > 0 || !reads.unresolved.is_empty() || inv.truncated {
        why.push_str("; some reads were not seen, so it may have used more");
    }
    Some(ImageUse {
        image: image.to_owned(),
        used,
        total,
        untouched,
        used_parts,
        why,
    })
}

/// `12.3 MiB`.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_match_by_prefix_and_name() {
        assert_eq!(part_of("/usr/bin/apt-get"), Some("package manager"));
        assert_eq!(part_of("/var/lib/dpkg/status"), Some("package manager"));
        assert_eq!(part_of("/usr/bin/dash"), Some("shell"));
        assert_eq!(part_of("/usr/bin/dashboard"), None);
        assert_eq!(
            part_of("/usr/share/doc/nginx/copyright"),
            Some("documentation")
        );
        assert_eq!(part_of("/usr/sbin/nginx"), None);
    }

    /// A root with a merged `/usr`, an absolute and a relative link, a loop and a mount-free
    /// walk: links resolve inside the root, never on the host.
    #[test]
    fn links_resolve_inside_the_root_and_the_inventory_counts_files() {
        let root = tempfile::tempdir().expect("tempdir");
        let r = root.path();
        std::fs::create_dir_all(r.join("usr/bin")).expect("mkdir");
        std::fs::create_dir_all(r.join("usr/share/doc/x")).expect("mkdir");
        std::fs::write(r.join("usr/bin/dash"), vec![0u8; 1000]).expect("write");
        std::fs::write(r.join("usr/share/doc/x/README"), vec![0u8; 24]).expect("write");
        std::os::unix::fs::symlink("usr/bin", r.join("bin")).expect("link");
        std::os::unix::fs::symlink("dash", r.join("usr/bin/sh")).expect("link");
        // Absolute: must land in the root, not on the host's /etc.
        std::os::unix::fs::symlink("/usr/bin/dash", r.join("shell")).expect("link");
        std::os::unix::fs::symlink("loop", r.join("loop")).expect("link");
        assert_eq!(
            resolve_in_root(r, "/bin/sh").as_deref(),
            Some("/usr/bin/dash")
        );
        assert_eq!(
            resolve_in_root(r, "/shell").as_deref(),
            Some("/usr/bin/dash")
        );
        assert_eq!(
            resolve_in_root(r, "/usr/../../bin/./sh").as_deref(),
            Some("/usr/bin/dash")
        );
        assert_eq!(resolve_in_root(r, "/loop"), None);
        assert_eq!(resolve_in_root(r, "/etc/passwd"), None);

        let inv = inventory(r).expect("inventory");
        assert_eq!((inv.files, inv.bytes), (2, 1024));
        assert_eq!(
            inv.parts["shell"],
            Size {
                files: 1,
                bytes: 1000
            }
        );
        assert_eq!(
            inv.parts["documentation"],
            Size {
                files: 1,
                bytes: 24
            }
        );

        let mut reads = FileReads {
            image: Some(inv),
            ..FileReads::default()
        };
        reads.add("/usr/bin/dash".to_owned(), 1000, true, "sh", None);
        let u = analyze("img", &reads).expect("an image");
        assert_eq!(
            u.used,
            Size {
                files: 1,
                bytes: 1000
            }
        );
        assert_eq!(u.used_parts["shell"], ["/usr/bin/dash"]);
        assert_eq!(u.untouched.keys().collect::<Vec<_>>(), ["documentation"]);
        assert!(
            u.why.contains("never touched its documentation"),
            "{}",
            u.why
        );
        // Not a container: no image.
        assert_eq!(analyze("img", &FileReads::default()), None);
    }
}
