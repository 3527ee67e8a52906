//! Seccomp profiles: the minimized profile cinch generates, and a summary of profiles read back
//! from disk (cinch's own or anyone's Docker / OCI JSON, or an SPO `SeccompProfile`, all read by
//! [`crate::seccomp::spec`]) for `diff` and `report`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::allowlist::CapSettings;
use crate::arch::Arch;
use crate::arg_rules::Allowance;
use crate::baseline::{Runtime, Scope};
use crate::capability::Capability;
use crate::files::io_message;
use crate::naming;
use crate::seccomp::load::{ArgCondition, Host, LoadPlan, Verdict, resolve};
use crate::seccomp::spec::{ProfileDoc, SpecFilter, parse_document, read_document};

pub const EPERM: u32 = 1;
pub const ENOSYS: u32 = 38;

/// A generated profile: deny by default, one allow list, and the syscalls answered with ENOSYS
/// so that callers fall back (clone3 → clone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// errno for everything not allowed: EPERM (Docker's choice) or ENOSYS.
    pub default_errno: u32,
    pub architectures: BTreeSet<Arch>,
    /// Allowed for every listed architecture (seccomp profiles cannot say "only on x86").
    pub allow: BTreeSet<String>,
    /// The part of `allow` that no recording observed but the kernel can make the workload issue
    /// ([`crate::kernel_issued`]); written as a rule of its own.
    pub kernel_issued: BTreeSet<String>,
    /// Names of `allow` allowed only for some argument values: any one of the lists must hold
    /// entirely ([`crate::arg_rules`]). Written as one rule per list.
    pub conditions: BTreeMap<String, Vec<Vec<ArgCondition>>>,
    /// Denied with ENOSYS instead of the default errno.
    pub enosys: BTreeSet<String>,
    /// The runtime baseline folded into `allow`, if any, and how much of it (said in the Docker
    /// format's comment).
    pub baseline: Option<(Runtime, Scope)>,
    /// Containers whose start no recording observed (attached to while running): the profile
    /// covers their steady state only (said in the Docker format's comment, which `report`
    /// reads back).
    pub steady_state_only: BTreeSet<String>,
}

/// How the Docker format's comment marks a profile that covers a container's steady state only.
pub const STEADY_STATE_ONLY: &str = "steady state only";

/// Why a profile file could not be used. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read {}: {}", path.display(), io_message(source))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is empty; pass a seccomp profile or a cinch recording", path.display())]
    Empty { path: PathBuf },
    #[error("{} is not valid JSON at line {line}, column {column} ({detail}); fix the file", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        detail: String,
    },
    #[error("{} is not a valid SeccompProfile resource ({detail}); fix the file", path.display())]
    Yaml { path: PathBuf, detail: String },
    #[error("{} is neither a seccomp profile (no `defaultAction`) nor a cinch recording (no `schema_version`)", path.display())]
    Unrecognized { path: PathBuf },
    #[error("{} is a cinch recording, not a profile; generate a profile from it with `cinch generate`", path.display())]
    IsARecording { path: PathBuf },
    #[error("{} is not a valid seccomp profile at line {line}, column {column} ({detail}); fix the file", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        detail: String,
    },
}

/// Which shape a profile file had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileFlavor {
    /// Docker / Podman / OCI `linux.seccomp` JSON (also Kubernetes Localhost profiles).
    Json,
    /// Security Profiles Operator `SeccompProfile` resource.
    Spo { name: Option<String> },
}

/// A rule as read from a profile file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedRule {
    pub names: Vec<String>,
    pub action: String,
    pub errno: Option<u32>,
    /// The rule matches only some argument values.
    pub has_args: bool,
    /// Docker's `includes` / `excludes`: applies only for some capabilities, arches or kernels.
    pub conditional: bool,
}

/// What a profile read from disk is loaded with: the kernel and the bounding set Docker's
/// `includes` / `excludes` look at. Each of the profile's architectures is resolved as a machine
/// of that architecture loads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// As `uname -r` prints it.
    pub kernel_release: String,
    pub bounding: BTreeSet<Capability>,
}

impl Target {
    /// A container run with `settings` (without: Docker's default capabilities) on
    /// `kernel_release`.
    pub fn new(kernel_release: &str, settings: Option<&CapSettings>) -> Target {
        Target {
            kernel_release: kernel_release.to_owned(),
            bounding: settings.map_or_else(
                || crate::docker_default::default_capabilities().clone(),
                CapSettings::bounding,
            ),
        }
    }
}

/// A profile read from disk, and what a runtime loads from it ([`crate::seccomp::load`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedProfile {
    pub path: PathBuf,
    pub flavor: ProfileFlavor,
    pub default_action: String,
    pub default_errno: Option<u32>,
    /// Architectures cinch can compare (an empty list in the file means the native one).
    pub architectures: BTreeSet<Arch>,
    /// Architectures in the file that cinch does not model (x32, mips...).
    pub other_architectures: BTreeSet<String>,
    pub rules: Vec<LoadedRule>,
    /// Per architecture, the names the loaded filter lets through in some form (for some
    /// argument values at least). A name the installed libseccomp does not know counts as its
    /// rules state it: a runtime with a newer libseccomp loads it.
    pub allowed: BTreeMap<Arch, BTreeSet<String>>,
    /// Names allowed only for some argument values, on [`LoadedProfile::primary`].
    pub arg_filtered: BTreeSet<String>,
    /// What is allowed of each argument-sensitive syscall, on [`LoadedProfile::primary`].
    pub arguments: BTreeMap<String, Allowance>,
    /// The architecture the argument view is for: this machine's when the profile covers it,
    /// else the profile's first.
    pub primary: Arch,
    /// Why a runtime would refuse the profile, when it would; the sets above then come from the
    /// rules as written (conditional and argument rules counted as allowing).
    pub load_error: Option<String>,
    /// The comment of a profile cinch generated from a container it attached to after the
    /// start ([`STEADY_STATE_ONLY`]; Docker format only, the others have no comments).
    pub steady_state_only: Option<String>,
}

fn is_allow(action: &str) -> bool {
    matches!(action, "SCMP_ACT_ALLOW" | "SCMP_ACT_LOG")
}

impl LoadedProfile {
    /// A default action that lets unlisted syscalls through: the profile restricts nothing but
    /// what it lists.
    pub fn allows_by_default(&self) -> bool {
        is_allow(&self.default_action)
    }

    /// Every name the profile mentions in an allowing rule.
    pub fn allowed_names(&self) -> BTreeSet<String> {
        self.rules
            .iter()
            .filter(|r| is_allow(&r.action))
            .flat_map(|r| r.names.iter().cloned())
            .collect()
    }

    /// What the profile lets through on `arch` (in some form), as names that exist on `arch`.
    pub fn allowed_on(&self, arch: Arch) -> BTreeSet<String> {
        self.allowed.get(&arch).cloned().unwrap_or_default()
    }

    /// Names allowed only by rules with argument filters.
    pub fn arg_filtered_names(&self) -> BTreeSet<String> {
        self.arg_filtered.clone()
    }

    /// Names in allowing rules that exist on none of the profile's architectures and that
    /// neither libseccomp nor the syscall table knows (typos, or syscalls newer than both).
    pub fn unknown_names(&self) -> BTreeSet<String> {
        self.allowed_names()
            .into_iter()
            .filter(|n| naming::name_status(n) == naming::NameStatus::Unknown)
            .collect()
    }

    /// The rules as written, when no runtime would load them: argument-filtered and conditional
    /// rules count as allowing; a profile that allows by default allows every syscall of `arch`
    /// except the ones a rule denies outright.
    fn written_on(&self, arch: Arch) -> BTreeSet<String> {
        if self.allows_by_default() {
            let denied: BTreeSet<&String> = self
                .rules
                .iter()
                .filter(|r| !is_allow(&r.action) && !r.has_args && !r.conditional)
                .flat_map(|r| r.names.iter())
                .collect();
            return naming::all_names(arch)
                .into_iter()
                .filter(|n| !denied.contains(n))
                .collect();
        }
        self.allowed_names()
            .into_iter()
            .filter(|n| naming::syscall_number(arch, n).is_some())
            .collect()
    }

    fn written_arg_filtered(&self) -> BTreeSet<String> {
        let plain: BTreeSet<&String> = self
            .rules
            .iter()
            .filter(|r| is_allow(&r.action) && !r.has_args)
            .flat_map(|r| r.names.iter())
            .collect();
        self.rules
            .iter()
            .filter(|r| is_allow(&r.action) && r.has_args)
            .flat_map(|r| r.names.iter())
            .filter(|n| !plain.contains(n))
            .cloned()
            .collect()
    }
}

impl LoadedProfile {
    /// The summary of a parsed profile file, loaded for `target`.
    pub fn from_document(path: &Path, doc: ProfileDoc, target: &Target) -> LoadedProfile {
        let ProfileDoc { spec, flavor } = doc;
        let mut arch_names: Vec<String> = spec.architectures.clone().unwrap_or_default();
        for entry in spec.arch_map.clone().unwrap_or_default() {
            arch_names.push(entry.architecture);
            arch_names.extend(entry.sub_architectures.unwrap_or_default());
        }
        let mut architectures = BTreeSet::new();
        let mut other_architectures = BTreeSet::new();
        for name in arch_names {
            match name.parse::<Arch>() {
                Ok(a) => {
                    architectures.insert(a);
                }
                Err(_) if name == "SCMP_ARCH_NATIVE" => {
                    architectures.insert(Arch::native());
                }
                Err(_) => {
                    other_architectures.insert(name);
                }
            }
        }
        if architectures.is_empty() && other_architectures.is_empty() {
            // libseccomp's default: a filter for the native architecture only.
            architectures.insert(Arch::native());
        }
        let filtered = |f: &Option<SpecFilter>| f.as_ref().is_some_and(|f| !f.is_empty());
        let steady_state_only = spec
            .syscalls
            .iter()
            .flatten()
            .filter_map(|r| r.comment.clone())
            .find(|c| c.contains(STEADY_STATE_ONLY));
        let rules = spec
            .syscalls
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|r| {
                let errno = r.errno().ok().flatten();
                let mut names = r.names.unwrap_or_default();
                names.extend(r.name);
                LoadedRule {
                    names,
                    action: r.action,
                    errno,
                    has_args: r.args.is_some_and(|a| !a.is_empty()),
                    conditional: filtered(&r.includes) || filtered(&r.excludes),
                }
            })
            .collect();
        let primary = if architectures.contains(&Arch::native()) || architectures.is_empty() {
            Arch::native()
        } else {
            *architectures.iter().next().unwrap_or(&Arch::native())
        };
        let mut out = LoadedProfile {
            path: path.to_owned(),
            flavor,
            default_action: spec.default_action.clone(),
            default_errno: spec.default_errno_ret,
            architectures,
            other_architectures,
            rules,
            allowed: BTreeMap::new(),
            arg_filtered: BTreeSet::new(),
            arguments: BTreeMap::new(),
            primary,
            load_error: None,
            steady_state_only,
        };
        // The machine that loads `arch`: one of that architecture, or, for a sub-architecture
        // in Docker's `archMap` (x86 under x86_64), one of the architecture it is listed under.
        let plan_for = |arch: Arch| {
            let map = spec.arch_map.as_deref().unwrap_or_default();
            let is = |name: &str| name == arch.scmp_name();
            let native = if map.is_empty() || map.iter().any(|m| is(&m.architecture)) {
                arch
            } else {
                map.iter()
                    .find(|m| m.sub_architectures.iter().flatten().any(|s| is(s)))
                    .and_then(|m| m.architecture.parse().ok())
                    .unwrap_or(arch)
            };
            let host = Host {
                native,
                kernel_release: target.kernel_release.clone(),
                bounding: target.bounding.clone(),
            };
            resolve(&spec, &host, path)
        };
        let plans: Result<BTreeMap<Arch, LoadPlan>, String> = out
            .architectures
            .iter()
            .map(|a| plan_for(*a).map(|p| (*a, p)).map_err(|e| e.to_string()))
            .collect();
        match plans {
            Ok(plans) => {
                for (arch, plan) in &plans {
                    out.allowed.insert(
                        *arch,
                        naming::all_names(*arch)
                            .into_iter()
                            .filter(|n| plan.name_verdict(*arch, n).is_some_and(|v| !v.denies()))
                            .collect(),
                    );
                }
                if let Some(plan) = plans.get(&primary) {
                    out.arg_filtered = naming::all_names(primary)
                        .into_iter()
                        .filter(|n| {
                            plan.name_verdict(primary, n) == Some(Verdict::DependsOnArguments)
                        })
                        .collect();
                    out.arguments = crate::arg_rules::allowances(plan);
                }
            }
            Err(e) => {
                out.load_error = Some(e);
                out.allowed = out
                    .architectures
                    .iter()
                    .map(|a| (*a, out.written_on(*a)))
                    .collect();
                out.arg_filtered = out.written_arg_filtered();
            }
        }
        out
    }
}

/// Reads a profile file: Docker / OCI JSON (detected by `defaultAction`) or an SPO
/// `SeccompProfile` resource, through the one reader [`crate::seccomp::spec`].
pub fn read_profile(path: &Path, target: &Target) -> Result<LoadedProfile, ProfileError> {
    read_document(path).map(|doc| LoadedProfile::from_document(path, doc, target))
}

pub fn parse_profile(
    bytes: &[u8],
    path: &Path,
    target: &Target,
) -> Result<LoadedProfile, ProfileError> {
    parse_document(bytes, path).map(|doc| LoadedProfile::from_document(path, doc, target))
}

/// The profile's allowed names per architecture, for a generated profile (used by diff when
/// both sides are generated in memory).
pub fn allowed_by_arch(profile: &Profile) -> BTreeMap<Arch, BTreeSet<String>> {
    profile
        .architectures
        .iter()
        .map(|a| {
            let names = profile
                .allow
                .iter()
                .filter(|n| naming::syscall_number(*a, n).is_some())
                .cloned()
                .collect();
            (*a, names)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<LoadedProfile, ProfileError> {
        parse_profile(
            s.as_bytes(),
            Path::new("p.json"),
            &Target::new("6.18.0", None),
        )
    }

    #[test]
    fn reads_docker_json_with_arch_map_and_conditions() {
        let p = parse(crate::docker_default::derive::MOBY).expect("moby's default parses");
        assert!(p.architectures.contains(&Arch::X86_64));
        assert!(p.architectures.contains(&Arch::X86));
        assert!(p.other_architectures.contains("SCMP_ARCH_X32"));
        let x86_64 = p.allowed_on(Arch::X86_64);
        assert!(x86_64.contains("read"));
        assert!(
            x86_64.contains("socket"),
            "arg-filtered rules count as allowing"
        );
        assert!(!x86_64.contains("socketcall"), "not an x86_64 syscall");
        assert!(p.allowed_on(Arch::X86).contains("socketcall"));
        assert!(p.arg_filtered_names().contains("personality"));
    }

    #[test]
    fn allow_by_default_profiles_expand_to_every_syscall() {
        let p = parse(r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["ptrace"],"action":"SCMP_ACT_ERRNO"}]}"#)
            .expect("parses");
        let allowed = p.allowed_on(Arch::native());
        assert!(allowed.contains("read") && allowed.contains("mount"));
        assert!(!allowed.contains("ptrace"));
    }

    #[test]
    fn reads_spo_yaml() {
        let yaml = "apiVersion: security-profiles-operator.x-k8s.io/v1beta1\nkind: SeccompProfile\nmetadata:\n  name: web\nspec:\n  defaultAction: SCMP_ACT_ERRNO\n  architectures:\n  - SCMP_ARCH_X86_64\n  syscalls:\n  - names:\n    - read\n    - write\n    action: SCMP_ACT_ALLOW\n  - names:\n    - clone3\n    action: SCMP_ACT_ERRNO\n    errnoRet: 38\n";
        let p = parse(yaml).expect("parses");
        assert_eq!(
            p.flavor,
            ProfileFlavor::Spo {
                name: Some("web".into())
            }
        );
        assert_eq!(
            p.allowed_on(Arch::X86_64),
            ["read", "write"].into_iter().map(String::from).collect()
        );
        assert_eq!(p.rules[1].errno, Some(38));
    }

    #[test]
    fn refuses_other_shapes() {
        assert!(matches!(parse(""), Err(ProfileError::Empty { .. })));
        assert!(matches!(
            parse("{\"a\": 1}"),
            Err(ProfileError::Unrecognized { .. })
        ));
        assert!(matches!(
            parse("{\"schema_version\": 1}"),
            Err(ProfileError::IsARecording { .. })
        ));
        assert!(matches!(
            parse("{\"defaultAction\": 3}"),
            Err(ProfileError::Invalid { .. })
        ));
        let err = parse("{\n\"defaultAction\": \n").expect_err("truncated");
        assert!(
            matches!(err, ProfileError::Syntax { line: 3, .. }),
            "{err:?}"
        );
    }
}
