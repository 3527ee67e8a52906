//! The Recording: what the tracer observed, written as versioned JSON.
//!
//! This file is the contract between `cinch record` and `cinch generate`: a user can record on
//! one machine and generate on another, merge many recordings, and keep them as CI artifacts.
//! Syscalls are stored by architecture and *number*; names are derived here, never in the kernel,
//! and a number that cannot be named is kept (with `name: null`) rather than dropped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::arch::Arch;
use crate::capability::Capability;
use crate::files::io_message;

/// The schema version this build writes. Bump on any incompatible change.
///
/// - 2: `arguments` (argument values of the argument-sensitive syscalls).
/// - 3: capability checks carry what the rules need (`result`, `helpers`, `own_cred`,
///   `noaudit`, the whole stack) instead of a verdict (`noise`): the generator classifies them,
///   so a recording is re-classified when the rules improve.
pub const SCHEMA_VERSION: u32 = 3;
/// The oldest schema this build reads. A version 1 recording has no argument values: the
/// generator gives its argument-sensitive syscalls Docker's default conditions, and says so.
pub const OLDEST_SCHEMA_VERSION: u32 = 1;

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
    /// The workload was recorded from its first execve, even if not from the runtime's seccomp
    /// install (`--new-containers` of a container without a filter): its own start-up is in the
    /// recording, only the runtime's calls are not. Absent (false) in older recordings.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub entrypoint_observed: bool,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// RFC 3339, UTC.
    pub ended_at: String,
    /// Distinct processes (thread groups) observed in the target.
    pub processes_seen: u64,
    /// Observed syscalls per architecture, sorted by number.
    pub syscalls: BTreeMap<Arch, Vec<SyscallCount>>,
    /// Argument values of the argument-sensitive syscalls (`profile_gen::arguments`), per
    /// architecture, sorted by number. Absent in schema 1.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub arguments: BTreeMap<Arch, Vec<ArgumentValues>>,
    /// Capability checks, aggregated by (capability, result, syscall, kernel caller).
    #[serde(default)]
    pub capabilities: Vec<CapabilityCheck>,
    pub lost: Lost,
    /// Anything the user should know about how complete this recording is.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// `record --prove-caps`: the command run again without each capability it was granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capability_proof: Option<CapabilityProof>,
    /// Programs the workload exec'd that gained privileges (set-user-ID, set-group-ID, file
    /// capabilities, an LSM transition: the kernel's `secureexec`), by name, with how often:
    /// what no-new-privileges would stop. Absent when the recording cannot say (schema 2, or a
    /// kernel whose BTF lacks the flag); empty when none did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileged_execs: Option<BTreeMap<String, u64>>,
    /// The paths the workload wrote (`filesystem::analyze`). Absent when the recording cannot
    /// say (before schema 3 had it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writes: Option<crate::filesystem::FileWrites>,
    /// The ids its processes ran with, by ids (`user::analyze`). Absent when the recording
    /// cannot say (before schema 3 had it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Vec<crate::user::Credential>>,
    /// What the target used: tasks, memory, CPU (`limits::analyze`). Absent when the recording
    /// cannot say (before schema 3 had it, or a kernel without the fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<crate::limits::Usage>,
    /// The Internet addresses its sockets were bound to, listened on and connected to
    /// (`network::analyze`). Absent when the recording cannot say (before schema 3 had it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<Vec<crate::network::Endpoint>>,
    /// The files its processes read or executed, and what their root holds when it is their
    /// own (`image::analyze`). Absent when the recording cannot say (before schema 3 had it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reads: Option<crate::image::FileReads>,
}

/// The command re-run under its own generated profile: with every candidate capability, then
/// without each in turn. A capability whose removal leaves the exit status unchanged is not
/// needed by this command (as far as its exit status tells).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilityProof {
    /// The exit status with every candidate kept (run twice; both agreed, or `inconclusive`).
    pub exit_with_all: u8,
    /// The exit status with each candidate removed.
    pub exit_without: BTreeMap<Capability, u8>,
    /// Why the runs prove nothing, when they do not (the command does not exit as it did while
    /// recorded, or not the same way twice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inconclusive: Option<String>,
}

impl CapabilityProof {
    /// Whether the runs show `cap` is needed: `Some(true)` when the command exits otherwise
    /// without it, `Some(false)` when it exits the same, `None` when not proven.
    pub fn needed(&self, cap: Capability) -> Option<bool> {
        if self.inconclusive.is_some() {
            return None;
        }
        self.exit_without
            .get(&cap)
            .map(|&without| without != self.exit_with_all)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    /// `uname -r`.
    pub kernel: String,
    /// The native architecture of the recording host.
    pub arch: Arch,
    /// The node the recording was made on, when a node agent made it (the Kubernetes node
    /// name): merged profiles say which nodes they came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// Which kernel hooks produced the data (docs/CLI.md: "attach points used").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachPoints {
    /// `tp_btf`, `raw_tp` or `tracepoint`, on `raw_syscalls:sys_enter`.
    pub syscalls: String,
    /// `tracepoint` (`capability:cap_capable`), `fexit` (on `cap_capable()`, kernels without the
    /// tracepoint), or `none`.
    pub capabilities: String,
    /// How process fork/exec/exit are followed.
    pub lifecycle: String,
    /// `tp_btf`, `raw_tp` or `tracepoint` on `raw_syscalls:sys_exit`, which gives the result of
    /// a syscall in which a capability was checked; `none`; empty before schema 3.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub results: String,
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
        /// The command the engine ran (entrypoint and arguments), when it says: what recording
        /// the container's start-up again needs.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        command: Vec<String>,
        /// Environment variables that look like secrets (names and why; never the values).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        secret_env: Vec<crate::secrets::SecretEnv>,
        /// Where the container could write whatever its root: its writable volumes and bind
        /// mounts (destinations), as the engine reported them.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        volumes: Vec<String>,
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

/// The values one argument of one syscall took, as the kernel side kept them (masked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArgumentValues {
    pub nr: u32,
    pub name: Option<String>,
    /// Which argument, from 0.
    pub index: u32,
    /// What of the argument was kept (`value` is `argument & mask`).
    pub mask: u64,
    pub values: Vec<ValueCount>,
    /// Some values could not be stored (the kernel side's map was full, or a register could not
    /// be read): the set is incomplete, and the generator falls back to Docker's conditions.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub incomplete: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValueCount {
    pub value: u64,
    /// At least this many calls (concurrent calls on several CPUs may be counted once).
    pub count: u64,
    /// The process (comm) that used the value first; empty when the kernel side's event about
    /// it was dropped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub comms: Vec<String>,
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
    /// The symbolized kernel stack from the caller down, innermost first (schema 2 kept six
    /// frames).
    #[serde(default)]
    pub stack: Vec<String>,
    /// The capability helpers between the check and the caller, innermost first
    /// (`cap_capable`, `security_capable`, `ns_capable_noaudit`...). Schema 3.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub helpers: Vec<String>,
    /// False when the kernel checked credentials it borrowed with override_creds() (overlayfs
    /// acting as its mounter), not the task's own. Schema 3; true when absent.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub own_cred: bool,
    /// The kernel asked without auditing (`CAP_OPT_NOAUDIT`); only the fexit source sees it.
    /// Schema 3.
    #[serde(default, skip_serializing_if = "is_false")]
    pub noaudit: bool,
    /// What the syscall in progress returned: 0 when it succeeded, `-errno` when it failed;
    /// absent when not known (outside a syscall, the thread died in it, schema 2 and older).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<i32>,
    pub count: u64,
    /// Process names (comm) that made the check.
    #[serde(default)]
    pub comms: Vec<String>,
    /// Schema 2 and older: the rule that made the check noise when it was recorded. Schema 3
    /// stores the rules' inputs instead; the generator classifies ([`crate::cap_rules`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise: Option<String>,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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

impl Recording {
    /// Number of distinct (architecture, number) syscall entries.
    pub fn syscall_entries(&self) -> usize {
        self.syscalls.values().map(Vec::len).sum()
    }
}

/// Why a recording could not be read. Every variant names the file; the messages are one
/// sentence that says what to do.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("cannot read recording {}: {}", path.display(), io_message(source))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("recording {} is empty; record the workload again", path.display())]
    EmptyFile { path: PathBuf },
    #[error("recording {} is not valid JSON at line {line}, column {column} ({detail}); fix the file or record again", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        detail: String,
    },
    #[error("recording {} has no `{field}` field (line {line}, column {column}); it is incomplete or not a cinch recording", path.display())]
    MissingField {
        path: PathBuf,
        field: String,
        line: usize,
        column: usize,
    },
    #[error("{} is a seccomp profile, not a recording; pass a file written by `cinch record`", path.display())]
    IsAProfile { path: PathBuf },
    #[error("{} is not a cinch recording (no `schema_version`); pass a file written by `cinch record`", path.display())]
    NotARecording { path: PathBuf },
    #[error("recording {} has `schema_version` {found}, which is not a version number; it is damaged or not a cinch recording", path.display())]
    BadVersion { path: PathBuf, found: String },
    #[error("recording {} has schema version {found}, this cinch reads {} to {supported}; use the cinch that wrote it, or record again with this one", path.display(), OLDEST_SCHEMA_VERSION)]
    UnsupportedVersion {
        path: PathBuf,
        found: u64,
        supported: u32,
    },
    #[error("recording {} is not a valid cinch recording at line {line}, column {column} ({detail}); fix the file or record again", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        detail: String,
    },
}

/// Reads and checks a recording file.
pub fn read_recording(path: &Path) -> Result<Recording, RecordingError> {
    let bytes = crate::files::read_input(path).map_err(|source| RecordingError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse_recording(&bytes, path)
}

/// Parses a recording; `path` is only used in error messages.
///
/// The schema version is checked before the rest, so a file from a newer cinch says which version
/// it is instead of failing on whatever field changed.
pub fn parse_recording(bytes: &[u8], path: &Path) -> Result<Recording, RecordingError> {
    let path_buf = || path.to_owned();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(RecordingError::EmptyFile { path: path_buf() });
    }
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| RecordingError::Syntax {
            path: path_buf(),
            line: e.line(),
            column: e.column(),
            detail: serde_detail(&e),
        })?;
    let Some(object) = value.as_object() else {
        return Err(RecordingError::NotARecording { path: path_buf() });
    };
    let Some(version) = object.get("schema_version") else {
        if object.contains_key("defaultAction") {
            return Err(RecordingError::IsAProfile { path: path_buf() });
        }
        return Err(RecordingError::NotARecording { path: path_buf() });
    };
    let Some(found) = version.as_u64() else {
        return Err(RecordingError::BadVersion {
            path: path_buf(),
            found: version.to_string(),
        });
    };
    if !(u64::from(OLDEST_SCHEMA_VERSION)..=u64::from(SCHEMA_VERSION)).contains(&found) {
        return Err(RecordingError::UnsupportedVersion {
            path: path_buf(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    // Deserialize from the bytes again (not from `value`) so errors carry line and column.
    serde_json::from_slice::<Recording>(bytes).map_err(|e| {
        let detail = serde_detail(&e);
        match missing_field(&detail) {
            Some(field) => RecordingError::MissingField {
                path: path_buf(),
                field,
                line: e.line(),
                column: e.column(),
            },
            None => RecordingError::Invalid {
                path: path_buf(),
                line: e.line(),
                column: e.column(),
                detail,
            },
        }
    })
}

/// serde_json's message without its own " at line L column C" suffix (we say that ourselves).
pub(crate) fn serde_detail(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg,
    }
}

fn missing_field(detail: &str) -> Option<String> {
    let rest = detail.strip_prefix("missing field `")?;
    Some(rest.split('`').next().unwrap_or_default().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = include_str!("../../profiles/testdata/web.json");

    fn parse(s: &str) -> Result<Recording, RecordingError> {
        parse_recording(s.as_bytes(), Path::new("rec.json"))
    }

    #[test]
    fn reads_a_good_recording() {
        let rec = parse(GOOD).expect("the test recording parses");
        assert_eq!(rec.schema_version, 1);
        assert!(rec.syscall_entries() > 10);
    }

    #[test]
    fn malformed_json_has_line_and_column() {
        let err = parse("{\n  \"schema_version\": 1,\n  oops\n}").expect_err("malformed");
        match &err {
            RecordingError::Syntax { line, column, .. } => assert_eq!((*line, *column), (3, 3)),
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().contains("line 3, column 3"), "{err}");
    }

    #[test]
    fn newer_schema_names_both_versions() {
        let err = parse(r#"{"schema_version": 4, "something_new": true}"#).expect_err("v4");
        assert!(matches!(
            err,
            RecordingError::UnsupportedVersion {
                found: 4,
                supported: 3,
                ..
            }
        ));
        assert!(
            err.to_string()
                .contains("schema version 4, this cinch reads 1 to 3"),
            "{err}"
        );
    }

    #[test]
    fn missing_field_is_named() {
        let mut v: serde_json::Value = serde_json::from_str(GOOD).expect("json");
        v.as_object_mut().expect("object").remove("host");
        let err = parse(&v.to_string()).expect_err("no host");
        match &err {
            RecordingError::MissingField { field, .. } => assert_eq!(field, "host"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().contains("no `host` field"), "{err}");
    }

    #[test]
    fn other_shapes_are_refused_clearly() {
        assert!(matches!(
            parse("  \n"),
            Err(RecordingError::EmptyFile { .. })
        ));
        assert!(matches!(
            parse("[1,2]"),
            Err(RecordingError::NotARecording { .. })
        ));
        assert!(matches!(
            parse(r#"{"defaultAction":"SCMP_ACT_ERRNO"}"#),
            Err(RecordingError::IsAProfile { .. })
        ));
        assert!(matches!(
            parse(r#"{"schema_version":"1"}"#),
            Err(RecordingError::BadVersion { .. })
        ));
        let bad_arch = GOOD.replacen("\"x86_64\": [", "\"mips\": [", 1);
        let err = parse(&bad_arch).expect_err("unknown arch");
        assert!(matches!(err, RecordingError::Invalid { .. }), "{err:?}");
        assert!(err.to_string().contains("mips"), "{err}");
    }

    #[test]
    fn round_trips_through_serde() {
        let rec = parse(GOOD).expect("parses");
        let again = serde_json::to_string(&rec).expect("serializes");
        assert_eq!(parse(&again).expect("parses again"), rec);
    }
}
