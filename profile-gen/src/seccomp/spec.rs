//! The one reader of seccomp profile files, with every field a container runtime acts on:
//! Docker / Podman JSON (with `archMap`, `includes` / `excludes`), plain OCI `linux.seccomp`,
//! and the `spec` of a Security Profiles Operator `SeccompProfile` (YAML or JSON).
//!
//! [`super::load`] turns a [`SeccompSpec`] into exactly the rule list a runtime loads;
//! [`crate::profile::LoadedProfile`] summarizes one for `diff` and `report`.

use std::path::Path;

use serde::Deserialize;

use crate::profile::{ProfileError, ProfileFlavor};
use crate::recording::serde_detail;

/// The profile as written (field names as in Docker's JSON and the OCI runtime spec).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeccompSpec {
    #[serde(default)]
    pub default_action: String,
    #[serde(default)]
    pub default_errno_ret: Option<u32>,
    #[serde(default)]
    pub architectures: Option<Vec<String>>,
    /// Docker only: per native architecture, the architectures to list.
    #[serde(default)]
    pub arch_map: Option<Vec<ArchMapEntry>>,
    /// OCI `SECCOMP_FILTER_FLAG_*` names.
    #[serde(default)]
    pub flags: Option<Vec<String>>,
    /// OCI: where the seccomp agent for `SCMP_ACT_NOTIFY` listens.
    #[serde(default)]
    pub listener_path: Option<String>,
    #[serde(default)]
    pub syscalls: Option<Vec<SpecRule>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchMapEntry {
    pub architecture: String,
    #[serde(default)]
    pub sub_architectures: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpecRule {
    #[serde(default)]
    pub names: Option<Vec<String>>,
    /// Docker's legacy single-name form.
    #[serde(default)]
    pub name: Option<String>,
    pub action: String,
    /// A number in Docker / OCI; SPO's first v1beta1 releases wrote it as a string.
    #[serde(default)]
    pub errno_ret: Option<serde_json::Value>,
    #[serde(default)]
    pub args: Option<Vec<SpecArg>>,
    #[serde(default)]
    pub includes: Option<SpecFilter>,
    #[serde(default)]
    pub excludes: Option<SpecFilter>,
    /// Docker only: why the rule is there (no runtime acts on it).
    #[serde(default)]
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpecArg {
    pub index: u32,
    pub value: u64,
    #[serde(default)]
    pub value_two: u64,
    pub op: String,
}

/// Docker's conditions on a rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpecFilter {
    /// Kernel spelling (`CAP_SYS_ADMIN`), compared with the container's bounding set.
    #[serde(default)]
    pub caps: Option<Vec<String>>,
    /// libseccomp / Go spelling of the native architecture (`amd64`, `arm64`, `x86`).
    #[serde(default)]
    pub arches: Option<Vec<String>>,
    /// `"<kernel>.<major>"`, e.g. `"5.8"`.
    #[serde(default)]
    pub min_kernel: Option<String>,
}

impl SpecRule {
    /// The errno the rule asks for, whichever way it was written.
    pub fn errno(&self) -> Result<Option<u32>, String> {
        match &self.errno_ret {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::Number(n)) => n
                .as_u64()
                .and_then(|e| u32::try_from(e).ok())
                .map(Some)
                .ok_or_else(|| format!("errnoRet {n} is not an errno number")),
            Some(serde_json::Value::String(s)) => s
                .parse()
                .map(Some)
                .map_err(|_| format!("errnoRet {s:?} is not an errno number")),
            Some(other) => Err(format!("errnoRet {other} is not an errno number")),
        }
    }
}

impl SpecFilter {
    /// Any condition set (an empty list or string is no condition, as in moby).
    pub fn is_empty(&self) -> bool {
        self.caps.as_ref().is_none_or(Vec::is_empty)
            && self.arches.as_ref().is_none_or(Vec::is_empty)
            && self.min_kernel.as_ref().is_none_or(String::is_empty)
    }
}

#[derive(Deserialize)]
struct SpoIn {
    kind: String,
    #[serde(default)]
    metadata: Option<SpoMetaIn>,
    spec: SeccompSpec,
}

#[derive(Deserialize)]
struct SpoMetaIn {
    #[serde(default)]
    name: Option<String>,
}

/// A profile file as read: its spec, and the shape it came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileDoc {
    pub spec: SeccompSpec,
    pub flavor: ProfileFlavor,
}

/// Reads a profile file: Docker / OCI JSON or an SPO resource (YAML or JSON).
pub fn read_spec(path: &Path) -> Result<SeccompSpec, ProfileError> {
    read_document(path).map(|d| d.spec)
}

/// Reads a profile file with its shape.
pub fn read_document(path: &Path) -> Result<ProfileDoc, ProfileError> {
    let bytes = crate::files::read_input(path).map_err(|source| ProfileError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse_document(&bytes, path)
}

/// Parses a profile; `path` is only used in error messages.
pub fn parse_spec(bytes: &[u8], path: &Path) -> Result<SeccompSpec, ProfileError> {
    parse_document(bytes, path).map(|d| d.spec)
}

pub(crate) fn looks_like_yaml_resource(text: &str) -> bool {
    text.lines()
        .any(|l| l.trim_start().starts_with("kind:") || l.trim_start().starts_with("apiVersion:"))
}

/// Parses a profile with its shape; `path` is only used in error messages.
pub fn parse_document(bytes: &[u8], path: &Path) -> Result<ProfileDoc, ProfileError> {
    let p = || path.to_owned();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ProfileError::Empty { path: p() });
    }
    let value: serde_json::Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => {
            let text = String::from_utf8_lossy(bytes);
            if looks_like_yaml_resource(&text) {
                return parse_spo_yaml(&text, path);
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
    let invalid = |e: serde_json::Error| ProfileError::Invalid {
        path: p(),
        line: e.line(),
        column: e.column(),
        detail: serde_detail(&e),
    };
    if object.get("kind").and_then(|k| k.as_str()) == Some("SeccompProfile") {
        let spo: SpoIn = serde_json::from_slice(bytes).map_err(invalid)?;
        return spo_document(spo, path);
    }
    if !object.contains_key("defaultAction") {
        return Err(ProfileError::Unrecognized { path: p() });
    }
    Ok(ProfileDoc {
        spec: serde_json::from_slice(bytes).map_err(invalid)?,
        flavor: ProfileFlavor::Json,
    })
}

fn parse_spo_yaml(text: &str, path: &Path) -> Result<ProfileDoc, ProfileError> {
    let spo: SpoIn = serde_norway::from_str(text).map_err(|e| ProfileError::Yaml {
        path: path.to_owned(),
        detail: e.to_string(),
    })?;
    spo_document(spo, path)
}

fn spo_document(spo: SpoIn, path: &Path) -> Result<ProfileDoc, ProfileError> {
    let refuse = |detail: String| ProfileError::Yaml {
        path: path.to_owned(),
        detail,
    };
    if spo.kind != "SeccompProfile" {
        return Err(refuse(format!(
            "kind is {:?}, expected \"SeccompProfile\"",
            spo.kind
        )));
    }
    if spo.spec.default_action.is_empty() {
        return Err(refuse("spec.defaultAction is missing".to_owned()));
    }
    Ok(ProfileDoc {
        spec: spo.spec,
        flavor: ProfileFlavor::Spo {
            name: spo.metadata.and_then(|m| m.name),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<SeccompSpec, ProfileError> {
        parse_spec(s.as_bytes(), Path::new("p.json"))
    }

    #[test]
    fn reads_every_field_docker_uses() {
        let spec = parse(crate::docker_default::derive::MOBY).expect("moby's default parses");
        assert_eq!(spec.default_action, "SCMP_ACT_ERRNO");
        assert_eq!(spec.default_errno_ret, Some(1));
        let map = spec.arch_map.as_ref().expect("archMap");
        assert!(map.iter().any(|m| m.architecture == "SCMP_ARCH_X86_64"));
        let rules = spec.syscalls.as_ref().expect("rules");
        assert!(
            rules
                .iter()
                .any(|r| r.args.as_ref().is_some_and(|a| !a.is_empty()))
        );
        assert!(rules.iter().any(|r| {
            r.includes
                .as_ref()
                .and_then(|i| i.caps.as_ref())
                .is_some_and(|c| c.iter().any(|c| c == "CAP_SYS_ADMIN"))
        }));
        assert!(
            rules
                .iter()
                .any(|r| { r.includes.as_ref().is_some_and(|i| i.min_kernel.is_some()) })
        );
    }

    #[test]
    fn reads_spo_and_string_errno() {
        let yaml = "apiVersion: security-profiles-operator.x-k8s.io/v1beta1\nkind: SeccompProfile\nmetadata:\n  name: web\nspec:\n  defaultAction: SCMP_ACT_ERRNO\n  syscalls:\n  - names: [clone3]\n    action: SCMP_ACT_ERRNO\n    errnoRet: \"38\"\n";
        let spec = parse(yaml).expect("parses");
        let rules = spec.syscalls.expect("rules");
        assert_eq!(rules[0].errno(), Ok(Some(38)));
    }

    #[test]
    fn refuses_recordings_and_other_json() {
        assert!(matches!(
            parse("{\"schema_version\": 1}"),
            Err(ProfileError::IsARecording { .. })
        ));
        assert!(matches!(
            parse("{\"a\": 1}"),
            Err(ProfileError::Unrecognized { .. })
        ));
        assert!(matches!(
            parse(
                "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [{\"names\": [\"read\"]}]}"
            ),
            Err(ProfileError::Invalid { .. })
        ));
    }
}
