//! `cinch diff OLD NEW`: does NEW need anything OLD does not allow?
//!
//! Each side is a profile (Docker / OCI JSON, or an SPO resource) or a recording, detected by
//! shape. A profile contributes the names it allows on each of its architectures; a recording the
//! names it observed on each architecture and the capabilities it needed. Only sets are compared,
//! so ordering and formatting never count as drift.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::allowlist::{self, CapSettings};
use crate::arch::Arch;
use crate::arg_rules::{self, Allowance};
use crate::arguments;
use crate::capability::Capability;
use crate::generate::name_observations;
use crate::kernel_issued;
use crate::observed::Observed;
use crate::profile::{self, LoadedProfile, ProfileError, ProfileFlavor, Target};
use crate::recording::{self, Recording, RecordingError};

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error(transparent)]
    Recording(#[from] RecordingError),
    #[error(transparent)]
    Profile(#[from] ProfileError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SideKind {
    Profile,
    Recording,
}

/// One side of a diff, reduced to what is compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Side {
    pub path: PathBuf,
    pub kind: SideKind,
    pub architectures: BTreeSet<Arch>,
    /// Allowed (profile) or needed (recording) names per architecture.
    pub syscalls: BTreeMap<Arch, BTreeSet<String>>,
    /// Needed (recording) or granted (settings file) capabilities; `None` when unknown.
    pub capabilities: Option<BTreeSet<Capability>>,
    /// What is allowed (profile) or needed (recording) of each argument-sensitive syscall.
    pub arguments: BTreeMap<String, Allowance>,
    /// What could not be compared.
    pub notes: Vec<String>,
    /// Names in a profile's allowing rules that no syscall table knows (typos, or syscalls newer
    /// than libseccomp and cinch): ignored, as runtimes ignore them, and said on stderr.
    #[serde(skip)]
    pub unknown_names: BTreeSet<String>,
}

impl Side {
    pub fn from_profile(p: &LoadedProfile) -> Side {
        let syscalls = p
            .architectures
            .iter()
            .map(|a| (*a, p.allowed_on(*a)))
            .collect();
        let mut notes = Vec::new();
        if !p.other_architectures.is_empty() {
            notes.push(format!(
                "{}: architectures not compared: {}",
                p.path.display(),
                p.other_architectures
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let unknown = p.unknown_names();
        if !unknown.is_empty() {
            notes.push(format!(
                "{}: names no syscall table knows, ignored: {}",
                p.path.display(),
                unknown.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        if p.allows_by_default() {
            notes.push(format!(
                "{}: allows every syscall it does not list (defaultAction {})",
                p.path.display(),
                p.default_action
            ));
        }
        if let Some(e) = &p.load_error {
            notes.push(format!(
                "{}: a runtime would refuse it ({e}); compared as written, argument conditions not compared",
                p.path.display()
            ));
        }
        if let ProfileFlavor::Spo { .. } = p.flavor {
            notes.push(format!(
                "{}: read as a Security Profiles Operator SeccompProfile",
                p.path.display()
            ));
        }
        Side {
            path: p.path.clone(),
            kind: SideKind::Profile,
            arguments: p.arguments.clone(),
            architectures: p.architectures.clone(),
            syscalls,
            capabilities: None,
            notes,
            unknown_names: unknown,
        }
    }

    pub fn from_recording(path: &Path, rec: &Recording) -> Side {
        let obs = Observed::from_recording(path.to_owned(), rec);
        let named = name_observations(&obs);
        let mut notes = Vec::new();
        for u in &named.unnamed {
            notes.push(format!(
                "{}: {} syscall number {} has no name and is not compared",
                path.display(),
                u.arch,
                u.nr
            ));
        }
        if !rec.startup_observed {
            notes.push(format!(
                "{}: did not observe the start (startup_observed: false); the runtime baseline `cinch generate` adds is not part of it",
                path.display()
            ));
        }
        let caps = allowlist::analyze(&obs).settings.cap_add;
        let architectures: BTreeSet<Arch> = obs
            .syscalls
            .keys()
            .copied()
            .chain(obs.hosts.iter().copied())
            .collect();
        // What the workload needs includes what the kernel can make it issue, whatever the
        // recording saw (as `cinch generate` allows them).
        let mut syscalls = named.by_arch.clone();
        for (arch, names) in
            kernel_issued::required(&architectures, &named.by_arch, &obs.inherited_handlers)
        {
            syscalls
                .entry(arch)
                .or_default()
                .extend(names.into_iter().map(str::to_owned));
        }
        // A recorded clone3 is answered with ENOSYS by the profiles cinch generates, and glibc
        // then calls clone without namespace flags: that is what the workload needs allowed.
        let mut arguments = arg_rules::needs(&obs);
        let mut fallback = false;
        for names in syscalls.values_mut() {
            if names.remove("clone3") {
                names.insert("clone".to_owned());
                fallback = true;
            }
        }
        if fallback && let Some(Allowance::Values(values)) = arguments.get_mut("clone") {
            values.insert(0);
        }
        Side {
            path: path.to_owned(),
            kind: SideKind::Recording,
            arguments,
            architectures,
            syscalls,
            capabilities: Some(caps),
            notes,
            unknown_names: BTreeSet::new(),
        }
    }

    /// Uses a settings file for the capabilities (for a profile side, which has none).
    pub fn with_settings(mut self, settings: &CapSettings) -> Side {
        self.capabilities = Some(settings.cap_add.clone());
        self
    }
}

/// Reads OLD or NEW: a recording when the JSON has `schema_version`, a profile otherwise (loaded
/// for `target`).
pub fn read_side(path: &Path, target: &Target) -> Result<Side, InputError> {
    let bytes = crate::files::read_input(path).map_err(|source| ProfileError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse_side(&bytes, path, target)
}

/// [`read_side`] on bytes already read; `path` is only used in messages.
pub fn parse_side(bytes: &[u8], path: &Path, target: &Target) -> Result<Side, InputError> {
    let is_recording = serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .is_some_and(|v| v.get("schema_version").is_some());
    if is_recording {
        let rec = recording::parse_recording(bytes, path)?;
        Ok(Side::from_recording(path, &rec))
    } else {
        Ok(Side::from_profile(&profile::parse_profile(
            bytes, path, target,
        )?))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Changes {
    pub syscalls: BTreeMap<Arch, BTreeSet<String>>,
    pub capabilities: BTreeSet<Capability>,
    /// Argument values of syscalls both sides allow: needed by NEW and refused by OLD (in
    /// `added`), or allowed by OLD and no longer needed (in `removed`), in words.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub arguments: BTreeMap<String, BTreeSet<String>>,
}

impl Changes {
    fn syscall_count(&self) -> usize {
        self.syscalls.values().map(BTreeSet::len).sum()
    }

    fn is_empty(&self) -> bool {
        self.syscall_count() == 0 && self.capabilities.is_empty() && self.arguments.is_empty()
    }
}

/// Argument drift of the syscalls both sides allow at all: (added, removed), in words.
type ArgumentChanges = (
    BTreeMap<String, BTreeSet<String>>,
    BTreeMap<String, BTreeSet<String>>,
);

fn argument_changes(old: &Side, new: &Side) -> ArgumentChanges {
    let mut added: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut removed: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, n) in &new.arguments {
        let (Some(o), Some(entry)) = (
            old.arguments.get(name),
            arguments::ARG_SYSCALLS.iter().find(|a| a.name == name),
        ) else {
            continue;
        };
        match n {
            Allowance::Values(values) => {
                let plus: BTreeSet<String> = values
                    .iter()
                    .filter(|v| o.allows(entry, **v) == Some(false))
                    .map(|v| arg_rules::value_name(name, *v))
                    .collect();
                if !plus.is_empty() {
                    added.insert(name.clone(), plus);
                }
                if let Allowance::Values(was) = o {
                    let minus: BTreeSet<String> = was
                        .difference(values)
                        .map(|v| arg_rules::value_name(name, *v))
                        .collect();
                    if !minus.is_empty() && new.kind == SideKind::Profile {
                        removed.insert(name.clone(), minus);
                    }
                }
            }
            other if other != o && *o != Allowance::Any => {
                added.insert(name.clone(), [other.describe(name)].into());
            }
            _ => {}
        }
    }
    (added, removed)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diff {
    pub drift: bool,
    pub old: Side,
    pub new: Side,
    /// Needed by NEW, not allowed by OLD.
    pub added: Changes,
    /// Allowed by OLD, no longer needed by NEW.
    pub removed: Changes,
    pub capabilities_compared: bool,
    pub notes: Vec<String>,
}

pub fn diff(old: Side, new: Side) -> Diff {
    let arches: BTreeSet<Arch> = old
        .syscalls
        .keys()
        .chain(new.syscalls.keys())
        .copied()
        .collect();
    let empty = BTreeSet::new();
    let (added_args, removed_args) = argument_changes(&old, &new);
    let mut added = Changes {
        syscalls: BTreeMap::new(),
        capabilities: BTreeSet::new(),
        arguments: added_args,
    };
    let mut removed = Changes {
        syscalls: BTreeMap::new(),
        capabilities: BTreeSet::new(),
        arguments: removed_args,
    };
    let mut notes: Vec<String> = old.notes.iter().chain(new.notes.iter()).cloned().collect();
    for arch in arches {
        let o = old.syscalls.get(&arch).unwrap_or(&empty);
        let n = new.syscalls.get(&arch).unwrap_or(&empty);
        let plus: BTreeSet<String> = n.difference(o).cloned().collect();
        let minus: BTreeSet<String> = o.difference(n).cloned().collect();
        if !plus.is_empty() {
            if !old.architectures.contains(&arch) {
                notes.push(format!(
                    "{} does not cover architecture {arch} at all",
                    old.path.display()
                ));
            }
            added.syscalls.insert(arch, plus);
        }
        if !minus.is_empty() {
            removed.syscalls.insert(arch, minus);
        }
    }
    let capabilities_compared = match (&old.capabilities, &new.capabilities) {
        (Some(o), Some(n)) => {
            added.capabilities = n.difference(o).copied().collect();
            removed.capabilities = o.difference(n).copied().collect();
            true
        }
        (None, Some(n)) if !n.is_empty() => {
            notes.push(format!(
                "capabilities not compared: {} has none on record; pass --old-caps SETTINGS.json (NEW needs {})",
                old.path.display(),
                n.iter().map(|c| c.docker_name()).collect::<Vec<_>>().join(", ")
            ));
            false
        }
        _ => false,
    };
    Diff {
        drift: !added.is_empty(),
        old,
        new,
        added,
        removed,
        capabilities_compared,
        notes,
    }
}

fn join(names: &BTreeSet<String>) -> String {
    names
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

fn caps_join(caps: &BTreeSet<Capability>) -> String {
    caps.iter()
        .map(|c| c.docker_name())
        .collect::<Vec<_>>()
        .join(", ")
}

fn side_label(s: &Side) -> String {
    let kind = match s.kind {
        SideKind::Profile => "profile",
        SideKind::Recording => "recording",
    };
    let arches: Vec<&str> = s.architectures.iter().map(|a| a.as_str()).collect();
    format!("{} ({kind}: {})", s.path.display(), arches.join(", "))
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl Diff {
    fn headline(&self) -> String {
        let mut parts = Vec::new();
        let n = self.added.syscall_count();
        if n > 0 {
            parts.push(plural(n, "syscall", "syscalls"));
        }
        if !self.added.capabilities.is_empty() {
            parts.push(plural(
                self.added.capabilities.len(),
                "capability",
                "capabilities",
            ));
        }
        let args: usize = self.added.arguments.values().map(BTreeSet::len).sum();
        if args > 0 {
            parts.push(plural(args, "argument value", "argument values"));
        }
        parts.join(" and ")
    }

    pub fn render_text(&self) -> String {
        let mut out = format!(
            "OLD {}\nNEW {}\n",
            side_label(&self.old),
            side_label(&self.new)
        );
        if self.drift {
            out.push_str(&format!(
                "drift: NEW needs {} that OLD does not allow\n",
                self.headline()
            ));
            for (arch, names) in &self.added.syscalls {
                out.push_str(&format!("  + {arch}: {}\n", join(names)));
            }
            let kernel: BTreeSet<String> = self
                .added
                .syscalls
                .values()
                .flatten()
                .filter(|n| kernel_issued::rule(n).is_some())
                .cloned()
                .collect();
            for (name, values) in &self.added.arguments {
                out.push_str(&format!("  + {name}: {}\n", join(values)));
            }
            if !kernel.is_empty() {
                out.push_str(&format!(
                    "    ({}: issued by the kernel, not the program, so needed whatever a recording saw; `cinch report` says why)\n",
                    join(&kernel)
                ));
            }
            if !self.added.capabilities.is_empty() {
                out.push_str(&format!(
                    "  + capabilities: {}\n",
                    caps_join(&self.added.capabilities)
                ));
            }
        } else {
            out.push_str("no drift: NEW needs nothing that OLD does not allow\n");
        }
        if !self.removed.is_empty() {
            out.push_str("no longer needed by NEW (OLD allows them):\n");
            for (arch, names) in &self.removed.syscalls {
                out.push_str(&format!("  - {arch}: {}\n", join(names)));
            }
            if !self.removed.capabilities.is_empty() {
                out.push_str(&format!(
                    "  - capabilities: {}\n",
                    caps_join(&self.removed.capabilities)
                ));
            }
            for (name, values) in &self.removed.arguments {
                out.push_str(&format!("  - {name}: {}\n", join(values)));
            }
        }
        for note in &self.notes {
            out.push_str(&format!("note: {note}\n"));
        }
        out
    }

    /// Ready for `$GITHUB_STEP_SUMMARY` or a PR comment.
    pub fn render_markdown(&self) -> String {
        let code = |names: &BTreeSet<String>| {
            names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let old = format!("`{}`", self.old.path.display());
        let new = format!("`{}`", self.new.path.display());
        let mut out = String::new();
        if self.drift {
            out.push_str("### cinch: seccomp drift\n\n");
            out.push_str(&format!(
                "{new} needs **{}** that {old} does not allow.\n\n",
                self.headline()
            ));
        } else {
            out.push_str("### cinch: no seccomp drift\n\n");
            out.push_str(&format!(
                "{new} needs nothing that {old} does not allow.\n\n"
            ));
        }
        let arches: BTreeSet<Arch> = self
            .added
            .syscalls
            .keys()
            .chain(self.removed.syscalls.keys())
            .copied()
            .collect();
        if !arches.is_empty() {
            out.push_str(
                "| architecture | needed, not allowed | no longer needed |\n| --- | --- | --- |\n",
            );
            let empty = BTreeSet::new();
            for arch in arches {
                let plus = self.added.syscalls.get(&arch).unwrap_or(&empty);
                let minus = self.removed.syscalls.get(&arch).unwrap_or(&empty);
                let cell = |s: &BTreeSet<String>| {
                    if s.is_empty() {
                        "none".to_owned()
                    } else {
                        code(s)
                    }
                };
                out.push_str(&format!("| {arch} | {} | {} |\n", cell(plus), cell(minus)));
            }
            out.push('\n');
        }
        if !self.added.capabilities.is_empty() || !self.removed.capabilities.is_empty() {
            out.push_str("| capability | change |\n| --- | --- |\n");
            for cap in &self.added.capabilities {
                out.push_str(&format!("| `{cap}` | needed, not allowed |\n"));
            }
            for cap in &self.removed.capabilities {
                out.push_str(&format!("| `{cap}` | no longer needed |\n"));
            }
            out.push('\n');
        }
        if !self.added.arguments.is_empty() || !self.removed.arguments.is_empty() {
            out.push_str("| syscall | argument values | change |\n| --- | --- | --- |\n");
            for (name, values) in &self.added.arguments {
                out.push_str(&format!(
                    "| `{name}` | {} | needed, not allowed |\n",
                    code(values)
                ));
            }
            for (name, values) in &self.removed.arguments {
                out.push_str(&format!(
                    "| `{name}` | {} | no longer needed |\n",
                    code(values)
                ));
            }
            out.push('\n');
        }
        for note in &self.notes {
            out.push_str(&format!("> {note}\n"));
        }
        if !self.notes.is_empty() {
            out.push('\n');
        }
        out
    }

    pub fn render_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(kind: SideKind, names: &[(Arch, &[&str])], caps: Option<&[Capability]>) -> Side {
        Side {
            path: PathBuf::from(if kind == SideKind::Profile {
                "old.json"
            } else {
                "new.json"
            }),
            kind,
            architectures: names.iter().map(|(a, _)| *a).collect(),
            syscalls: names
                .iter()
                .map(|(a, n)| (*a, n.iter().map(|s| s.to_string()).collect()))
                .collect(),
            capabilities: caps.map(|c| c.iter().copied().collect()),
            arguments: BTreeMap::new(),
            notes: vec![],
            unknown_names: BTreeSet::new(),
        }
    }

    #[test]
    fn argument_drift_names_the_new_values() {
        let mut old = side(
            SideKind::Profile,
            &[(Arch::X86_64, &["socket", "ioctl"])],
            None,
        );
        let mut new = side(
            SideKind::Recording,
            &[(Arch::X86_64, &["socket", "ioctl"])],
            None,
        );
        old.arguments
            .insert("socket".into(), Allowance::Values([1, 2].into()));
        old.arguments.insert("ioctl".into(), Allowance::Any);
        new.arguments
            .insert("socket".into(), Allowance::Values([2, 16].into()));
        new.arguments
            .insert("ioctl".into(), Allowance::Values([0x5412].into()));
        let d = diff(old, new);
        assert!(d.drift);
        assert_eq!(
            d.added.arguments,
            [("socket".to_owned(), ["AF_NETLINK".to_owned()].into())].into()
        );
        assert!(
            d.render_text().contains("  + socket: AF_NETLINK\n"),
            "{}",
            d.render_text()
        );
        assert!(d.render_text().contains("1 argument value"));
        assert!(
            d.render_markdown()
                .contains("| `socket` | `AF_NETLINK` | needed, not allowed |"),
            "{}",
            d.render_markdown()
        );
    }

    #[test]
    fn drift_per_arch_and_capabilities() {
        let old = side(
            SideKind::Profile,
            &[(Arch::X86_64, &["read", "write", "chmod"])],
            Some(&[Capability::CHOWN]),
        );
        let new = side(
            SideKind::Recording,
            &[
                (Arch::X86_64, &["read", "write", "statx"]),
                (Arch::X86, &["read"]),
            ],
            Some(&[Capability::NET_ADMIN]),
        );
        let d = diff(old, new);
        assert!(d.drift);
        assert_eq!(
            d.added.syscalls[&Arch::X86_64],
            ["statx".to_string()].into_iter().collect()
        );
        assert!(d.added.syscalls.contains_key(&Arch::X86));
        assert_eq!(
            d.added.capabilities,
            [Capability::NET_ADMIN].into_iter().collect()
        );
        assert_eq!(
            d.removed.capabilities,
            [Capability::CHOWN].into_iter().collect()
        );
        assert!(d.render_text().contains("  + x86_64: statx"));
        assert!(
            d.render_markdown()
                .contains("| x86_64 | `statx` | `chmod` |")
        );
        let json: serde_json::Value = serde_json::from_str(&d.render_json()).expect("json");
        assert_eq!(json["drift"], true);
        assert_eq!(json["added"]["syscalls"]["x86_64"][0], "statx");
    }

    #[test]
    fn fewer_needs_are_not_drift() {
        let old = side(
            SideKind::Profile,
            &[(Arch::X86_64, &["read", "write"])],
            None,
        );
        let new = side(SideKind::Recording, &[(Arch::X86_64, &["read"])], Some(&[]));
        let d = diff(old, new);
        assert!(!d.drift);
        assert!(d.render_text().contains("no drift"));
        assert!(d.render_text().contains("  - x86_64: write"));
    }

    #[test]
    fn uncomparable_capabilities_are_said() {
        let old = side(SideKind::Profile, &[(Arch::X86_64, &["read"])], None);
        let new = side(
            SideKind::Recording,
            &[(Arch::X86_64, &["read"])],
            Some(&[Capability::NET_RAW]),
        );
        let d = diff(old, new);
        assert!(!d.drift);
        assert!(!d.capabilities_compared);
        assert!(d.notes.iter().any(|n| n.contains("--old-caps")));
    }
}
