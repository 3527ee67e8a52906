//! Validation before writing: the profile is compiled into a BPF program with libseccomp for
//! each of its architectures, exactly as a container runtime would, and a profile that allows
//! nothing or everything is refused.

use std::collections::BTreeSet;

use libseccomp::{ScmpAction, ScmpArch, ScmpFilterContext, ScmpSyscall};

use crate::arch::Arch;
use crate::naming::{self, NameStatus};
use crate::profile::Profile;

#[derive(Debug, thiserror::Error)]
pub enum ValidationError {
    #[error(
        "syscall name `{name}` is unknown to libseccomp {libseccomp} and to cinch's syscall table; remove it or correct its spelling"
    )]
    UnknownName {
        name: String,
        libseccomp: &'static str,
    },
    #[error("the profile would allow no syscall at all; cinch never writes an empty profile")]
    Empty,
    #[error("the profile would allow every syscall; cinch never writes an allow-all profile")]
    AllowAll,
    #[error(
        "libseccomp {libseccomp} cannot compile the profile for {arch} ({step}: {detail}); this is a bug in cinch, please report it with the recording"
    )]
    Libseccomp {
        arch: Arch,
        step: &'static str,
        detail: String,
        libseccomp: &'static str,
    },
}

/// What validation could not check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validated {
    /// Names newer than the installed libseccomp: listed in the profile (a runtime with a newer
    /// libseccomp enforces them; runc and crun skip names their libseccomp does not know), but
    /// not compiled here.
    pub unchecked: BTreeSet<String>,
    /// Architectures compiled.
    pub compiled: BTreeSet<Arch>,
}

fn scmp_err(
    arch: Arch,
    step: &'static str,
) -> impl Fn(libseccomp::error::SeccompError) -> ValidationError {
    move |e| ValidationError::Libseccomp {
        arch,
        step,
        detail: e.to_string(),
        libseccomp: naming::libseccomp_version(),
    }
}

/// Compiles `profile` for each of its architectures.
pub fn validate(profile: &Profile) -> Result<Validated, ValidationError> {
    if profile.allow.is_empty() {
        return Err(ValidationError::Empty);
    }
    if profile.architectures.is_empty() {
        return Err(ValidationError::Empty);
    }
    let allows_everything = profile.architectures.iter().all(|a| {
        naming::all_names(*a)
            .iter()
            .all(|n| profile.allow.contains(n))
    });
    if allows_everything {
        return Err(ValidationError::AllowAll);
    }
    let mut out = Validated::default();
    let mut resolved: Vec<(ScmpAction, ScmpSyscall, String)> = Vec::new();
    let errno_rules = profile
        .enosys
        .iter()
        .map(|n| (ScmpAction::Errno(crate::profile::ENOSYS as i32), n));
    let allow_rules = profile.allow.iter().map(|n| (ScmpAction::Allow, n));
    for (action, name) in allow_rules.chain(errno_rules) {
        match naming::name_status(name) {
            NameStatus::Libseccomp => {}
            NameStatus::TableOnly => {
                out.unchecked.insert(name.clone());
                continue;
            }
            NameStatus::Unknown => {
                return Err(ValidationError::UnknownName {
                    name: name.clone(),
                    libseccomp: naming::libseccomp_version(),
                });
            }
        }
        // Resolved for the native architecture: libseccomp translates native numbers (and its
        // pseudo-numbers for names that exist elsewhere) to each architecture in the filter.
        let sys = ScmpSyscall::from_name(name).map_err(|_| ValidationError::UnknownName {
            name: name.clone(),
            libseccomp: naming::libseccomp_version(),
        })?;
        resolved.push((action, sys, name.clone()));
    }
    let native = ScmpArch::native();
    for arch in &profile.architectures {
        let arch = *arch;
        let scmp = naming::scmp_arch(arch);
        let default = ScmpAction::Errno(profile.default_errno as i32);
        let mut ctx =
            ScmpFilterContext::new(default).map_err(scmp_err(arch, "creating the filter"))?;
        if scmp != native {
            ctx.add_arch(scmp)
                .map_err(scmp_err(arch, "adding the architecture"))?;
            ctx.remove_arch(native)
                .map_err(scmp_err(arch, "removing the native architecture"))?;
        }
        for (action, sys, name) in &resolved {
            // A rule whose action is the default is redundant and libseccomp refuses it (runc
            // skips such rules too).
            if *action == default {
                continue;
            }
            match profile.conditions.get(name.as_str()) {
                Some(alternatives) if *action == ScmpAction::Allow => {
                    for alt in alternatives {
                        let cmp: Vec<_> = alt.iter().map(|c| c.to_scmp()).collect();
                        ctx.add_rule_conditional(*action, *sys, &cmp)
                            .map_err(scmp_err(arch, "adding a rule with argument conditions"))?;
                    }
                }
                _ => {
                    ctx.add_rule(*action, *sys)
                        .map_err(scmp_err(arch, "adding a rule"))?;
                }
            }
        }
        let sink = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .map_err(|e| ValidationError::Libseccomp {
                arch,
                step: "opening /dev/null",
                detail: e.to_string(),
                libseccomp: naming::libseccomp_version(),
            })?;
        ctx.export_bpf(&sink)
            .map_err(scmp_err(arch, "generating the BPF program"))?;
        out.compiled.insert(arch);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(names: &[&str]) -> Profile {
        Profile {
            default_errno: 1,
            architectures: [Arch::X86_64, Arch::X86].into_iter().collect(),
            allow: names.iter().map(|s| s.to_string()).collect(),
            kernel_issued: BTreeSet::new(),
            conditions: Default::default(),
            enosys: ["clone3".to_string()].into_iter().collect(),
            baseline: None,
        }
    }

    #[test]
    fn compiles_for_each_architecture() {
        let v = validate(&profile(&[
            "read",
            "write",
            "socketcall",
            "mmap2",
            "exit_group",
        ]))
        .expect("valid");
        assert_eq!(v.compiled.len(), 2);
        assert!(v.unchecked.is_empty());
    }

    #[test]
    fn unknown_names_are_named() {
        let err = validate(&profile(&["read", "reed"])).expect_err("typo");
        assert!(err.to_string().contains("`reed`"), "{err}");
    }

    #[test]
    fn refuses_empty() {
        assert!(matches!(
            validate(&profile(&[])),
            Err(ValidationError::Empty)
        ));
    }

    #[test]
    fn enosys_default_skips_the_redundant_rule() {
        let mut p = profile(&["read"]);
        p.default_errno = crate::profile::ENOSYS;
        validate(&p).expect("clone3 → ENOSYS equals the default and is skipped");
    }
}
