//! What a set of recordings observed, merged.
//!
//! The merge is a join: sets are united and counts take the maximum, so merging is commutative,
//! associative and idempotent (merging a recording with itself, or passing the same file twice,
//! changes nothing). Counts are therefore "at least this many times in one recording", evidence
//! for a reason, not a total.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::arch::Arch;
use crate::recording::Recording;

/// One kind of capability check: the same capability, result, syscall and kernel caller.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CapCheckKey {
    /// Kernel capability number (may be beyond what this build can name).
    pub cap: u32,
    pub granted: bool,
    /// The syscall in progress: architecture and number.
    pub syscall: Option<(Arch, u32)>,
    pub caller: String,
    /// The noise rule that matched, when the check is not a real need.
    pub noise: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapEvidence {
    /// Largest count seen in one recording.
    pub count: u64,
    pub comms: BTreeSet<String>,
    /// Names the recordings gave the syscall (used when this build cannot name the number).
    pub syscall_names: BTreeSet<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// Native architectures of the recording hosts: always in the profile's architectures.
    pub hosts: BTreeSet<Arch>,
    /// Syscall numbers per architecture, with the names the recordings gave them.
    pub syscalls: BTreeMap<Arch, BTreeMap<u32, BTreeSet<String>>>,
    pub capabilities: BTreeMap<CapCheckKey, CapEvidence>,
    /// Recordings that did not observe the workload's start (attach), by file.
    pub startup_unobserved: BTreeSet<PathBuf>,
    /// Recordings that lost syscall observations, with the largest loss.
    pub lost_syscalls: BTreeMap<PathBuf, u64>,
    /// Warnings the recordings carry, by file.
    pub warnings: BTreeMap<PathBuf, BTreeSet<String>>,
}

impl Observed {
    /// The observations of one recording read from `path`.
    pub fn from_recording(path: PathBuf, rec: &Recording) -> Observed {
        let mut out = Observed::default();
        out.hosts.insert(rec.host.arch);
        for (arch, calls) in &rec.syscalls {
            let table = out.syscalls.entry(*arch).or_default();
            for call in calls {
                let names = table.entry(call.nr).or_default();
                if let Some(name) = &call.name {
                    names.insert(name.clone());
                }
            }
        }
        for check in &rec.capabilities {
            let key = CapCheckKey {
                cap: check.cap,
                granted: check.granted,
                syscall: check.syscall.as_ref().map(|s| (s.arch, s.nr)),
                caller: check.caller.clone(),
                noise: check.noise.clone(),
            };
            let ev = out.capabilities.entry(key).or_default();
            ev.count = ev.count.max(check.count);
            ev.comms.extend(check.comms.iter().cloned());
            if let Some(name) = check.syscall.as_ref().and_then(|s| s.name.clone()) {
                ev.syscall_names.insert(name);
            }
        }
        if !rec.startup_observed {
            out.startup_unobserved.insert(path.clone());
        }
        if rec.lost.syscalls > 0 {
            out.lost_syscalls.insert(path.clone(), rec.lost.syscalls);
        }
        if !rec.warnings.is_empty() {
            out.warnings
                .insert(path, rec.warnings.iter().cloned().collect());
        }
        out
    }

    /// The join of two observations.
    pub fn merge(&self, other: &Observed) -> Observed {
        let mut out = self.clone();
        out.merge_in(other);
        out
    }

    pub fn merge_in(&mut self, other: &Observed) {
        self.hosts.extend(other.hosts.iter().copied());
        for (arch, table) in &other.syscalls {
            let mine = self.syscalls.entry(*arch).or_default();
            for (nr, names) in table {
                mine.entry(*nr).or_default().extend(names.iter().cloned());
            }
        }
        for (key, ev) in &other.capabilities {
            let mine = self.capabilities.entry(key.clone()).or_default();
            mine.count = mine.count.max(ev.count);
            mine.comms.extend(ev.comms.iter().cloned());
            mine.syscall_names.extend(ev.syscall_names.iter().cloned());
        }
        self.startup_unobserved
            .extend(other.startup_unobserved.iter().cloned());
        for (path, lost) in &other.lost_syscalls {
            let mine = self.lost_syscalls.entry(path.clone()).or_default();
            *mine = (*mine).max(*lost);
        }
        for (path, warnings) in &other.warnings {
            self.warnings
                .entry(path.clone())
                .or_default()
                .extend(warnings.iter().cloned());
        }
    }

    /// Number of distinct (architecture, number) syscalls.
    pub fn syscall_count(&self) -> usize {
        self.syscalls.values().map(BTreeMap::len).sum()
    }
}
