//! The capability allowlist: `cap_drop: [ALL]` plus the capabilities the workload was granted
//! for a real need, each with its reasons (syscall and kernel caller), as
//! `cinch generate --caps-out` writes it and `report` / `run` / `verify --caps` read it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::arch::Arch;
use crate::capability::Capability;
use crate::files::io_message;
use crate::naming;
use crate::network::{NetworkMode, NetworkSetting};
use crate::no_new_privs::NoNewPrivileges;
use crate::observed::Observed;
use crate::recording::serde_detail;
use crate::secrets::SecretFinding;

/// Why a capability is in (or was kept out of) the allowlist: one kind of check.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CapReason {
    /// The syscall in progress (`bind`; `socketcall (x86)` for a compat syscall); `null` when
    /// the check happened outside a syscall.
    pub syscall: Option<String>,
    /// The kernel function that asked (`inet_bind_common`).
    pub caller: String,
    /// Largest number of such checks in one recording.
    pub count: u64,
    /// Process names that made them.
    pub comms: BTreeSet<String>,
}

/// The settings file's schema this build writes. Bump on any incompatible change.
///
/// - 1 (no `schema_version`): capabilities.
/// - 2: `network`, `secrets`, `no_new_privileges`.
pub const SETTINGS_VERSION: u32 = 2;

fn settings_version_1() -> u32 {
    1
}

/// The settings file (`--caps-out`): the runtime settings besides the seccomp profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapSettings {
    /// [`SETTINGS_VERSION`] when cinch writes it; 1 when absent.
    #[serde(default = "settings_version_1")]
    pub schema_version: u32,
    /// Always `["ALL"]` when cinch writes it.
    pub cap_drop: Vec<String>,
    /// Sorted Docker names.
    pub cap_add: BTreeSet<Capability>,
    /// Why each added capability is needed.
    #[serde(default)]
    pub reasons: BTreeMap<Capability, Vec<CapReason>>,
    /// Things to know about an added capability: on some runtime, or what re-running the
    /// command without it showed (`record --prove-caps`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub notes: BTreeMap<Capability, String>,
    /// Capabilities the workload was granted but does not need, with the evidence: the rule
    /// that says why (a query, a syscall that failed anyway; docs/capability-checks.md), or
    /// what re-running the command without it showed (`record --prove-caps`). Left out of
    /// `cap_add`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub not_needed: BTreeMap<Capability, String>,
    /// The network the workload needs, with the evidence (`network::analyze`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkSetting>,
    /// Container environment variables that look like secrets (never their values).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretFinding>,
    /// Files read from a container's image that look like secrets (never their contents).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_files: Vec<crate::secrets::SecretFile>,
    /// How much of its image the workload used, with the parts it never touched
    /// (`image::analyze`); one per image recorded from its own root.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<crate::image::ImageUse>,
    /// Whether to set no-new-privileges, with the evidence (`no_new_privs::analyze`); absent
    /// in files before it (the snippets then set it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_new_privileges: Option<NoNewPrivileges>,
    /// Read-only root and where to mount writable, with the evidence (`filesystem::analyze`);
    /// absent in files before it (the snippets then leave the root as it is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filesystem: Option<crate::filesystem::FilesystemSetting>,
    /// The user to run as, with the evidence (`user::analyze`); absent in files before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<crate::user::UserSetting>,
    /// Resource limits, with the evidence (`limits::analyze`); absent in files before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<crate::limits::LimitsSetting>,
}

pub const NET_BIND_SERVICE_NOTE: &str = "needed only to bind a port below net.ipv4.ip_unprivileged_port_start: Docker sets that sysctl to 0 in containers with their own network namespace (so it is not needed there), Kubernetes leaves the kernel default 1024 (so it is)";

impl CapSettings {
    /// `cap_drop: [ALL]` plus `cap_add`, nothing else known.
    pub fn drop_all(cap_add: BTreeSet<Capability>) -> CapSettings {
        CapSettings {
            schema_version: SETTINGS_VERSION,
            cap_drop: vec!["ALL".to_owned()],
            cap_add,
            reasons: BTreeMap::new(),
            notes: BTreeMap::new(),
            not_needed: BTreeMap::new(),
            network: None,
            secrets: Vec::new(),
            secret_files: Vec::new(),
            images: Vec::new(),
            no_new_privileges: None,
            filesystem: None,
            user: None,
            limits: None,
        }
    }

    /// Whether the snippets set no-new-privileges: unless the settings say an exec needed to
    /// gain privileges.
    pub fn sets_no_new_privileges(&self) -> bool {
        self.no_new_privileges.as_ref().is_none_or(|n| n.set)
    }

    /// Whether the network setting says the workload needs none.
    pub fn no_network(&self) -> bool {
        self.network
            .as_ref()
            .is_some_and(|n| n.mode == NetworkMode::None)
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Capabilities added that Docker does not grant by default.
    pub fn outside_docker_default(&self) -> BTreeSet<Capability> {
        self.cap_add
            .iter()
            .copied()
            .filter(|c| !c.is_docker_default())
            .collect()
    }

    /// Whether the file drops everything before adding (what cinch writes; a hand-edited file
    /// might not).
    pub fn drops_all(&self) -> bool {
        self.cap_drop.iter().any(|c| c.eq_ignore_ascii_case("ALL"))
    }

    /// The bounding set a container gets from these settings: `cap_add` after dropping ALL,
    /// otherwise Docker's default set with `cap_add` on top (a named `cap_drop` taken out).
    pub fn bounding(&self) -> BTreeSet<Capability> {
        if self.drops_all() {
            return self.cap_add.clone();
        }
        let dropped: BTreeSet<Capability> = self
            .cap_drop
            .iter()
            .filter_map(|c| c.parse().ok())
            .collect();
        crate::docker_default::default_capabilities()
            .iter()
            .chain(&self.cap_add)
            .filter(|c| !dropped.contains(c))
            .copied()
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read capability settings {}: {}", path.display(), io_message(source))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("capability settings {} are not valid at line {line}, column {column} ({detail}); pass a file written by `cinch generate --caps-out`", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        detail: String,
    },
    #[error("settings {} have schema version {found}, this cinch reads 1 to {SETTINGS_VERSION}; use the cinch that wrote them, or generate them again with this one", path.display())]
    UnsupportedVersion { path: PathBuf, found: u32 },
}

pub fn read_cap_settings(path: &Path) -> Result<CapSettings, SettingsError> {
    let bytes = crate::files::read_input(path).map_err(|source| SettingsError::Io {
        path: path.to_owned(),
        source,
    })?;
    let settings: CapSettings =
        serde_json::from_slice(&bytes).map_err(|e| SettingsError::Invalid {
            path: path.to_owned(),
            line: e.line(),
            column: e.column(),
            detail: serde_detail(&e),
        })?;
    if settings.schema_version > SETTINGS_VERSION {
        return Err(SettingsError::UnsupportedVersion {
            path: path.to_owned(),
            found: settings.schema_version,
        });
    }
    Ok(settings)
}

/// Everything the recordings say about capabilities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapAnalysis {
    pub settings: CapSettings,
    /// Checks the kernel refused (and that were not noise) for capabilities that are not in
    /// `cap_add`: the workload ran without them, so they are not added; listed for the user.
    pub denied: BTreeMap<Capability, Vec<CapReason>>,
    /// Checks a rule says are not needs (granted or not), by capability, with the reasons.
    pub ruled_out: BTreeMap<Capability, BTreeSet<String>>,
    /// Capability numbers this build cannot name.
    pub unknown: BTreeSet<u32>,
}

fn syscall_label(
    obs: &Observed,
    syscall: Option<(Arch, u32)>,
    recorded: &BTreeSet<String>,
) -> Option<String> {
    let (arch, nr) = syscall?;
    let name = naming::syscall_name(arch, nr)
        .or_else(|| recorded.iter().next().cloned())
        .unwrap_or_else(|| format!("syscall {nr}"));
    if obs.hosts.contains(&arch) {
        Some(name)
    } else {
        Some(format!("{name} ({arch})"))
    }
}

/// What `record --prove-caps` showed of a capability.
enum Proven {
    Needed(String),
    NotNeeded(String),
}

/// The proofs' verdict on each candidate. A capability is left out only when every recording
/// that proves anything about it ran the same without it; one that ran otherwise keeps it.
fn proven(
    obs: &Observed,
    candidates: impl Iterator<Item = Capability>,
) -> Vec<(Capability, Proven)> {
    let mut out = Vec::new();
    for cap in candidates {
        let verdicts: Vec<(bool, String)> = obs
            .capability_proofs
            .iter()
            .filter_map(|(path, proof)| {
                let needed = proof.needed(cap)?;
                let without = proof.exit_without.get(&cap)?;
                Some((
                    needed,
                    format!(
                        "{}: exit {without} without it, {} with it (re-run by record --prove-caps, {})",
                        if needed { "needed" } else { "not needed" },
                        proof.exit_with_all,
                        path.display()
                    ),
                ))
            })
            .collect();
        if verdicts.is_empty() {
            continue;
        }
        let texts = |needed: bool| {
            verdicts
                .iter()
                .filter(|(n, _)| *n == needed)
                .map(|(_, t)| t.clone())
                .collect::<Vec<_>>()
                .join("; ")
        };
        if verdicts.iter().any(|(needed, _)| *needed) {
            out.push((cap, Proven::Needed(texts(true))));
        } else {
            out.push((cap, Proven::NotNeeded(texts(false))));
        }
    }
    out
}

/// Reasons by capability, one per (syscall, caller).
type ReasonMap = BTreeMap<Capability, BTreeMap<(Option<String>, String), CapReason>>;

pub fn analyze(obs: &Observed) -> CapAnalysis {
    let mut granted = ReasonMap::new();
    let mut denied = ReasonMap::new();
    // Granted checks a rule says are not needs: their reasons, kept in case a proof shows the
    // capability was needed after all.
    let mut granted_ruled_out = ReasonMap::new();
    let mut ruled_out: BTreeMap<Capability, BTreeSet<String>> = BTreeMap::new();
    let mut unknown = BTreeSet::new();
    for (key, ev) in &obs.capabilities {
        let Some(cap) = Capability::from_number(key.cap) else {
            unknown.insert(key.cap);
            continue;
        };
        let target = match (&key.not_a_need, key.granted) {
            (Some(why), granted) => {
                ruled_out.entry(cap).or_default().insert(why.clone());
                if !granted {
                    continue;
                }
                &mut granted_ruled_out
            }
            (None, true) => &mut granted,
            (None, false) => &mut denied,
        };
        let syscall = syscall_label(obs, key.syscall, &ev.syscall_names);
        let reason = target
            .entry(cap)
            .or_default()
            .entry((syscall.clone(), key.caller.clone()))
            .or_insert_with(|| CapReason {
                syscall,
                caller: key.caller.clone(),
                count: 0,
                comms: BTreeSet::new(),
            });
        reason.count = reason.count.max(ev.count);
        reason.comms.extend(ev.comms.iter().cloned());
    }
    let flatten = |m: ReasonMap| -> BTreeMap<Capability, Vec<CapReason>> {
        m.into_iter()
            .map(|(cap, rs)| (cap, rs.into_values().collect()))
            .collect()
    };
    let mut reasons = flatten(granted);
    let mut granted_ruled_out = flatten(granted_ruled_out);
    granted_ruled_out.retain(|cap, _| !reasons.contains_key(cap));
    let mut denied = flatten(denied);
    denied.retain(|cap, _| !reasons.contains_key(cap) && !granted_ruled_out.contains_key(cap));
    // What the rules said of a capability granted only in checks they rule out.
    let rules_said = |cap: &Capability| -> String {
        ruled_out
            .get(cap)
            .map(|w| w.iter().cloned().collect::<Vec<_>>().join("; "))
            .unwrap_or_default()
    };
    let mut notes = BTreeMap::new();
    let mut unneeded = BTreeMap::new();
    // A proof is the ground truth: it removes a capability the rules kept, and keeps one they
    // ruled out when the command ran otherwise without it.
    let candidates: Vec<Capability> = reasons
        .keys()
        .chain(granted_ruled_out.keys())
        .copied()
        .collect();
    for (cap, verdict) in proven(obs, candidates.into_iter()) {
        let ruled = granted_ruled_out.remove(&cap);
        match (verdict, ruled) {
            (Proven::Needed(text), None) => {
                notes.insert(cap, text);
            }
            (Proven::Needed(text), Some(rs)) => {
                notes.insert(
                    cap,
                    format!("{text}; kept although the rules said: {}", rules_said(&cap)),
                );
                reasons.insert(cap, rs);
            }
            (Proven::NotNeeded(text), None) => {
                reasons.remove(&cap);
                unneeded.insert(cap, text);
            }
            (Proven::NotNeeded(text), Some(_)) => {
                let text = text.strip_prefix("not needed: ").unwrap_or(&text);
                unneeded.insert(cap, format!("not needed: {}; {text}", rules_said(&cap)));
            }
        }
    }
    for cap in granted_ruled_out.keys() {
        unneeded.insert(*cap, format!("not needed: {}", rules_said(cap)));
    }
    let cap_add: BTreeSet<Capability> = reasons.keys().copied().collect();
    if cap_add.contains(&Capability::NET_BIND_SERVICE) {
        let note = notes.entry(Capability::NET_BIND_SERVICE).or_default();
        if !note.is_empty() {
            note.push_str("; ");
        }
        note.push_str(NET_BIND_SERVICE_NOTE);
    }
    CapAnalysis {
        settings: CapSettings {
            schema_version: SETTINGS_VERSION,
            cap_drop: vec!["ALL".to_owned()],
            cap_add,
            reasons,
            notes,
            not_needed: unneeded,
            network: None,
            secrets: Vec::new(),
            secret_files: Vec::new(),
            images: Vec::new(),
            no_new_privileges: None,
            filesystem: None,
            user: None,
            limits: None,
        },
        denied,
        ruled_out,
        unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A proof overturns a rule: a capability ruled a query is kept when the command ran
    /// otherwise without it, and the note gives both.
    #[test]
    fn a_proof_overturns_a_rule() {
        use crate::recording::CapabilityProof;
        let mut obs = Observed::default();
        obs.capabilities.insert(
            CapCheckKey {
                cap: Capability::FSETID.number(),
                granted: true,
                syscall: None,
                caller: "setattr_prepare".to_owned(),
                not_a_need: Some("CAP_FSETID only keeps set-id bits".to_owned()),
            },
            CapEvidence::default(),
        );
        assert!(analyze(&obs).settings.cap_add.is_empty());
        obs.capability_proofs.insert(
            PathBuf::from("a.json"),
            CapabilityProof {
                exit_with_all: 0,
                exit_without: [(Capability::FSETID, 3)].into(),
                inconclusive: None,
            },
        );
        let s = analyze(&obs).settings;
        assert_eq!(s.cap_add, [Capability::FSETID].into());
        let note = &s.notes[&Capability::FSETID];
        assert!(
            note.starts_with("needed: exit 3 without it")
                && note
                    .ends_with("kept although the rules said: CAP_FSETID only keeps set-id bits"),
            "{note}"
        );
        assert!(s.not_needed.is_empty());
        assert_eq!(s.reasons[&Capability::FSETID][0].caller, "setattr_prepare");
    }

    /// A proof leaves out what the command ran the same without, and says why for both.
    #[test]
    fn a_proof_keeps_only_what_changed_the_outcome() {
        use crate::recording::CapabilityProof;
        let key = |cap: u32| CapCheckKey {
            cap,
            granted: true,
            syscall: None,
            caller: "some_caller".to_owned(),
            not_a_need: None,
        };
        let mut obs = Observed::default();
        for cap in [Capability::CHOWN, Capability::DAC_READ_SEARCH] {
            obs.capabilities
                .insert(key(cap.number()), CapEvidence::default());
        }
        let proof = CapabilityProof {
            exit_with_all: 0,
            exit_without: [(Capability::CHOWN, 1), (Capability::DAC_READ_SEARCH, 0)].into(),
            inconclusive: None,
        };
        obs.capability_proofs
            .insert(PathBuf::from("a.json"), proof.clone());
        let s = analyze(&obs).settings;
        assert_eq!(s.cap_add, [Capability::CHOWN].into());
        assert!(s.notes[&Capability::CHOWN].starts_with("needed: exit 1 without it, 0 with it"));
        assert!(
            s.not_needed[&Capability::DAC_READ_SEARCH]
                .starts_with("not needed: exit 0 without it, 0 with it")
        );
        // Another recording that needed it keeps it.
        let mut other = proof.clone();
        other.exit_without.insert(Capability::DAC_READ_SEARCH, 2);
        obs.capability_proofs.insert(PathBuf::from("b.json"), other);
        assert!(
            analyze(&obs)
                .settings
                .cap_add
                .contains(&Capability::DAC_READ_SEARCH)
        );
        // An inconclusive proof proves nothing.
        let mut obs2 = obs.clone();
        obs2.capability_proofs.clear();
        let mut flaky = proof;
        flaky.inconclusive = Some("flaky".to_owned());
        obs2.capability_proofs
            .insert(PathBuf::from("c.json"), flaky);
        let s = analyze(&obs2).settings;
        assert_eq!(s.cap_add.len(), 2);
        assert!(s.not_needed.is_empty());
    }
    use crate::observed::{CapCheckKey, CapEvidence};

    fn check(
        cap: u32,
        granted: bool,
        caller: &str,
        not_a_need: Option<&str>,
        count: u64,
    ) -> (CapCheckKey, CapEvidence) {
        (
            CapCheckKey {
                cap,
                granted,
                syscall: Some((Arch::X86_64, 49)),
                caller: caller.to_owned(),
                not_a_need: not_a_need.map(str::to_owned),
            },
            CapEvidence {
                count,
                comms: ["srv".to_owned()].into_iter().collect(),
                syscall_names: BTreeSet::new(),
            },
        )
    }

    #[test]
    fn granted_real_needs_are_added_with_reasons() {
        let mut obs = Observed::default();
        obs.hosts.insert(Arch::X86_64);
        obs.capabilities.extend([
            check(10, true, "inet_bind_common", None, 2),
            check(
                21,
                true,
                "security_vm_enough_memory_mm",
                Some("vm-overcommit"),
                90,
            ),
            check(12, false, "dev_ioctl", None, 1),
            check(55, true, "x", None, 1),
        ]);
        let a = analyze(&obs);
        assert_eq!(
            a.settings
                .cap_add
                .iter()
                .map(|c| c.docker_name())
                .collect::<Vec<_>>(),
            ["NET_BIND_SERVICE"]
        );
        let r = &a.settings.reasons[&Capability::NET_BIND_SERVICE][0];
        assert_eq!(
            (r.syscall.as_deref(), r.caller.as_str(), r.count),
            (Some("bind"), "inet_bind_common", 2)
        );
        assert!(a.settings.notes.contains_key(&Capability::NET_BIND_SERVICE));
        assert!(a.denied.contains_key(&Capability::NET_ADMIN));
        assert!(a.ruled_out.contains_key(&Capability::SYS_ADMIN));
        assert_eq!(
            a.settings.not_needed[&Capability::SYS_ADMIN],
            "not needed: vm-overcommit"
        );
        assert_eq!(a.unknown, [55].into_iter().collect());
        let json = String::from_utf8(a.settings.to_json()).expect("utf-8");
        assert!(json.starts_with("{\n  \"schema_version\": 2,\n  \"cap_drop\": [\n    \"ALL\"\n  ],\n  \"cap_add\": [\n    \"NET_BIND_SERVICE\"\n  ]"), "{json}");
        // A file from before the schema version reads as version 1; a newer one is refused.
        let old: CapSettings =
            serde_json::from_str(r#"{"cap_drop":["ALL"],"cap_add":["CHOWN"]}"#).expect("v1");
        assert_eq!(old.schema_version, 1);
        let back: CapSettings = serde_json::from_str(&json).expect("reads back");
        assert_eq!(back, a.settings);
    }
}
