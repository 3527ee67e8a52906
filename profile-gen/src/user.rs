//! The user setting, from the ids the workload's processes ran with.
//!
//! The kernel side records each process's ids (`real_cred`: uid, gid, euid, egid) when it is
//! registered, after every exec and after every syscall that sets ids, with the program's name.
//! A workload whose processes all ran as one user other than root runs as that user (`--user`,
//! `runAsNonRoot` and `runAsUser`). One that ran as root is left as it is: the kernel does not
//! say whether it needed to be root for the files it used (a root-owned file opened by root
//! asks for no capability), so cinch does not guess; when a root process handed work to
//! processes of another user (nginx's master and its workers), the settings say so.

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

/// The setting the recordings support. `creds` is every recording's ids joined; `unknown` the
/// recordings that cannot say.
pub fn analyze(creds: &[Credential], unknown: &BTreeSet<PathBuf>) -> UserSetting {
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
        let mut why = format!(
            "{} ran as root: the image's user is kept (the kernel does not say whether it needed root's files)",
            root_comms.into_iter().collect::<Vec<_>>().join(", ")
        );
        if !others.is_empty() {
            why.push_str(&format!(
                "; it handed work to other users ({}), which root needs to do",
                others.join("; ")
            ));
        }
        return keep(why);
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
        let s = analyze(
            &[cred(65534, 65534, "sh"), cred(65534, 65534, "cat")],
            &BTreeSet::new(),
        );
        assert_eq!(s.user.as_deref(), Some("65534:65534"));
        assert_eq!(s.ids(), Some((65534, 65534)));
        assert_eq!(
            s.why,
            "every process (cat, sh) ran as this user, none as root"
        );
    }

    #[test]
    fn root_is_kept_and_a_worker_user_said() {
        let s = analyze(
            &[cred(0, 0, "nginx"), cred(33, 33, "nginx")],
            &BTreeSet::new(),
        );
        assert_eq!(s.user, None);
        assert!(s.why.starts_with("nginx ran as root"), "{}", s.why);
        assert!(s.why.contains("nginx ran as uid 33 gid 33"), "{}", s.why);
        // A set-user-ID root program counts as root too.
        let mut suid = cred(1000, 1000, "ping");
        suid.euid = 0;
        assert_eq!(analyze(&[suid], &BTreeSet::new()).user, None);
    }

    #[test]
    fn several_users_or_no_evidence_keep_the_image_user() {
        let s = analyze(&[cred(1, 1, "a"), cred(2, 2, "b")], &BTreeSet::new());
        assert_eq!(s.user, None);
        assert!(s.why.contains("several users"), "{}", s.why);
        let old: BTreeSet<PathBuf> = [PathBuf::from("r.json")].into();
        assert_eq!(analyze(&[cred(1, 1, "a")], &old).user, None);
        assert_eq!(analyze(&[], &BTreeSet::new()).user, None);
    }
}
