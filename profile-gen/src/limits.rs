//! Resource limits (`pids_limit`, `mem_limit`, `cpus`) from what the workload used.
//!
//! The kernel side counts, per target, the tasks alive and the most alive at once (what a
//! cgroup's `pids.max` counts), the most processes alive at once, the CPU time of each task
//! when it exits (`se.sum_exec_runtime`) and each process's peak resident set when it dies
//! (`signal->maxrss`). The peaks of the processes are summed: an upper bound of the most
//! resident at once, since they need not peak together and shared pages count in each.
//!
//! Each limit is the peak with headroom, stated in the settings: twice the tasks and 16 more;
//! twice the memory and 32 MiB more (the memory cgroup also charges page cache, tmpfs files and
//! kernel memory, which a resident set does not show); four times the average CPU use, at
//! least half a CPU (a CPU limit slows a workload, it does not stop it, and a test run's
//! average says little of its bursts). A recording that cannot say (it attached to running
//! processes, some were still alive when it ended, or it is older than this) gives no limits.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// What one recording's target used, from the kernel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// The most tasks (threads) alive at once: what a pids limit counts.
    pub threads_peak: u32,
    /// The most processes (thread groups) alive at once.
    pub processes_peak: u32,
    /// CPU time of all its tasks, in milliseconds.
    pub cpu_ms: u64,
    /// The peak resident set of each of its processes, summed, in bytes.
    pub memory_bytes: u64,
    /// How long the recording ran, in milliseconds.
    pub wall_ms: u64,
    /// Online CPUs of the host that recorded it.
    pub host_cpus: u32,
    /// Why the figures are not the whole run's, when they are not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<String>,
}

/// The limits to set, with the evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitsSetting {
    /// Tasks (`--pids-limit`); absent when the recordings cannot say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<u32>,
    /// Bytes (`--memory`), a whole number of MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
    /// Thousandths of a CPU (`--cpus` 0.5 is 500, Kubernetes' `500m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub millicpus: Option<u32>,
    pub why: String,
}

const MIB: u64 = 1 << 20;
/// Tasks added to twice the peak.
const PIDS_EXTRA: u32 = 16;
/// Bytes added to twice the memory.
const MEMORY_EXTRA: u64 = 32 * MIB;
/// The CPU limit is this many times the average use...
const CPU_FACTOR: u64 = 4;
/// ...and at least this (thousandths of a CPU).
const CPU_FLOOR: u32 = 500;

impl LimitsSetting {
    /// Whether it sets any limit.
    pub fn any(&self) -> bool {
        self.pids.is_some() || self.memory.is_some() || self.millicpus.is_some()
    }

    /// `pids 40, memory 48 MiB, cpus 0.5`, or `none`.
    pub fn label(&self) -> String {
        let mut parts = Vec::new();
        if let Some(p) = self.pids {
            parts.push(format!("pids {p}"));
        }
        if let Some(m) = self.memory {
            parts.push(format!("memory {} MiB", m / MIB));
        }
        if let Some(c) = self.millicpus {
            parts.push(format!("cpus {}", cpus(c)));
        }
        if parts.is_empty() {
            "none".to_owned()
        } else {
            parts.join(", ")
        }
    }

    /// Docker's `--memory` value: `48m`.
    pub fn docker_memory(&self) -> Option<String> {
        self.memory.map(|m| format!("{}m", m / MIB))
    }

    /// Docker's `--cpus` value: `0.5`.
    pub fn docker_cpus(&self) -> Option<String> {
        self.millicpus.map(cpus)
    }
}

/// `500` → `0.5`, `2000` → `2`.
fn cpus(millis: u32) -> String {
    let whole = millis / 1000;
    let frac = millis % 1000;
    if frac == 0 {
        return whole.to_string();
    }
    format!("{whole}.{frac:03}")
        .trim_end_matches('0')
        .to_owned()
}

/// `n` rounded up to a multiple of `step`.
fn round_up(n: u64, step: u64) -> u64 {
    n.div_ceil(step) * step
}

/// The limits the recordings support. `usages` is each recording's; `unknown` the recordings
/// that cannot say.
pub fn analyze(usages: &[Usage], unknown: &BTreeSet<PathBuf>) -> LimitsSetting {
    let none = |why: String| LimitsSetting {
        pids: None,
        memory: None,
        millicpus: None,
        why,
    };
    if !unknown.is_empty() {
        return none(format!(
            "{} cannot say what it used (recorded before cinch measured it): no limits",
            crate::observed::recordings(unknown.len())
        ));
    }
    if let Some(why) = usages.iter().find_map(|u| u.incomplete.as_deref()) {
        return none(format!("{why}: no limits"));
    }
    if usages.is_empty() {
        return none("no recording: no limits".to_owned());
    }
    let threads = usages.iter().map(|u| u.threads_peak).max().unwrap_or(0);
    let processes = usages.iter().map(|u| u.processes_peak).max().unwrap_or(0);
    let memory = usages.iter().map(|u| u.memory_bytes).max().unwrap_or(0);
    let host_cpus = usages.iter().map(|u| u.host_cpus).max().unwrap_or(1).max(1);
    // The busiest recording by average use.
    let busiest = usages
        .iter()
        .max_by_key(|u| u.cpu_ms * 1000 / u.wall_ms.max(1))
        .expect("not empty");
    let average_millis = busiest.cpu_ms * 1000 / busiest.wall_ms.max(1);
    let pids = (threads.saturating_mul(2)).max(threads.saturating_add(PIDS_EXTRA));
    let memory_limit = round_up(memory.saturating_mul(2).max(memory + MEMORY_EXTRA), MIB);
    let cpu_limit = u32::try_from(round_up(average_millis * CPU_FACTOR, 100))
        .unwrap_or(u32::MAX)
        .max(CPU_FLOOR)
        .min(host_cpus.saturating_mul(1000));
    let why = format!(
        "at most {threads} tasks ({processes} {}) at once; {} MiB resident (the peaks of its processes, summed); {} s of CPU in {} s ({} CPUs on average), on a {host_cpus}-CPU host. Limits: twice the tasks and {PIDS_EXTRA} more, twice the memory and {} MiB more (the memory cgroup also charges page cache and tmpfs files), {CPU_FACTOR} times the average CPU and at least {} (a CPU limit slows, it does not stop); a program that sizes its workers by the CPU count (nginx's worker_processes auto, Go's GOMAXPROCS) needs more tasks on a bigger host",
        if processes == 1 {
            "process"
        } else {
            "processes"
        },
        memory.div_ceil(MIB),
        seconds(busiest.cpu_ms),
        seconds(busiest.wall_ms),
        cpus(u32::try_from(average_millis).unwrap_or(u32::MAX)),
        MEMORY_EXTRA / MIB,
        cpus(CPU_FLOOR),
    );
    LimitsSetting {
        pids: Some(pids),
        memory: Some(memory_limit),
        millicpus: Some(cpu_limit),
        why,
    }
}

/// Milliseconds as seconds with two decimals.
fn seconds(ms: u64) -> String {
    format!("{}.{:02}", ms / 1000, (ms % 1000) / 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(threads: u32, memory_mib: u64, cpu_ms: u64, wall_ms: u64) -> Usage {
        Usage {
            threads_peak: threads,
            processes_peak: threads,
            cpu_ms,
            memory_bytes: memory_mib * MIB,
            wall_ms,
            host_cpus: 2,
            incomplete: None,
        }
    }

    #[test]
    fn limits_are_the_peaks_with_headroom() {
        let s = analyze(&[usage(3, 10, 100, 2000)], &BTreeSet::new());
        assert_eq!(s.pids, Some(19), "twice 3 is less than 3 + 16");
        assert_eq!(s.memory, Some(42 * MIB), "twice 10 is less than 10 + 32");
        assert_eq!(s.millicpus, Some(500), "4 x 0.05 is below the floor");
        assert_eq!(s.label(), "pids 19, memory 42 MiB, cpus 0.5");
        assert!(
            s.why
                .starts_with("at most 3 tasks (3 processes) at once; 10 MiB resident")
        );

        let s = analyze(&[usage(40, 100, 1500, 2000)], &BTreeSet::new());
        assert_eq!(s.pids, Some(80));
        assert_eq!(s.memory, Some(200 * MIB));
        assert_eq!(
            s.millicpus,
            Some(2000),
            "4 x 0.75 = 3, capped at the host's 2 CPUs"
        );
        assert_eq!(s.docker_memory().as_deref(), Some("200m"));
        assert_eq!(s.docker_cpus().as_deref(), Some("2"));
    }

    /// Recordings merge by their largest figures; the CPU by the busiest average.
    #[test]
    fn recordings_merge_by_their_peaks() {
        let s = analyze(
            &[usage(3, 50, 100, 1000), usage(8, 10, 300, 1000)],
            &BTreeSet::new(),
        );
        assert_eq!(s.pids, Some(24));
        assert_eq!(s.memory, Some(100 * MIB));
        assert_eq!(s.millicpus, Some(1200));
        assert_eq!(s.docker_cpus().as_deref(), Some("1.2"));
    }

    #[test]
    fn a_recording_that_cannot_say_gives_no_limits() {
        let mut partial = usage(3, 10, 100, 1000);
        partial.incomplete = Some("2 processes were still running when it ended".to_owned());
        let s = analyze(&[usage(3, 10, 100, 1000), partial], &BTreeSet::new());
        assert!(!s.any() && s.label() == "none", "{s:?}");
        assert!(s.why.contains("still running"), "{}", s.why);
        let s = analyze(&[], &[PathBuf::from("old.json")].into());
        assert!(
            !s.any() && s.why.starts_with("1 recording cannot say"),
            "{s:?}"
        );
    }

    #[test]
    fn cpus_are_written_as_docker_takes_them() {
        assert_eq!(cpus(500), "0.5");
        assert_eq!(cpus(1250), "1.25");
        assert_eq!(cpus(3000), "3");
    }
}
