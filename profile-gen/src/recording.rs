//! The Recording: what the tracer observed, written as versioned JSON.
//!
//! This file is the contract between `cinch record` and `cinch generate`: a user can record on
//! one machine and generate on another, merge many recordings, and keep them as CI artifacts.
//! Syscalls are stored by architecture and *number*; names are derived here, never in the kernel,
//! and a number that cannot be named is kept (with `name: null`) rather than dropped.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::arch::Arch;

/// The schema version this build writes and reads. Bump on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recording {
    pub schema_version: u32,
    /// Version of the cinch that wrote the file.
    pub cinch_version: String,
    pub host: Host,
    pub attach: AttachPoints,
    pub target: Target,
    /// False when cinch attached to something already running (`--pid`, `--container`): the
    /// workload's own start-up syscalls were not seen, so the generator adds a runtime baseline.
    pub startup_observed: bool,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// RFC 3339, UTC.
    pub ended_at: String,
    /// Distinct processes (thread groups) observed in the target.
    pub processes_seen: u64,
    /// Observed syscalls per architecture, sorted by number.
    pub syscalls: BTreeMap<Arch, Vec<SyscallCount>>,
    /// Capability checks, aggregated by (capability, result, syscall, kernel caller).
    #[serde(default)]
    pub capabilities: Vec<CapabilityCheck>,
    pub lost: Lost,
    /// Anything the user should know about how complete this recording is.
    #[serde(default)]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    /// `uname -r`.
    pub kernel: String,
    /// The native architecture of the recording host.
    pub arch: Arch,
}

/// Which kernel hooks produced the data (CLI.md: "attach points used").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachPoints {
    /// `tp_btf`, `raw_tp` or `tracepoint`, on `raw_syscalls:sys_enter`.
    pub syscalls: String,
    /// `tracepoint` (`capability:cap_capable`), `kprobe`, `fentry`, or `none`.
    pub capabilities: String,
    /// How process fork/exec/exit are followed.
    pub lifecycle: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// `cinch record -- COMMAND`.
    Command { argv: Vec<String>, pid: u32 },
    /// `cinch record --pid PID`.
    Pid { pid: u32, comm: String },
    /// `cinch record --container` / `--new-containers`.
    Container {
        id: String,
        name: String,
        image: String,
        /// docker, podman, containerd, crio.
        engine: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyscallCount {
    pub nr: u32,
    /// The name for `nr` on this architecture; `null` when neither libseccomp nor the syscall
    /// table knows the number (kept, reported, never silently dropped).
    pub name: Option<String>,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilityCheck {
    /// Kernel capability number (`CAP_CHOWN` = 0 ...).
    pub cap: u32,
    /// Docker spelling, without `CAP_` (`CHOWN`); `null` for a number this build cannot name.
    pub name: Option<String>,
    /// Whether the kernel granted the capability.
    pub granted: bool,
    /// The syscall in progress when the check happened.
    pub syscall: Option<SyscallRef>,
    /// The kernel function that asked (first frame above the capability helpers), e.g.
    /// `chown_common` or `security_vm_enough_memory_mm`.
    pub caller: String,
    /// A short symbolized kernel stack, innermost first.
    #[serde(default)]
    pub stack: Vec<String>,
    pub count: u64,
    /// Process names (comm) that made the check.
    #[serde(default)]
    pub comms: Vec<String>,
    /// Set when the check is noise for an allowlist (a non-audited probe such as the
    /// vm-overcommit heuristic); names the rule that matched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyscallRef {
    pub arch: Arch,
    pub nr: u32,
    pub name: Option<String>,
}

/// Everything that could make a recording incomplete. All zero is the normal case.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lost {
    /// Syscall observations that could not be stored (must be zero for a trustworthy profile).
    pub syscalls: u64,
    /// Rare events (process start, exec, first sighting) dropped by the ring buffer; these feed
    /// only the live status, never the profile.
    pub ring_buffer_drops: u64,
    /// Failed inserts into tracking maps (a process that could not be followed).
    pub map_full: u64,
    /// Capability checks that could not be aggregated.
    pub capability_checks: u64,
}
