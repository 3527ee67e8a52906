//! Capabilities and identity for `cinch run`: keep only the listed capabilities in every set,
//! switch to `--user`, and decide no_new_privs.
//!
//! Order matters, and follows what the kernel allows (capabilities(7)):
//! 1. the bounding set is cut first, while CAP_SETPCAP is still effective;
//! 2. with PR_SET_KEEPCAPS, setgroups / setgid / setuid keep the permitted set across the switch
//!    from root (without it the kernel clears it);
//! 3. effective, permitted and inheritable are set to the kept capabilities;
//! 4. ambient: empty for root (as Docker: root regains its permitted set from the bounding and
//!    inheritable sets at execve); for another user the kept capabilities, because for a program
//!    without file capabilities the ambient set is all a non-root user keeps across execve
//!    (Docker sets no ambient capabilities, so there a non-root user ends up with none).
//!
//! no_new_privs is set when CAP_SYS_ADMIN is not kept: without it the kernel refuses to install a
//! seccomp filter. runc installs the filter earlier, while still privileged, when no-new-privileges
//! is not asked for; `cinch run` installs it last, right before execve, so that the profile does
//! not need the syscalls of the steps above, and the kernel then requires no_new_privs. With it,
//! setuid and file-capability binaries do not gain privileges when COMMAND executes them.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::path::Path;

use profile_gen::Capability;
use profile_gen::allowlist::read_cap_settings;

use crate::error::{input, kernel};
use crate::spawn::User;

/// Where the kept capabilities came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Kept {
    pub caps: BTreeSet<Capability>,
    pub source: String,
    /// The settings file's read-only root and writable mounts, when it has them.
    pub filesystem: Option<profile_gen::filesystem::FilesystemSetting>,
    /// The settings file's user and limits, when it has them.
    pub user: Option<profile_gen::user::UserSetting>,
    pub limits: Option<profile_gen::limits::LimitsSetting>,
}

/// The capabilities `--caps FILE` or `--cap-add` keep. A settings file that drops ALL keeps its
/// `cap_add`; one that does not starts, as Docker does, from Docker's default capabilities, minus
/// its `cap_drop`, plus its `cap_add`. With neither, nothing is kept.
pub(crate) fn kept_capabilities(
    caps_file: Option<&Path>,
    cap_add: &[String],
) -> anyhow::Result<Kept> {
    if let Some(path) = caps_file {
        let settings = read_cap_settings(path).map_err(|e| input(e.to_string()))?;
        let mut keep: BTreeSet<Capability> = if settings.drops_all() {
            BTreeSet::new()
        } else {
            let mut base = profile_gen::docker_default::default_capabilities().clone();
            for name in &settings.cap_drop {
                let cap = name.parse::<Capability>().map_err(|e| {
                    input(format!(
                        "capability settings {}: cap_drop: {e}",
                        path.display()
                    ))
                })?;
                base.remove(&cap);
            }
            base
        };
        keep.extend(settings.cap_add.iter().copied());
        return Ok(Kept {
            caps: keep,
            source: path.display().to_string(),
            filesystem: settings.filesystem,
            user: settings.user,
            limits: settings.limits,
        });
    }
    let mut keep = BTreeSet::new();
    for name in cap_add {
        if name.eq_ignore_ascii_case("ALL") {
            keep.extend(Capability::all());
            continue;
        }
        let cap = name
            .parse::<Capability>()
            .map_err(|e| input(format!("--cap-add: {e}")))?;
        keep.insert(cap);
    }
    Ok(Kept {
        caps: keep,
        source: "--cap-add".to_owned(),
        filesystem: None,
        user: None,
        limits: None,
    })
}

/// `--user` resolved: ids and supplementary groups, as runc resolves `USER[:GROUP]` (the groups
/// /etc/group lists the user in, when the uid has a passwd entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

impl Identity {
    pub(crate) fn resolve(spec: &str) -> anyhow::Result<Identity> {
        let User { uid, gid } = User::parse(spec)?;
        let mut groups = vec![gid];
        if let Ok(Some(user)) = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            && let Ok(name) = CString::new(user.name)
            && let Ok(list) = nix::unistd::getgrouplist(&name, nix::unistd::Gid::from_raw(gid))
        {
            groups = list.into_iter().map(|g| g.as_raw()).collect();
        }
        groups.sort_unstable();
        groups.dedup();
        Ok(Identity { uid, gid, groups })
    }
}

fn to_caps(set: &BTreeSet<Capability>) -> caps::CapsHashSet {
    caps::all()
        .into_iter()
        .filter(|c| set.iter().any(|k| k.number() == u32::from(c.index())))
        .collect()
}

fn cap_last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(Capability::LAST)
}

fn names(set: &BTreeSet<Capability>) -> String {
    if set.is_empty() {
        return "none".to_owned();
    }
    set.iter()
        .map(|c| c.docker_name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether no_new_privs must be set for the filter to be installed after the drop.
pub(crate) fn needs_no_new_privs(keep: &BTreeSet<Capability>) -> bool {
    !keep.contains(&Capability::SYS_ADMIN)
}

/// Applies the capability sets and identity to the calling (single-threaded) process.
pub(crate) fn apply(keep: &BTreeSet<Capability>, user: Option<&Identity>) -> anyhow::Result<()> {
    let permitted = caps::read(None, caps::CapSet::Permitted)
        .map_err(|e| kernel(format!("cannot read cinch's own capabilities: {e}")))?;
    let missing: BTreeSet<Capability> = keep
        .iter()
        .copied()
        .filter(|k| !permitted.iter().any(|c| u32::from(c.index()) == k.number()))
        .collect();
    if !missing.is_empty() {
        return Err(kernel(format!(
            "cannot keep {}: cinch itself does not hold {} (run cinch run as root)",
            names(&missing),
            if missing.len() == 1 { "it" } else { "them" }
        )));
    }
    let nnp = needs_no_new_privs(keep);
    let switching = user.is_some();
    if switching {
        caps::securebits::set_keepcaps(true)
            .map_err(|e| kernel(format!("cannot set PR_SET_KEEPCAPS for --user: {e}")))?;
    }

    for nr in 0..=cap_last_cap() {
        if keep.iter().any(|k| k.number() == nr) {
            continue;
        }
        // SAFETY: plain prctl with integer arguments.
        let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(nr), 0, 0, 0) };
        if rc == 0 {
            continue;
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            // A number this kernel does not have.
            Some(libc::EINVAL) => {}
            // Without CAP_SETPCAP the bounding set stays; with no_new_privs COMMAND cannot gain
            // anything from it anyway (no setuid or file-capability elevation at execve).
            Some(libc::EPERM) if nnp && !switching => {
                tracing::info!(
                    "bounding set left as it is: cinch lacks CAP_SETPCAP, and no_new_privs keeps COMMAND from gaining capabilities"
                );
                break;
            }
            _ => {
                return Err(kernel(format!(
                    "cannot drop capability {nr} from the bounding set: {err} (run cinch run as root)"
                )));
            }
        }
    }

    if let Some(id) = user {
        let groups: Vec<nix::unistd::Gid> = id
            .groups
            .iter()
            .map(|g| nix::unistd::Gid::from_raw(*g))
            .collect();
        nix::unistd::setgroups(&groups).map_err(|e| {
            kernel(format!(
                "--user: cannot set the groups {:?}: {}",
                id.groups,
                e.desc()
            ))
        })?;
        nix::unistd::setgid(nix::unistd::Gid::from_raw(id.gid))
            .map_err(|e| kernel(format!("--user: cannot set group {}: {}", id.gid, e.desc())))?;
        nix::unistd::setuid(nix::unistd::Uid::from_raw(id.uid))
            .map_err(|e| kernel(format!("--user: cannot set user {}: {}", id.uid, e.desc())))?;
    }

    let wanted = to_caps(keep);
    for (set, what) in [
        (caps::CapSet::Effective, "effective"),
        (caps::CapSet::Permitted, "permitted"),
        (caps::CapSet::Inheritable, "inheritable"),
    ] {
        caps::set(None, set, &wanted).map_err(|e| {
            kernel(format!(
                "cannot set the {what} capabilities to {}: {e}",
                names(keep)
            ))
        })?;
    }
    caps::clear(None, caps::CapSet::Ambient)
        .map_err(|e| kernel(format!("cannot clear the ambient capabilities: {e}")))?;
    if user.is_some_and(|u| u.uid != 0) {
        for cap in &wanted {
            caps::raise(None, caps::CapSet::Ambient, *cap)
                .map_err(|e| kernel(format!("cannot make {cap} ambient for --user: {e}")))?;
        }
    }
    if switching {
        caps::securebits::set_keepcaps(false)
            .map_err(|e| kernel(format!("cannot clear PR_SET_KEEPCAPS: {e}")))?;
    }
    if nnp {
        // SAFETY: plain prctl with integer arguments.
        let on: libc::c_ulong = 1;
        let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, on, 0, 0, 0) };
        if rc != 0 {
            return Err(kernel(format!(
                "cannot set no_new_privs: {}",
                std::io::Error::last_os_error()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_add_names_and_all() {
        let kept = kept_capabilities(None, &["net_bind_service".into(), "CAP_CHOWN".into()])
            .expect("known names");
        assert_eq!(
            kept.caps,
            [Capability::NET_BIND_SERVICE, Capability::CHOWN]
                .into_iter()
                .collect()
        );
        assert_eq!(
            kept_capabilities(None, &["ALL".into()])
                .expect("ALL")
                .caps
                .len(),
            Capability::all().count()
        );
        let err = kept_capabilities(None, &["NET_FLY".into()]).expect_err("unknown");
        assert_eq!(crate::error::exit_code(&err), 2);
        assert!(err.to_string().contains("NET_FLY"), "{err}");
        assert!(kept_capabilities(None, &[]).expect("none").caps.is_empty());
    }

    #[test]
    fn settings_without_drop_all_start_from_docker_defaults() {
        let dir = std::env::temp_dir().join(format!("cinch-kept-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tempdir");
        let f = dir.join("s.json");
        std::fs::write(&f, r#"{"cap_drop":["NET_RAW"],"cap_add":["SYS_PTRACE"]}"#).expect("write");
        let kept = kept_capabilities(Some(&f), &[]).expect("reads");
        assert!(kept.caps.contains(&Capability::CHOWN));
        assert!(kept.caps.contains(&Capability::SYS_PTRACE));
        assert!(!kept.caps.contains(&Capability::NET_RAW));
        std::fs::write(&f, r#"{"cap_drop":["ALL"],"cap_add":["SETUID"]}"#).expect("write");
        let kept = kept_capabilities(Some(&f), &[]).expect("reads");
        assert_eq!(kept.caps, [Capability::SETUID].into_iter().collect());
        std::fs::write(&f, r#"{"cap_drop":["ALL"],"cap_add":["SETFLY"]}"#).expect("write");
        let err = kept_capabilities(Some(&f), &[]).expect_err("unknown name");
        assert_eq!(crate::error::exit_code(&err), 2);
        assert!(err.to_string().contains("SETFLY"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn sys_admin_decides_no_new_privs() {
        assert!(needs_no_new_privs(&BTreeSet::new()));
        assert!(!needs_no_new_privs(
            &[Capability::SYS_ADMIN].into_iter().collect()
        ));
    }
}
