//! Seccomp profiles: the minimized profile cinch generates, and profiles read back from disk
//! (cinch's own or anyone's Docker / OCI JSON, or an SPO `SeccompProfile`) for `diff` and
//! `report`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::arch::Arch;
use crate::baseline::Runtime;
use crate::fsutil::io_message;
use crate::naming;
use crate::recording::serde_detail;
use crate::runtime_load::ArgCondition;

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
    /// The runtime baseline folded into `allow`, if any (said in the Docker format's comment).
    pub baseline: Option<Runtime>,
}

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

/// A profile read from disk.
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

    /// Names allowed only by rules with argument filters.
    pub fn arg_filtered_names(&self) -> BTreeSet<String> {
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

    /// What the profile lets through on `arch` (in some form: argument-filtered and conditional
    /// rules count as allowing), as names that exist on `arch`. For a profile that allows by
    /// default this is every syscall of `arch` except the ones a rule denies outright.
    pub fn allowed_on(&self, arch: Arch) -> BTreeSet<String> {
        if !self.architectures.contains(&arch) {
            return BTreeSet::new();
        }
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

    /// Names in allowing rules that exist on none of the profile's architectures and that
    /// neither libseccomp nor the syscall table knows (typos, or syscalls newer than both).
    pub fn unknown_names(&self) -> BTreeSet<String> {
        self.allowed_names()
            .into_iter()
            .filter(|n| naming::name_status(n) == naming::NameStatus::Unknown)
            .collect()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DocIn {
    default_action: String,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Option<Vec<String>>,
    #[serde(default)]
    arch_map: Option<Vec<ArchMapIn>>,
    #[serde(default)]
    syscalls: Option<Vec<RuleIn>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMapIn {
    architecture: String,
    #[serde(default)]
    sub_architectures: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RuleIn {
    #[serde(default)]
    names: Option<Vec<String>>,
    /// Docker's legacy single-name form.
    #[serde(default)]
    name: Option<String>,
    action: String,
    /// A number in Docker / OCI; SPO's first v1beta1 releases wrote it as a string.
    #[serde(default)]
    errno_ret: Option<serde_json::Value>,
    #[serde(default)]
    args: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    includes: Option<serde_json::Value>,
    #[serde(default)]
    excludes: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct SpoIn {
    kind: String,
    #[serde(default)]
    metadata: Option<SpoMetaIn>,
    spec: DocIn,
}

#[derive(Deserialize)]
struct SpoMetaIn {
    #[serde(default)]
    name: Option<String>,
}

fn non_empty_filter(v: &Option<serde_json::Value>) -> bool {
    match v {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Object(m)) => m.values().any(|x| match x {
            serde_json::Value::Null => false,
            serde_json::Value::Array(a) => !a.is_empty(),
            serde_json::Value::String(s) => !s.is_empty(),
            _ => true,
        }),
        Some(_) => true,
    }
}

fn load_doc(path: &Path, doc: DocIn, flavor: ProfileFlavor) -> LoadedProfile {
    let mut arch_names: Vec<String> = doc.architectures.unwrap_or_default();
    for entry in doc.arch_map.unwrap_or_default() {
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
    let rules = doc
        .syscalls
        .unwrap_or_default()
        .into_iter()
        .map(|r| {
            let mut names = r.names.unwrap_or_default();
            names.extend(r.name);
            let errno = r.errno_ret.as_ref().and_then(|v| match v {
                serde_json::Value::Number(n) => n.as_u64().and_then(|e| u32::try_from(e).ok()),
                serde_json::Value::String(s) => s.parse().ok(),
                _ => None,
            });
            LoadedRule {
                names,
                action: r.action,
                errno,
                has_args: r.args.is_some_and(|a| !a.is_empty()),
                conditional: non_empty_filter(&r.includes) || non_empty_filter(&r.excludes),
            }
        })
        .collect();
    LoadedProfile {
        path: path.to_owned(),
        flavor,
        default_action: doc.default_action,
        default_errno: doc.default_errno_ret,
        architectures,
        other_architectures,
        rules,
    }
}

pub(crate) fn looks_like_yaml_resource(text: &str) -> bool {
    text.lines()
        .any(|l| l.trim_start().starts_with("kind:") || l.trim_start().starts_with("apiVersion:"))
}

/// Reads a profile file: Docker / OCI JSON (detected by `defaultAction`) or an SPO
/// `SeccompProfile` YAML resource.
pub fn read_profile(path: &Path) -> Result<LoadedProfile, ProfileError> {
    let bytes = crate::fsutil::read_input(path).map_err(|source| ProfileError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse_profile(&bytes, path)
}

pub fn parse_profile(bytes: &[u8], path: &Path) -> Result<LoadedProfile, ProfileError> {
    let p = || path.to_owned();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ProfileError::Empty { path: p() });
    }
    let value: serde_json::Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => {
            let text = String::from_utf8_lossy(bytes);
            if looks_like_yaml_resource(&text) {
                return parse_spo(&text, path);
            }
            return Err(ProfileError::Syntax {
                path: p(),
                line: e.line(),
                column: e.column(),
                detail: serde_detail(&e),
            });
        }
    };
    let Some(object) = value.as_object() else {
        return Err(ProfileError::Unrecognized { path: p() });
    };
    if object.contains_key("schema_version") {
        return Err(ProfileError::IsARecording { path: p() });
    }
    if object.get("kind").and_then(|k| k.as_str()) == Some("SeccompProfile") {
        return parse_spo(&String::from_utf8_lossy(bytes), path);
    }
    if !object.contains_key("defaultAction") {
        return Err(ProfileError::Unrecognized { path: p() });
    }
    let doc: DocIn = serde_json::from_slice(bytes).map_err(|e| ProfileError::Invalid {
        path: p(),
        line: e.line(),
        column: e.column(),
        detail: serde_detail(&e),
    })?;
    Ok(load_doc(path, doc, ProfileFlavor::Json))
}

fn parse_spo(text: &str, path: &Path) -> Result<LoadedProfile, ProfileError> {
    let spo: SpoIn = serde_yaml::from_str(text).map_err(|e| ProfileError::Yaml {
        path: path.to_owned(),
        detail: e.to_string(),
    })?;
    if spo.kind != "SeccompProfile" {
        return Err(ProfileError::Yaml {
            path: path.to_owned(),
            detail: format!("kind is {:?}, expected \"SeccompProfile\"", spo.kind),
        });
    }
    let name = spo.metadata.and_then(|m| m.name);
    Ok(load_doc(path, spo.spec, ProfileFlavor::Spo { name }))
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
        parse_profile(s.as_bytes(), Path::new("p.json"))
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
