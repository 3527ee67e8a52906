//! The user setting, from the ids the workload's processes ran with.
//!
//! The kernel side records each process's ids (`real_cred`: uid, gid, euid, egid) when it is
//! registered, after every exec and after every syscall that sets ids, with the program's name.
//! A workload whose processes all ran as one user other than root runs as that user (`--user`,
//! `runAsNonRoot` and `runAsUser`). When a root process handed work to processes of another
//! user (nginx's master and its workers), root is kept and the settings say so.
//!
//! A workload that ran only as root may not have needed it. Root's power is its capabilities
//! (which the capability analysis lists) and its ownership of the image's files: a root-owned
//! file opened by root asks for no capability, so the tracer keeps the owner and permission
//! bits of every file read and of the directory of every path written. Root was not needed
//! when the workload kept no capability, bound no port below 1024, read and executed only files
//! anyone may, and wrote only where anyone may (a tmpfs, which starts writable by all, or a
//! directory writable by all): it then runs as `nobody` (65534:65534). Anything else keeps
//! root, naming what needed it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One set of ids a recording's processes ran with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub egid: u32,
    /// The programs that ran with them.
    pub comms: BTreeSet<String>,
    /// How often they were recorded (at registration, exec, or an id change).
    pub count: u64,
}

impl Credential {
    fn is_root(&self) -> bool {
        self.uid == 0 || self.euid == 0
    }
}

/// A file's owner and permission bits (`st_uid`, `st_gid`, `st_mode & 0o7777`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ownership {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

impl Ownership {
    /// Whether a user that is neither its owner nor in its group may do `what` (the "other"
    /// bits: 4 read, 2 write, 1 execute or search).
    pub fn allows_others(&self, what: u32) -> bool {
        self.mode & what == what
    }
}

/// The user to run as, with the evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSetting {
    /// `UID:GID` to run as; absent when the workload keeps the image's user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Why.
    pub why: String,
}

impl UserSetting {
    /// `UID:GID`, or `the image's user`.
    pub fn label(&self) -> String {
        self.user
            .clone()
            .unwrap_or_else(|| "the image's user".to_owned())
    }

    /// (uid, gid) of `user`.
    pub fn ids(&self) -> Option<(u32, u32)> {
        let (u, g) = self.user.as_deref()?.split_once(':')?;
        Some((u.parse().ok()?, g.parse().ok()?))
    }
}

/// What says whether a workload that ran as root needed to.
#[derive(Debug, Clone, Copy)]
pub struct RootEvidence<'a> {
    /// The capabilities the settings add.
    pub cap_add: &'a BTreeSet<crate::capability::Capability>,
    /// Every recording's reads; `None` when one cannot say.
    pub reads: Option<&'a crate::image::FileReads>,
    /// Every recording's writes; `None` when one cannot say.
    pub writes: Option<&'a crate::filesystem::FileWrites>,
    /// Where the settings mount writable (a tmpfs starts writable by all).
    pub filesystem: &'a crate::filesystem::FilesystemSetting,
    /// Ports below 1024 it bound.
    pub low_ports: &'a BTreeSet<u16>,
}

/// The user a workload that did not need root runs as: `nobody` and `nogroup` on Debian and
/// Alpine, and the overflow ids of the kernel.
pub const NOBODY: &str = "65534:65534";

/// Runtime filesystems whose files belong to the process or the runtime, not the image.
pub const RUNTIME_FILES: &[&str] = &["/proc", "/sys", "/dev"];

/// Paths named as evidence, at most.
const SHOWN: usize = 3;

/// Why root was needed, or `None` when nothing the recordings saw needed it.
fn root_needed(e: &RootEvidence<'_>) -> Option<String> {
    use crate::filesystem::{MountKind, RUNTIME_WRITABLE, under};
    if !e.cap_add.is_empty() {
        let caps: Vec<String> = e
            .cap_add
            .iter()
            .map(|c| c.docker_name().to_owned())
            .collect();
        return Some(format!(
            "it needs {}, which a process of another user does not keep",
            caps.join(", ")
        ));
    }
    if let Some(port) = e.low_ports.first() {
        return Some(format!(
            "it bound port {port}, below 1024, which Kubernetes lets only root (or NET_BIND_SERVICE) do"
        ));
    }
    let Some(reads) = e.reads else {
        return Some("a recording cannot say which files it read".to_owned());
    };
    let Some(writes) = e.writes else {
        return Some("a recording cannot say where it wrote".to_owned());
    };
    if reads.lost > 0 || !reads.unresolved.is_empty() {
        return Some("some of the files it read are not known".to_owned());
    }
    if writes.lost > 0 || !writes.unresolved.is_empty() {
        return Some("some of the paths it wrote are not known".to_owned());
    }
    let mut closed: Vec<String> = Vec::new();
    for (path, r) in &reads.paths {
        if RUNTIME_FILES.iter().any(|d| under(path, d)) {
            continue;
        }
        let need = if r.exec { 0o5 } else { 0o4 };
        match r.owner {
            Some(o) if o.allows_others(need) => {}
            Some(o) => closed.push(format!("{path} ({:o})", o.mode)),
            None => return Some(format!("the owner of {path} was not recorded")),
        }
    }
    if !closed.is_empty() {
        let n = closed.len();
        closed.truncate(SHOWN);
        return Some(format!(
            "it read files only their owner or group may ({}{})",
            closed.join(", "),
            if n > SHOWN {
                format!(" and {} more", n - SHOWN)
            } else {
                String::new()
            }
        ));
    }
    let tmpfs: Vec<&str> = e
        .filesystem
        .mounts_of(MountKind::Tmpfs)
        .map(|m| m.path.as_str())
        .filter(|_| e.filesystem.read_only)
        .collect();
    // A directory the workload made is its own: what counts is the one it was made in.
    let made = |dir: &str| {
        writes
            .paths
            .get(dir)
            .is_some_and(|w| w.ops.iter().any(|op| op.starts_with("mkdir")))
    };
    for path in writes.paths.keys() {
        if RUNTIME_WRITABLE.iter().any(|d| under(path, d)) {
            continue;
        }
        let mut top = path.as_str();
        while made(crate::filesystem::parent(top)) {
            top = crate::filesystem::parent(top);
        }
        // A tmpfs starts empty and writable by all: a path made right in it needs no owner.
        if tmpfs.contains(&crate::filesystem::parent(top)) {
            continue;
        }
        let owner = writes.paths.get(top).and_then(|t| t.dir_owner);
        let path = top;
        match owner {
            Some(o) if o.allows_others(0o3) => {}
            Some(o) => {
                return Some(format!(
                    "it wrote {path}, in a directory only its owner (uid {}) or group may write ({:o})",
                    o.uid, o.mode
                ));
            }
            None => return Some(format!("the owner of {path}'s directory was not recorded")),
        }
    }
    None
}

/// The setting the recordings support. `creds` is every recording's ids joined; `unknown` the
/// recordings that cannot say; `root` what says whether root was needed.
pub fn analyze(
    creds: &[Credential],
    unknown: &BTreeSet<PathBuf>,
    root_evidence: &RootEvidence<'_>,
) -> UserSetting {
    let keep = |why: String| UserSetting { user: None, why };
    if !unknown.is_empty() {
        return keep(format!(
            "{} cannot say which users its processes ran as (recorded before cinch saw them): the image's user is kept",
            crate::observed::recordings(unknown.len())
        ));
    }
    if creds.is_empty() {
        return keep("no process's ids were recorded: the image's user is kept".to_owned());
    }
    let mut by_ids: BTreeMap<(u32, u32), BTreeSet<String>> = BTreeMap::new();
    for c in creds {
        by_ids
            .entry((c.euid, c.egid))
            .or_default()
            .extend(c.comms.iter().cloned());
    }
    let describe = |ids: &(u32, u32), comms: &BTreeSet<String>| {
        format!(
            "{} ran as uid {} gid {}",
            comms.iter().cloned().collect::<Vec<_>>().join(", "),
            ids.0,
            ids.1
        )
    };
    let root: Vec<&Credential> = creds.iter().filter(|c| c.is_root()).collect();
    if !root.is_empty() {
        let root_comms: BTreeSet<String> =
            root.iter().flat_map(|c| c.comms.iter().cloned()).collect();
        let others: Vec<String> = by_ids
            .iter()
            .filter(|(ids, _)| ids.0 != 0)
            .map(|(ids, comms)| describe(ids, comms))
            .collect();
        let comms = root_comms.into_iter().collect::<Vec<_>>().join(", ");
        if !others.is_empty() {
            return keep(format!(
                "{comms} ran as root: the image's user is kept; it handed work to other users ({}), which root needs to do",
                others.join("; ")
            ));
        }
        if let Some(c) = root.iter().find(|c| c.uid != 0) {
            return keep(format!(
                "{} gained root by a set-user-ID exec (uid {}, euid 0): the image's user is kept",
                c.comms.iter().cloned().collect::<Vec<_>>().join(", "),
                c.uid
            ));
        }
        return match root_needed(root_evidence) {
            Some(need) => keep(format!(
                "{comms} ran as root: the image's user is kept, since {need}"
            )),
            None => UserSetting {
                user: Some(NOBODY.to_owned()),
                why: format!(
                    "{comms} ran as root but did not need to: it kept no capability, bound no port below 1024, read only files anyone may, and wrote only where anyone may: run as nobody"
                ),
            },
        };
    }
    if by_ids.len() > 1 {
        let all: Vec<String> = by_ids
            .iter()
            .map(|(ids, comms)| describe(ids, comms))
            .collect();
        return keep(format!(
            "its processes ran as several users ({}): the image's user is kept",
            all.join("; ")
        ));
    }
    let (ids, comms) = by_ids.iter().next().expect("one");
    UserSetting {
        user: Some(format!("{}:{}", ids.0, ids.1)),
        why: format!("every process ({}) ran as this user, none as root", {
            comms.iter().cloned().collect::<Vec<_>>().join(", ")
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::capability::Capability;
    use crate::filesystem::{FileWrites, FilesystemSetting, MountKind, WritableMount};
    use crate::image::FileReads;

    /// The files and places of a workload that needs no root: busybox executed and
    /// /etc/passwd read (both anyone's), /tmp written under a tmpfs.
    struct Case {
        cap_add: BTreeSet<Capability>,
        reads: FileReads,
        writes: FileWrites,
        filesystem: FilesystemSetting,
        low_ports: BTreeSet<u16>,
    }

    /// Owned by root with `mode`.
    fn root_owned(mode: u32) -> Option<Ownership> {
        Some(Ownership {
            uid: 0,
            gid: 0,
            mode,
        })
    }

    impl Case {
        /// Adds a write of `path` (by `op`), its directory owned by root with `dir_mode`.
        fn write(&mut self, path: &str, op: &str, dir_mode: u32) {
            self.writes.add(path.to_owned(), op, "app");
            if let Some(w) = self.writes.paths.get_mut(path) {
                w.dir_owner = root_owned(dir_mode);
            }
        }

        fn new() -> Case {
            let mut reads = FileReads::default();
            reads.add("/bin/busybox".to_owned(), 9, true, "sh", root_owned(0o755));
            reads.add("/etc/passwd".to_owned(), 9, false, "sh", root_owned(0o644));
            reads.add(
                "/proc/self/status".to_owned(),
                0,
                false,
                "sh",
                root_owned(0o444),
            );
            let mut writes = FileWrites::default();
            writes.add("/tmp/x".to_owned(), "openat", "sh");
            writes.add("/dev/null".to_owned(), "openat", "sh");
            Case {
                cap_add: BTreeSet::new(),
                reads,
                writes,
                filesystem: FilesystemSetting {
                    read_only: true,
                    mounts: vec![WritableMount {
                        path: "/tmp".to_owned(),
                        kind: MountKind::Tmpfs,
                        why: "wrote /tmp/x".to_owned(),
                        size: None,
                    }],
                    why: String::new(),
                },
                low_ports: BTreeSet::new(),
            }
        }

        fn evidence(&self) -> RootEvidence<'_> {
            RootEvidence {
                cap_add: &self.cap_add,
                reads: Some(&self.reads),
                writes: Some(&self.writes),
                filesystem: &self.filesystem,
                low_ports: &self.low_ports,
            }
        }

        fn analyze(&self, creds: &[Credential]) -> UserSetting {
            analyze(creds, &BTreeSet::new(), &self.evidence())
        }
    }

    #[test]
    fn root_that_needed_nothing_runs_as_nobody() {
        let s = Case::new().analyze(&[cred(0, 0, "sh")]);
        assert_eq!(s.user.as_deref(), Some(NOBODY), "{}", s.why);
        assert!(
            s.why.starts_with("sh ran as root but did not need to"),
            "{}",
            s.why
        );
    }

    /// Each thing root alone may do keeps root, and the reason says which.
    #[test]
    fn what_needed_root_keeps_it() {
        let root = [cred(0, 0, "app")];
        let kept = |c: &Case, said: &str| {
            let s = c.analyze(&root);
            assert_eq!(s.user, None, "{said}: {}", s.why);
            assert!(s.why.contains(said), "{said}: {}", s.why);
        };
        let mut c = Case::new();
        c.cap_add.insert(Capability::CHOWN);
        kept(&c, "it needs CHOWN");
        let mut c = Case::new();
        c.low_ports.insert(80);
        kept(&c, "it bound port 80");
        let mut c = Case::new();
        c.reads.add(
            "/etc/app.conf".to_owned(),
            1,
            false,
            "app",
            root_owned(0o600),
        );
        kept(&c, "only their owner or group may (/etc/app.conf (600))");
        let mut c = Case::new();
        c.reads.add(
            "/usr/bin/tool".to_owned(),
            1,
            true,
            "app",
            root_owned(0o754),
        );
        kept(&c, "/usr/bin/tool (754)");
        let mut c = Case::new();
        c.write("/var/lib/app/db", "openat", 0o755);
        kept(
            &c,
            "it wrote /var/lib/app/db, in a directory only its owner (uid 0)",
        );
        // A world-writable directory (sticky, like /tmp) needs no root.
        let mut c = Case::new();
        c.write("/var/lib/app/db", "openat", 0o1777);
        assert_eq!(c.analyze(&root).user.as_deref(), Some(NOBODY));
        // Under a tmpfs: a directory the workload made itself is fine, one it found (which a
        // fresh tmpfs would not have) must be writable by others.
        let mut c = Case::new();
        c.writes.add("/tmp/work".to_owned(), "mkdir", "app");
        c.writes.add("/tmp/work/x".to_owned(), "openat", "app");
        assert_eq!(c.analyze(&root).user.as_deref(), Some(NOBODY));
        let mut c = Case::new();
        c.write("/tmp/.private/made", "mkdir", 0o700);
        kept(
            &c,
            "it wrote /tmp/.private/made, in a directory only its owner (uid 0)",
        );
        // Without a tmpfs (the root stays writable), /tmp/x's directory must say.
        let mut c = Case::new();
        c.filesystem.read_only = false;
        kept(&c, "the owner of /tmp/x's directory was not recorded");
        let mut c = Case::new();
        c.reads.add("/etc/old".to_owned(), 1, false, "app", None);
        kept(&c, "the owner of /etc/old was not recorded");
        // A set-user-ID program is not a root workload.
        let mut suid = cred(1000, 1000, "ping");
        suid.euid = 0;
        let s = Case::new().analyze(&[suid]);
        assert_eq!(s.user, None);
        assert!(s.why.contains("set-user-ID"), "{}", s.why);
    }

    fn cred(uid: u32, gid: u32, comm: &str) -> Credential {
        Credential {
            uid,
            gid,
            euid: uid,
            egid: gid,
            comms: [comm.to_owned()].into(),
            count: 1,
        }
    }

    #[test]
    fn one_user_other_than_root_is_set() {
        let s = Case::new().analyze(&[cred(65534, 65534, "sh"), cred(65534, 65534, "cat")]);
        assert_eq!(s.user.as_deref(), Some("65534:65534"));
        assert_eq!(s.ids(), Some((65534, 65534)));
        assert_eq!(
            s.why,
            "every process (cat, sh) ran as this user, none as root"
        );
    }

    #[test]
    fn root_is_kept_and_a_worker_user_said() {
        let s = Case::new().analyze(&[cred(0, 0, "nginx"), cred(33, 33, "nginx")]);
        assert_eq!(s.user, None);
        assert!(s.why.starts_with("nginx ran as root"), "{}", s.why);
        assert!(s.why.contains("nginx ran as uid 33 gid 33"), "{}", s.why);
    }

    #[test]
    fn several_users_or_no_evidence_keep_the_image_user() {
        let c = Case::new();
        let s = c.analyze(&[cred(1, 1, "a"), cred(2, 2, "b")]);
        assert_eq!(s.user, None);
        assert!(s.why.contains("several users"), "{}", s.why);
        let old: BTreeSet<PathBuf> = [PathBuf::from("r.json")].into();
        assert_eq!(analyze(&[cred(1, 1, "a")], &old, &c.evidence()).user, None);
        assert_eq!(c.analyze(&[]).user, None);
    }
}
