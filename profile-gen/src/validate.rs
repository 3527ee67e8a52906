//! Validation before writing: the profile is rendered, read back and resolved as runc would on a
//! machine of each of its architectures, and compiled into the BPF program that machine would
//! load, ENOSYS stub and kernel size limit included ([`crate::seccomp`], the pipeline `cinch
//! run` enforces with). A profile that allows nothing or everything is refused.

use std::collections::BTreeSet;
use std::path::Path;

use crate::arch::Arch;
use crate::naming;
use crate::profile::Profile;
use crate::seccomp::compile::{CompileError, compile};
use crate::seccomp::load::{Host, LoadError, resolve};
use crate::seccomp::spec::parse_spec;

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
        "the generated profile cannot be loaded on {arch} ({detail}); this is a bug in cinch, please report it with the recording"
    )]
    Load { arch: Arch, detail: String },
    #[error(
        "libseccomp {libseccomp} cannot compile the profile for {arch} ({source}); this is a bug in cinch, please report it with the recording"
    )]
    Compile {
        arch: Arch,
        source: CompileError,
        libseccomp: &'static str,
    },
    #[error(
        "the profile for {arch} compiles to {instructions} BPF instructions, more than the kernel's limit of 4096; this is a bug in cinch, please report it with the recording"
    )]
    TooLong { arch: Arch, instructions: usize },
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
    /// The longest program, in BPF instructions (the kernel takes at most 4096).
    pub instructions: usize,
}

/// Compiles `profile` as a machine of each of its architectures would load it.
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
    // The OCI rendering is the rule list every format carries (Docker's adds comments only).
    let path = Path::new("generated profile");
    let spec = parse_spec(&crate::formats::oci_json(profile), path).map_err(|e| {
        ValidationError::Load {
            arch: Arch::native(),
            detail: e.to_string(),
        }
    })?;
    let mut out = Validated::default();
    for &arch in &profile.architectures {
        let host = Host {
            native: arch,
            // The profile has no kernel or capability conditions: neither changes the plan.
            kernel_release: String::new(),
            bounding: BTreeSet::new(),
        };
        let plan = resolve(&spec, &host, path).map_err(|e| match e {
            LoadError::UnknownSyscall {
                name, libseccomp, ..
            } => ValidationError::UnknownName { name, libseccomp },
            other => ValidationError::Load {
                arch,
                detail: other.to_string(),
            },
        })?;
        let compiled = compile(&plan).map_err(|e| match e {
            CompileError::TooLong(instructions) => ValidationError::TooLong { arch, instructions },
            source => ValidationError::Compile {
                arch,
                source,
                libseccomp: naming::libseccomp_version(),
            },
        })?;
        out.unchecked.extend(plan.skipped);
        out.instructions = out.instructions.max(compiled.program.len());
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
            steady_state_only: BTreeSet::new(),
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
