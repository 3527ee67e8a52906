//! Every recording the bench makes is checked: nothing lost, and the measured syscall counted
//! at least as many times as the workload made it.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde_json::{Value, json};

/// What one recording says about completeness.
#[derive(Debug, Clone)]
pub(crate) struct RecordingCheck {
    pub what: String,
    pub path: PathBuf,
    pub lost_syscalls: u64,
    pub map_full: u64,
    pub ring_buffer_drops: u64,
    pub syscall: String,
    pub counted: u64,
    pub expected_at_least: u64,
    pub processes_seen: u64,
    pub expected_processes: u64,
}

impl RecordingCheck {
    /// Reads `path` and looks up how often `syscall` (x86_64 / native table) was counted.
    pub(crate) fn read(
        what: String,
        path: &Path,
        syscall: &str,
        expected_at_least: u64,
        expected_processes: u64,
    ) -> anyhow::Result<RecordingCheck> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the recording {}", path.display()))?;
        let rec: Value = serde_json::from_str(&text)
            .with_context(|| format!("parsing the recording {}", path.display()))?;
        let native = rec["host"]["arch"].as_str().unwrap_or("x86_64");
        let counted = rec["syscalls"][native]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["name"].as_str() == Some(syscall))
            .filter_map(|s| s["count"].as_u64())
            .sum();
        let lost = &rec["lost"];
        Ok(RecordingCheck {
            what,
            path: path.to_path_buf(),
            lost_syscalls: lost["syscalls"].as_u64().unwrap_or(u64::MAX),
            map_full: lost["map_full"].as_u64().unwrap_or(u64::MAX),
            ring_buffer_drops: lost["ring_buffer_drops"].as_u64().unwrap_or(0),
            syscall: syscall.to_owned(),
            counted,
            expected_at_least,
            processes_seen: rec["processes_seen"].as_u64().unwrap_or(0),
            expected_processes,
        })
    }

    /// Nothing lost: no observation dropped, no process untracked, every call counted. Ring
    /// buffer drops only lose live-status events, never counts, so they do not fail the check.
    pub(crate) fn complete(&self) -> bool {
        self.lost_syscalls == 0
            && self.map_full == 0
            && self.counted >= self.expected_at_least
            && self.processes_seen >= self.expected_processes
    }

    pub(crate) fn to_json(&self) -> Value {
        json!({
            "what": self.what,
            "path": self.path.display().to_string(),
            "complete": self.complete(),
            "lost_syscalls": self.lost_syscalls,
            "map_full": self.map_full,
            "ring_buffer_drops": self.ring_buffer_drops,
            "syscall": self.syscall,
            "counted": self.counted,
            "expected_at_least": self.expected_at_least,
            "processes_seen": self.processes_seen,
            "expected_processes": self.expected_processes,
        })
    }
}
