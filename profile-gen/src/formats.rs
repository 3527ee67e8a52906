//! Output formats for a generated profile.
//!
//! - **docker**: moby's profile schema, read by `docker run --security-opt seccomp=FILE` and by
//!   Podman (containers/common uses the same schema). Rules carry a `comment` saying why they
//!   are there; that field exists only in the Docker schema.
//! - **oci**: the runtime-spec `linux.seccomp` object and nothing else. Decision, checked against
//!   opencontainers/runtime-spec: `defaultErrnoRet` and a rule's `errnoRet` are in the spec since
//!   v1.1.0 (config-linux.md and specs-go `LinuxSeccomp` / `LinuxSyscall`; they are absent from the
//!   v1.0.2 tag), so they are kept. Docker-only fields (`comment`, `archMap`, `includes`,
//!   `excludes`) are left out: containerd reads Localhost profiles with
//!   `json.Unmarshal(file, &specs.LinuxSeccomp{})` (contrib/seccomp `WithProfile`), which silently
//!   drops every field the spec does not have. A runtime built against a runtime-spec older than
//!   v1.1.0 also drops the errno fields; with the default EPERM that changes nothing, but
//!   clone3's ENOSYS would become EPERM there.
//! - **kubernetes**: the file is the OCI object (what the kubelet hands to containerd or CRI-O
//!   for a `Localhost` profile), plus a Pod whose container's `securityContext` names it, returned
//!   separately (the CLI prints it on stdout).
//! - **spo**: a Security Profiles Operator `SeccompProfile` (`security-profiles-operator.x-k8s.io/v1beta1`)
//!   in YAML. Its spec has no `defaultErrnoRet` (api/seccompprofile/v1beta1), so denied calls
//!   get the runtime's default, EPERM; asking for ENOSYS with this format is refused.

use std::path::Path;

use serde::Serialize;

use crate::allowlist::CapSettings;
use crate::baseline::Scope;
use crate::profile::{ENOSYS, Profile, STEADY_STATE_ONLY};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Format {
    Docker,
    Oci,
    Kubernetes,
    Spo,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Docker => "docker",
            Format::Oci => "oci",
            Format::Kubernetes => "kubernetes",
            Format::Spo => "spo",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(
        "{name:?} is not a valid Kubernetes resource name (lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters); pass another --name"
    )]
    InvalidName { name: String },
    #[error("cannot derive a Kubernetes resource name from {}; pass --name", path.display())]
    NoName { path: std::path::PathBuf },
    #[error(
        "an SPO SeccompProfile has no defaultErrnoRet field, so --default-errno ENOSYS cannot be expressed in it; use --format kubernetes or leave --default-errno at EPERM"
    )]
    EnosysInSpo,
}

/// A rendered profile: the file, and for `kubernetes` the Pod manifest to paste.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub profile: Vec<u8>,
    pub manifest: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonProfile<'a> {
    default_action: &'static str,
    default_errno_ret: u32,
    architectures: Vec<&'static str>,
    syscalls: Vec<JsonRule<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonRule<'a> {
    names: Vec<&'a str>,
    action: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    args: Vec<JsonArg>,
    #[serde(skip_serializing_if = "Option::is_none")]
    errno_ret: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
}

/// An argument condition as moby, the runtime spec and SPO spell it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonArg {
    index: u32,
    value: u64,
    value_two: u64,
    op: &'static str,
}

fn rules(profile: &Profile, comments: bool) -> Vec<JsonRule<'_>> {
    let bare = |name: &&String| !profile.conditions.contains_key(*name);
    let mut out = vec![JsonRule {
        names: profile
            .allow
            .difference(&profile.kernel_issued)
            .filter(bare)
            .map(String::as_str)
            .collect(),
        action: "SCMP_ACT_ALLOW",
        args: Vec::new(),
        errno_ret: None,
        comment: comments.then(|| {
            let mut c = "observed by cinch while recording".to_owned();
            if !profile.steady_state_only.is_empty() {
                let names: Vec<&str> = profile.steady_state_only.iter().map(String::as_str).collect();
                c.push_str(&format!(
                    " ({STEADY_STATE_ONLY}: the start of {} was not observed, and the container may not start under this profile)",
                    names.join(", ")
                ));
            }
            match profile.baseline {
                Some((rt, Scope::Whole)) => c.push_str(&format!(", plus the {rt} runtime baseline")),
                Some((rt, Scope::Varies)) => {
                    c.push_str(&format!(", plus the {rt} runtime's calls that vary between starts"))
                }
                None => {}
            }
            c
        }),
    }];
    for (name, alternatives) in &profile.conditions {
        for (i, alt) in alternatives.iter().enumerate() {
            out.push(JsonRule {
                names: vec![name.as_str()],
                action: "SCMP_ACT_ALLOW",
                args: alt
                    .iter()
                    .map(|c| JsonArg {
                        index: c.index,
                        value: c.value,
                        value_two: c.value_two,
                        op: c.op_name(),
                    })
                    .collect(),
                errno_ret: None,
                comment: (comments && i == 0).then(|| {
                    format!("{name} only for the argument values the recordings observed (or Docker's conditions where they are not known); cinch report lists them")
                }),
            });
        }
    }
    let kernel: Vec<&str> = profile
        .kernel_issued
        .iter()
        .filter(bare)
        .map(String::as_str)
        .collect();
    if !kernel.is_empty() {
        out.push(JsonRule {
            names: kernel,
            action: "SCMP_ACT_ALLOW",
            args: Vec::new(),
            errno_ret: None,
            comment: comments.then(|| {
                "not observed, issued by the kernel rather than the program (restart_syscall after a signal, returns from signal handlers, vDSO time queries): allowed whatever the recording saw; cinch report explains each".to_owned()
            }),
        });
    }
    // A rule with the default action is redundant (libseccomp refuses it; runc skips it).
    if !profile.enosys.is_empty() && profile.default_errno != ENOSYS {
        out.push(JsonRule {
            names: profile.enosys.iter().map(String::as_str).collect(),
            action: "SCMP_ACT_ERRNO",
            args: Vec::new(),
            errno_ret: Some(ENOSYS),
            comment: comments.then(|| {
                "ENOSYS (not EPERM) so that callers fall back: glibc from clone3, whose flags no rule can check, to clone".to_owned()
            }),
        });
    }
    out
}

fn json_profile(profile: &Profile, comments: bool) -> JsonProfile<'_> {
    JsonProfile {
        default_action: "SCMP_ACT_ERRNO",
        default_errno_ret: profile.default_errno,
        architectures: profile
            .architectures
            .iter()
            .map(|a| a.scmp_name())
            .collect(),
        syscalls: rules(profile, comments),
    }
}

fn pretty_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing these plain structs to a Vec cannot fail.
    let mut out = serde_json::to_vec_pretty(value).unwrap_or_default();
    out.push(b'\n');
    out
}

pub fn docker_json(profile: &Profile) -> Vec<u8> {
    pretty_json(&json_profile(profile, true))
}

pub fn oci_json(profile: &Profile) -> Vec<u8> {
    pretty_json(&json_profile(profile, false))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SpoResource<'a> {
    api_version: &'static str,
    kind: &'static str,
    metadata: SpoMetadata<'a>,
    spec: SpoSpec<'a>,
}

#[derive(Serialize)]
struct SpoMetadata<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<&'a str>,
    annotations: std::collections::BTreeMap<&'static str, String>,
}

/// What an SPO resource is called, and what it was made from (its annotations).
#[derive(Debug, Clone, Copy)]
pub struct SpoMeta<'a> {
    /// The resource's name; without one, it comes from the output file's name.
    pub name: Option<&'a str>,
    pub namespace: Option<&'a str>,
    /// How many recordings were merged.
    pub recordings: usize,
    /// The nodes they were made on, where a node agent said.
    pub nodes: &'a std::collections::BTreeSet<String>,
}

/// The annotation saying how many recordings a profile was merged from.
pub const ANNOTATION_RECORDINGS: &str = "cinch/recordings";
/// The annotation naming the nodes its recordings were made on (comma-separated).
pub const ANNOTATION_NODES: &str = "cinch/nodes";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SpoSpec<'a> {
    default_action: &'static str,
    architectures: Vec<&'static str>,
    syscalls: Vec<JsonRule<'a>>,
}

pub fn spo_yaml(profile: &Profile, name: &str, meta: &SpoMeta<'_>) -> Result<Vec<u8>, RenderError> {
    check_resource_name(name)?;
    if let Some(ns) = meta.namespace {
        check_resource_name(ns)?;
    }
    if profile.default_errno == ENOSYS {
        return Err(RenderError::EnosysInSpo);
    }
    let mut annotations = std::collections::BTreeMap::new();
    annotations.insert(ANNOTATION_RECORDINGS, meta.recordings.to_string());
    if !meta.nodes.is_empty() {
        let nodes: Vec<&str> = meta.nodes.iter().map(String::as_str).collect();
        annotations.insert(ANNOTATION_NODES, nodes.join(","));
    }
    let resource = SpoResource {
        api_version: "security-profiles-operator.x-k8s.io/v1beta1",
        kind: "SeccompProfile",
        metadata: SpoMetadata {
            name,
            namespace: meta.namespace,
            annotations,
        },
        spec: SpoSpec {
            default_action: "SCMP_ACT_ERRNO",
            architectures: profile
                .architectures
                .iter()
                .map(|a| a.scmp_name())
                .collect(),
            syscalls: rules(profile, false),
        },
    };
    // Plain structs of strings and numbers always serialize.
    Ok(serde_norway::to_string(&resource)
        .unwrap_or_default()
        .into_bytes())
}

/// The permissive profile to record a container under: it allows every syscall, so nothing the
/// workload does is hidden from the recording, and a runtime still installs it as a filter
/// (`seccomp=unconfined` installs none), which is when `record --new-containers` starts.
pub fn recording_profile() -> Vec<u8> {
    pretty_json(&serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [],
    }))
}

/// A DNS-1123 subdomain, as Kubernetes requires for resource names.
pub fn check_resource_name(name: &str) -> Result<(), RenderError> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
    let ok_end = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if name.is_empty()
        || name.len() > 253
        || !name.chars().all(ok_char)
        || !ok_end(name.chars().next())
        || !ok_end(name.chars().last())
    {
        return Err(RenderError::InvalidName {
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// A resource name from an output file name: `Web Server.yaml` → `web-server`.
pub fn resource_name_from_path(path: &Path) -> Result<String, RenderError> {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let mut name: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    while name.contains("--") {
        name = name.replace("--", "-");
    }
    let name = name
        .trim_matches(|c: char| c == '-' || c == '.')
        .chars()
        .take(253)
        .collect::<String>();
    check_resource_name(&name).map_err(|_| RenderError::NoName {
        path: path.to_owned(),
    })?;
    Ok(name)
}

/// Renders `profile` in `format`. `output` is where the profile will be written (it names the
/// Localhost profile and, without a name in `meta`, the SPO resource).
pub fn render(
    profile: &Profile,
    format: Format,
    output: &Path,
    meta: &SpoMeta<'_>,
    caps: &CapSettings,
) -> Result<Rendered, RenderError> {
    Ok(match format {
        Format::Docker => Rendered {
            profile: docker_json(profile),
            manifest: None,
        },
        Format::Oci => Rendered {
            profile: oci_json(profile),
            manifest: None,
        },
        Format::Kubernetes => Rendered {
            profile: oci_json(profile),
            manifest: Some(crate::snippets::kubernetes_manifest(output, Some(caps))),
        },
        Format::Spo => {
            let name = match meta.name {
                Some(n) => n.to_owned(),
                None => resource_name_from_path(output)?,
            };
            Rendered {
                profile: spo_yaml(profile, &name, meta)?,
                manifest: None,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The binary writes the profile the repository ships in `profiles/`.
    #[test]
    fn recording_profile_is_the_shipped_one() {
        let shipped: serde_json::Value =
            serde_json::from_str(include_str!("../../profiles/recording-profile.json"))
                .expect("the shipped profile parses");
        let written: serde_json::Value =
            serde_json::from_slice(&recording_profile()).expect("parses");
        assert_eq!(written, shipped);
    }

    #[test]
    fn resource_names() {
        assert!(check_resource_name("web").is_ok());
        assert!(check_resource_name("web-1.prod").is_ok());
        for bad in ["", "Web", "-web", "web-", "we_b", &"a".repeat(254)] {
            assert!(check_resource_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            resource_name_from_path(Path::new("/x/Web Server.yaml"))
                .ok()
                .as_deref(),
            Some("web-server")
        );
        assert_eq!(
            resource_name_from_path(Path::new("redis_prod.json"))
                .ok()
                .as_deref(),
            Some("redis-prod")
        );
        assert!(resource_name_from_path(Path::new("___.yaml")).is_err());
    }
}
