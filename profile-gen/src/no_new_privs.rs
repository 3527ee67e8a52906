//! no-new-privileges, from what the workload exec'd. The flag makes the kernel ignore
//! set-user-ID and set-group-ID bits and file capabilities at exec (and refuse LSM transitions
//! that would widen privileges): safe to set exactly when no exec of the workload gained
//! privileges. The recorder counts the execs whose `linux_binprm.secureexec` the kernel set.

use serde::{Deserialize, Serialize};

use crate::observed::Observed;

/// Whether to set no-new-privileges, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoNewPrivileges {
    pub set: bool,
    pub why: String,
}

pub fn analyze(obs: &Observed) -> NoNewPrivileges {
    if !obs.privileged_execs.is_empty() {
        let programs: Vec<String> = obs
            .privileged_execs
            .iter()
            .map(|(p, n)| format!("{p} ({n}x)"))
            .collect();
        return NoNewPrivileges {
            set: false,
            why: format!(
                "{} gained privileges at exec (set-user-ID, set-group-ID, file capabilities or an LSM transition); no-new-privileges would stop that, so it is not set: make the program need no privilege gain, then set it",
                programs.join(", ")
            ),
        };
    }
    let unknown = obs.privileged_execs_unknown.len();
    if unknown > 0 {
        return NoNewPrivileges {
            set: true,
            why: format!(
                "set as before; {unknown} recording{} cannot say whether an exec gained privileges (recorded before cinch watched for it, or on a kernel whose BTF lacks linux_binprm.secureexec)",
                if unknown == 1 { "" } else { "s" }
            ),
        };
    }
    NoNewPrivileges {
        set: true,
        why: "no exec of the workload gained privileges".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn set_unless_an_exec_gained_privileges() {
        let mut obs = Observed::default();
        assert!(analyze(&obs).set);
        obs.privileged_execs_unknown
            .insert(PathBuf::from("old.json"));
        let n = analyze(&obs);
        assert!(
            n.set && n.why.contains("1 recording cannot say"),
            "{}",
            n.why
        );
        obs.privileged_execs.insert("sudo".to_owned(), 2);
        let n = analyze(&obs);
        assert!(!n.set);
        assert!(
            n.why.starts_with("sudo (2x) gained privileges"),
            "{}",
            n.why
        );
    }
}
