//! Docker's default seccomp profile and default capabilities, as the yardstick for "attack
//! surface compared with Docker's default".
//!
//! `data/moby-default-29.7.2.json` is moby's `default.json` byte for byte (see `source` in the
//! derived file for the tag and commit). Docker's profile is conditional: rules apply only for
//! some architectures (`includes.arches`), only when the container holds (or lacks) some
//! capability (`includes.caps` / `excludes.caps`), only from some kernel version
//! (`includes.minKernel`), and some allow a syscall only for some argument values. What a
//! container actually gets depends on all of that, so `data/docker-default-x86_64.json` keeps the
//! flattened answer for the common case, an x86_64 container with Docker's default capabilities
//! on a current kernel, and says how it was derived. A unit test re-derives it from the moby file,
//! so the two cannot drift apart; `CINCH_BLESS=1 cargo test -p profile-gen golden` rewrites it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::arch::Arch;
use crate::capability::Capability;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerDefault {
    pub source: DockerSource,
    /// How the lists below were derived from the moby profile.
    pub derivation: Vec<String>,
    /// `daemon/pkg/oci/caps/defaults.go` at the same tag: what `docker run` grants by default.
    pub default_capabilities: BTreeSet<Capability>,
    /// The architecture the lists are for.
    pub arch: Arch,
    /// Allowed for any arguments.
    pub allowed: BTreeSet<String>,
    /// Allowed only for some argument values (socket families, clone flags, personality).
    pub allowed_with_arg_filters: BTreeSet<String>,
    /// Allowed only when the container is given the capability (outside the default set).
    pub allowed_with_capability: BTreeMap<Capability, BTreeSet<String>>,
    /// Answered with an errno instead of EPERM (clone3 → ENOSYS).
    pub errno: BTreeMap<String, u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerSource {
    pub repository: String,
    pub tag: String,
    pub commit: String,
    pub path: String,
    pub go_module: String,
    pub sha256: String,
    pub verbatim_copy: String,
}

impl DockerDefault {
    /// Everything an x86_64 container with default capabilities may call in some form.
    pub fn allows(&self, name: &str) -> bool {
        self.allowed.contains(name) || self.allowed_with_arg_filters.contains(name)
    }

    pub fn allowed_count(&self) -> usize {
        self.allowed.len() + self.allowed_with_arg_filters.len()
    }

    /// `docker-v29.7.2`-style label for summaries.
    pub fn version_label(&self) -> String {
        self.source.tag.trim_start_matches("docker-").to_owned()
    }
}

const DATA: &str = include_str!("../data/docker-default-x86_64.json");

/// The embedded, derived Docker default (checked against the moby file by a unit test).
pub fn docker_default() -> &'static DockerDefault {
    static PARSED: OnceLock<DockerDefault> = OnceLock::new();
    PARSED.get_or_init(|| {
        serde_json::from_str(DATA)
            .expect("data/docker-default-x86_64.json is embedded at build time and checked by the golden tests")
    })
}

/// moby's default profile as published (conditions included), for what the derived data
/// leaves out: argument conditions ([`crate::arg_rules`]).
pub const MOBY: &str = include_str!("../data/moby-default-29.7.2.json");

/// Docker's default capability set (14 capabilities).
pub fn default_capabilities() -> &'static BTreeSet<Capability> {
    &docker_default().default_capabilities
}

#[cfg(test)]
pub(crate) mod derive {
    //! Re-derives `data/docker-default-x86_64.json` from the verbatim moby profile.

    use std::path::Path;

    use super::*;
    use crate::naming;
    use crate::seccomp::load::{Action, EPERM, Host, LoadPlan, Verdict, resolve};
    use crate::seccomp::spec::parse_spec;

    pub(crate) use super::MOBY;

    /// moby's profile as a runtime loads it in an x86_64 container with the bounding set
    /// `caps`, on a kernel newer than every `minKernel` ([`crate::seccomp`]'s pipeline).
    fn plan(caps: &BTreeSet<Capability>) -> LoadPlan {
        let spec = parse_spec(MOBY.as_bytes(), Path::new("moby-default.json"))
            .expect("the moby profile parses");
        let host = Host {
            native: Arch::X86_64,
            kernel_release: "6.18.0".to_owned(),
            bounding: caps.clone(),
        };
        resolve(&spec, &host, Path::new("moby-default.json")).expect("the moby profile loads")
    }

    /// What the loaded filter does with each x86_64 syscall, by name (as the profile states
    /// names the installed libseccomp does not know: the data must not depend on the machine).
    fn verdicts(plan: &LoadPlan) -> BTreeMap<String, Verdict> {
        naming::all_names(Arch::X86_64)
            .into_iter()
            .filter_map(|n| Some((n.clone(), plan.name_verdict(Arch::X86_64, &n)?)))
            .collect()
    }

    pub(crate) fn derive() -> DockerDefault {
        let default_caps: BTreeSet<Capability> = Capability::DOCKER_DEFAULT.into_iter().collect();
        let mut out = DockerDefault {
            source: DockerSource {
                repository: "moby/moby".into(),
                tag: "docker-v29.7.2".into(),
                commit: "6a43e3d5afddf4111da0f864bbc7cae5d7e95001".into(),
                path: "vendor/github.com/moby/profiles/seccomp/default.json".into(),
                go_module: "github.com/moby/profiles/seccomp v0.2.3".into(),
                sha256: "536529b665dd0972c37bfb569f5d4ac8a53592e7b00752bc39ff063ca9864c74".into(),
                verbatim_copy: "profile-gen/data/moby-default-29.7.2.json".into(),
            },
            derivation: vec![
                "the moby profile loaded as moby and runc load it (cinch's seccomp pipeline) for an x86_64 (amd64) container holding Docker's 14 default capabilities, on a kernel newer than every includes.minKernel (4.8)".into(),
                "allowed: the loaded filter lets the syscall through whatever its arguments; allowed_with_arg_filters: only for some argument values".into(),
                "allowed_with_capability: allowed in some form only when the container also holds that capability (loaded again with it added), by capability".into(),
                "errno: denied by a rule of its own with an errno other than the default EPERM".into(),
                "only names that exist on x86_64 (libseccomp or the syscall table resolve them to an x86_64 number) are kept".into(),
            ],
            default_capabilities: default_caps.clone(),
            arch: Arch::X86_64,
            allowed: BTreeSet::new(),
            allowed_with_arg_filters: BTreeSet::new(),
            allowed_with_capability: BTreeMap::new(),
            errno: BTreeMap::new(),
        };
        let base = verdicts(&plan(&default_caps));
        for (name, verdict) in &base {
            match verdict {
                Verdict::Allowed => {
                    out.allowed.insert(name.clone());
                }
                Verdict::DependsOnArguments => {
                    out.allowed_with_arg_filters.insert(name.clone());
                }
                Verdict::Denied(Action::Errno(e)) if u32::from(*e) != EPERM => {
                    out.errno.insert(name.clone(), u32::from(*e));
                }
                _ => {}
            }
        }
        for extra in Capability::all().filter(|c| !default_caps.contains(c)) {
            let mut caps = default_caps.clone();
            caps.insert(extra);
            let gained: BTreeSet<String> = verdicts(&plan(&caps))
                .into_iter()
                .filter(|(n, v)| !v.denies() && base.get(n).is_some_and(|b| b.denies()))
                .map(|(n, _)| n)
                .collect();
            if !gained.is_empty() {
                out.allowed_with_capability.insert(extra, gained);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The embedded data file is exactly what the derivation gives; `CINCH_BLESS=1 cargo test -p
    /// profile-gen golden` rewrites it (after updating the moby copy and `derive::derive`).
    #[test]
    fn golden_docker_default_data() {
        let derived = derive::derive();
        let mut bytes = serde_json::to_vec_pretty(&derived).expect("serializes");
        bytes.push(b'\n');
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("data/docker-default-x86_64.json");
        if std::env::var("CINCH_BLESS").is_ok_and(|v| v == "1") {
            std::fs::write(&path, &bytes).expect("writes the data file");
            return;
        }
        let on_disk = std::fs::read(&path).expect("reads the data file");
        assert!(
            on_disk == bytes,
            "{} differs from its derivation; run `CINCH_BLESS=1 cargo test -p profile-gen golden`",
            path.display()
        );
        assert_eq!(docker_default(), &derived);
    }

    #[test]
    fn embedded_moby_profile_is_the_recorded_version() {
        let dd = docker_default();
        assert_eq!(dd.source.tag, "docker-v29.7.2");
        assert!(MOBY.contains("\"defaultErrnoRet\": 1"));
    }

    #[test]
    fn well_known_entries() {
        let dd = docker_default();
        assert_eq!(dd.default_capabilities.len(), 14);
        assert!(dd.allowed.contains("read"));
        assert!(dd.allowed.contains("arch_prctl"), "amd64-only rule applies");
        assert!(dd.allowed.contains("ptrace"), "minKernel 4.8 rule applies");
        assert!(
            dd.allowed.contains("chroot"),
            "SYS_CHROOT is a default capability"
        );
        assert!(dd.allowed_with_arg_filters.contains("socket"));
        assert!(dd.allowed_with_arg_filters.contains("personality"));
        assert!(dd.allowed_with_arg_filters.contains("clone"));
        assert!(!dd.allows("mount"));
        assert!(!dd.allows("socketcall"), "not an x86_64 syscall");
        assert!(dd.allowed_with_capability[&Capability::SYS_ADMIN].contains("mount"));
        assert_eq!(dd.errno.get("clone3"), Some(&38));
        assert!(!dd.allows("clone3"));
    }
}
