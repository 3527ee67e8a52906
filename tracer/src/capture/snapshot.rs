//! What the probe holds for one target when it ends, and the Recording made from it.
//!
//! [`Snapshot::read`] is the only part that touches the kernel's maps; [`recording`] is a pure
//! function of the snapshot (naming, architectures, warnings), unit-tested below.

use std::collections::BTreeMap;
use std::time::SystemTime;

use profile_gen::Arch;
use profile_gen::limits::Usage;
use profile_gen::recording::{
    ArgumentValues, AttachPoints, CapabilityCheck, Host, Lost, Recording, SyscallCount, Target,
    ValueCount,
};

use crate::cap_checks;
use crate::probe::{ArgValues, CapabilitySource, Probe, Stats, TargetUsage, table_arch};

/// One target's data, read from the probe's maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Snapshot {
    pub native: Arch,
    /// As `uname -r` prints it.
    pub kernel: String,
    /// The attach points that worked (`tp_btf`, `tracepoint`...).
    pub syscall_attach: &'static str,
    pub capability_source: CapabilitySource,
    /// How many syscalls report their result to capability checks, or why none do.
    pub results: Result<usize, String>,
    pub processes_seen: u64,
    /// (syscall table, number) → calls.
    pub counts: BTreeMap<(u32, u32), u64>,
    /// (syscall table, number) → the values of its recorded argument.
    pub arg_values: BTreeMap<(u32, u32), ArgValues>,
    pub capabilities: Vec<CapabilityCheck>,
    /// The kernel hid its symbols' addresses: no capability check's caller could be named.
    pub symbols_hidden: bool,
    /// The tracer was refused its processes' root: its reads are unresolved.
    pub root_denied: bool,
    /// Programs exec'd that gained privileges, when the kernel says.
    pub privileged_execs: Option<BTreeMap<String, u64>>,
    pub writes: profile_gen::filesystem::FileWrites,
    pub reads: profile_gen::image::FileReads,
    pub credentials: Vec<profile_gen::user::Credential>,
    /// What its tasks used, when the kernel side can tell.
    pub usage: Option<TargetUsage>,
    pub endpoints: Vec<profile_gen::network::Endpoint>,
    pub stats: Stats,
}

impl Snapshot {
    /// Reads `slot`'s data, after the events still queued (who used which argument value).
    /// The kernel side's loss counters are the probe's, not the target's: those counted since
    /// `since` (the probe's start, or the target's when one probe serves many in turn) go with
    /// it.
    pub(super) fn read(probe: &mut Probe, slot: u32, since: &Stats) -> anyhow::Result<Snapshot> {
        probe.drain_events(|_| {});
        let stats = probe.stats()?.since(since);
        tracing::info!(?stats, "probe counters at the end of the recording");
        Ok(Snapshot {
            native: Arch::native(),
            kernel: crate::procfs::kernel_release(),
            syscall_attach: probe.syscall_attach.as_str(),
            capability_source: probe.capability_source.clone(),
            results: probe.results.clone(),
            processes_seen: probe.processes_seen(slot)?,
            counts: probe.counts(slot)?,
            arg_values: probe.arg_values(slot)?,
            capabilities: cap_checks::build(&probe.cap_checks(slot)?, cap_checks::symbols()),
            symbols_hidden: cap_checks::symbols().hidden(),
            privileged_execs: probe.privileged_execs(slot)?,
            writes: probe.writes(slot, stats.path_drop),
            reads: probe.reads(slot, stats.read_drop),
            root_denied: probe.root_denied(slot),
            credentials: probe.credentials(slot)?,
            usage: probe.usage(slot)?,
            endpoints: probe.endpoints(slot)?,
            stats,
        })
    }
}

/// How the target was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Span {
    pub target: Target,
    /// From the workload's start (its execve, or its runtime's seccomp install).
    pub startup_observed: bool,
    pub started: SystemTime,
    pub ended: SystemTime,
}

/// What the target used, with why the figures are not the whole run's when they are not.
fn usage(u: TargetUsage, (started, ended): &(SystemTime, SystemTime)) -> Usage {
    let incomplete = if u.attached > 0 {
        Some(format!(
            "it attached to {} running processes, whose use before the recording is not known",
            u.attached
        ))
    } else if u.live > 0 {
        Some(format!(
            "{} processes were still running when it ended",
            u.live
        ))
    } else {
        None
    };
    Usage {
        threads_peak: u.threads_peak,
        processes_peak: u.processes_peak,
        cpu_ms: u.cpu_ns / 1_000_000,
        memory_bytes: u.memory_bytes,
        wall_ms: ended
            .duration_since(*started)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        host_cpus: u.host_cpus,
        incomplete,
    }
}

/// The Recording for a snapshot: syscalls named per architecture, argument values of the
/// argument-sensitive syscalls, and a warning for everything that makes it less than complete.
pub(super) fn recording(s: Snapshot, span: Span) -> Recording {
    let span_times = (span.started, span.ended);
    let stats = s.stats;
    let mut recording = Recording {
        schema_version: profile_gen::SCHEMA_VERSION,
        cinch_version: env!("CARGO_PKG_VERSION").to_owned(),
        host: Host {
            kernel: s.kernel,
            arch: s.native,
            node: None,
        },
        attach: AttachPoints {
            syscalls: s.syscall_attach.to_owned(),
            capabilities: s.capability_source.as_str().to_owned(),
            lifecycle: "raw_tp".to_owned(),
            results: if s.results.is_ok() {
                "tracepoint".to_owned()
            } else {
                "none".to_owned()
            },
        },
        target: span.target,
        startup_observed: span.startup_observed,
        entrypoint_observed: span.startup_observed,
        started_at: humantime::format_rfc3339_seconds(span.started).to_string(),
        ended_at: humantime::format_rfc3339_seconds(span.ended).to_string(),
        processes_seen: s.processes_seen,
        syscalls: Default::default(),
        arguments: Default::default(),
        capabilities: s.capabilities,
        lost: Lost {
            syscalls: stats.syscall_out_of_range + stats.counter_miss,
            ring_buffer_drops: stats.ring_drop,
            map_full: stats.track_miss,
            capability_checks: stats.cap_miss,
        },
        warnings: Vec::new(),
        capability_proof: None,
        privileged_execs: s.privileged_execs,
        writes: Some(s.writes),
        // Sets of ids or addresses the kernel could not store: the recording cannot say.
        credentials: (stats.cred_miss == 0).then_some(s.credentials),
        resources: s.usage.map(|u| usage(u, &span_times)),
        endpoints: (stats.net_miss == 0).then_some(s.endpoints),
        reads: Some(s.reads),
    };
    for ((table, nr), count) in s.counts {
        let Some(arch) = table_arch(s.native, table) else {
            recording.warnings.push(format!(
                "syscall {nr} counted in a compat table this architecture does not have"
            ));
            continue;
        };
        let name = profile_gen::naming::syscall_name(arch, nr);
        if name.is_none() {
            recording.warnings.push(format!(
                "{arch} syscall number {nr} has no known name; kept by number"
            ));
        }
        recording
            .syscalls
            .entry(arch)
            .or_default()
            .push(SyscallCount { nr, name, count });
    }
    for ((table, nr), recorded) in s.arg_values {
        let Some(arch) = table_arch(s.native, table) else {
            continue;
        };
        let name = profile_gen::naming::syscall_name(arch, nr);
        let Some(entry) = name
            .as_deref()
            .and_then(|n| profile_gen::arguments::lookup(arch, n))
        else {
            continue;
        };
        let comms = &recorded.comms;
        recording
            .arguments
            .entry(arch)
            .or_default()
            .push(ArgumentValues {
                nr,
                name,
                index: entry.index,
                mask: entry.mask,
                values: recorded
                    .values
                    .iter()
                    .map(|(&value, &count)| ValueCount {
                        value,
                        count,
                        comms: comms
                            .get(&value)
                            .map(|c| c.iter().cloned().collect())
                            .unwrap_or_default(),
                    })
                    .collect(),
                incomplete: recorded.lost,
            });
    }
    let lost = recording.lost.clone();
    let none = match &s.capability_source {
        CapabilitySource::None(why) => Some(why.clone()),
        _ => None,
    };
    let said = [
        (
            stats.arg_miss > 0,
            format!(
                "{} argument values could not be stored: those syscalls get Docker's conditions instead of the values seen",
                stats.arg_miss
            ),
        ),
        (
            none.is_some(),
            format!(
                "capabilities were not recorded: {}",
                none.unwrap_or_default()
            ),
        ),
        (
            s.symbols_hidden && !recording.capabilities.is_empty(),
            "the kernel hides its symbols' addresses from cinch (/proc/kallsyms: kptr_restrict, or no CAP_SYSLOG): capability checks' callers are unnamed, so the rules that tell a need from its caller cannot apply and such checks count as needs".to_owned(),
        ),
        (
            s.root_denied,
            "cinch was not allowed to open its processes' root (/proc/PID/root: no CAP_SYS_PTRACE over them): the files they read are unresolved, so image use, secret files and the user are not suggested from them".to_owned(),
        ),
        (
            stats.cap_miss > 0,
            format!(
                "{} capability checks could not be stored (too many distinct checks)",
                stats.cap_miss
            ),
        ),
        (
            s.results.is_err(),
            format!(
                "syscall results were not recorded ({}): a capability granted in a syscall that failed anyway counts as a need",
                s.results.as_ref().err().cloned().unwrap_or_default()
            ),
        ),
        (
            stats.pending_miss > 0,
            format!(
                "{} capability checks were counted before their syscall returned (too many at once): they count as needs even if the syscall failed",
                stats.pending_miss
            ),
        ),
        (
            stats.path_drop > 0,
            format!(
                "{} filesystem writes did not fit in the kernel's ring and are not in the recording: no read-only root is suggested from it",
                stats.path_drop
            ),
        ),
        (
            stats.read_drop > 0,
            format!(
                "{} file reads did not fit in the kernel's ring and are not in the recording: the image may have been used more than it says",
                stats.read_drop
            ),
        ),
        (
            stats.cred_miss > 0,
            format!(
                "{} sets of ids could not be stored (too many distinct ones): the image's user is kept",
                stats.cred_miss
            ),
        ),
        (
            stats.net_miss > 0,
            format!(
                "{} socket addresses could not be stored (too many distinct ones): no ports or traffic rules are suggested from it",
                stats.net_miss
            ),
        ),
        (
            stats.stack_miss > 0,
            format!(
                "{} capability checks have no kernel stack (caller unknown)",
                stats.stack_miss
            ),
        ),
        (
            stats.read_failed > 0,
            format!(
                "{} kernel reads failed; some syscalls may be filed under the wrong architecture",
                stats.read_failed
            ),
        ),
        (
            lost.syscalls > 0,
            format!(
                "{} syscall observations could not be stored (numbers out of range)",
                lost.syscalls
            ),
        ),
        (
            lost.map_full > 0,
            format!(
                "{} new processes could not be tracked (pid beyond the tracking map)",
                lost.map_full
            ),
        ),
    ];
    recording.warnings.extend(
        said.into_iter()
            .filter(|(cond, _)| *cond)
            .map(|(_, text)| text),
    );
    recording
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn snapshot() -> Snapshot {
        Snapshot {
            native: Arch::X86_64,
            kernel: "6.18.0".to_owned(),
            syscall_attach: "tp_btf",
            capability_source: CapabilitySource::Tracepoint,
            results: Ok(70),
            processes_seen: 3,
            counts: BTreeMap::new(),
            arg_values: BTreeMap::new(),
            capabilities: Vec::new(),
            symbols_hidden: false,
            root_denied: false,
            privileged_execs: Some(BTreeMap::new()),
            writes: Default::default(),
            reads: Default::default(),
            credentials: Vec::new(),
            usage: None,
            endpoints: Vec::new(),
            stats: Stats::default(),
        }
    }

    fn span() -> Span {
        Span {
            target: Target::Pid {
                pid: 7,
                comm: "app".to_owned(),
            },
            startup_observed: false,
            started: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            ended: UNIX_EPOCH + Duration::from_secs(1_700_000_060),
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn syscalls_are_named_per_table_and_unknown_numbers_kept() {
        let mut s = snapshot();
        s.counts = [((0, 0), 5), ((0, 59), 1), ((1, 3), 2), ((0, 511), 1)].into();
        let r = recording(s, span());
        let x86_64 = &r.syscalls[&Arch::X86_64];
        assert_eq!(x86_64[0].name.as_deref(), Some("read"));
        assert_eq!(x86_64[1].name.as_deref(), Some("execve"));
        assert_eq!(x86_64[2].name, None, "511 is no syscall: kept by number");
        assert_eq!(
            r.syscalls[&Arch::X86][0].name.as_deref(),
            Some("read"),
            "table 1 is the compat (i386) table"
        );
        assert!(
            r.warnings
                .iter()
                .any(|w| w.contains("511 has no known name"))
        );
        assert_eq!(r.started_at, "2023-11-14T22:13:20Z");
        assert!(!r.startup_observed && !r.entrypoint_observed);
        assert_eq!(r.processes_seen, 3);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn argument_values_keep_their_processes() {
        let mut s = snapshot();
        s.counts = [((0, 41), 2)].into();
        s.arg_values = [(
            (0, 41),
            ArgValues {
                values: [(1, 1), (2, 1)].into(),
                comms: [(2, ["curl".to_owned()].into())].into(),
                lost: false,
            },
        )]
        .into();
        // Not an argument-sensitive syscall: dropped.
        s.arg_values.insert((0, 0), ArgValues::default());
        let r = recording(s, span());
        let args = &r.arguments[&Arch::X86_64];
        assert_eq!(args.len(), 1);
        assert_eq!(args[0].name.as_deref(), Some("socket"));
        assert_eq!(args[0].values[1].value, 2);
        assert_eq!(args[0].values[1].comms, ["curl"]);
        assert!(args[0].values[0].comms.is_empty());
    }

    #[test]
    fn hidden_kernel_symbols_are_said_when_there_are_checks() {
        let mut s = snapshot();
        s.symbols_hidden = true;
        let warned = |r: &Recording| r.warnings.iter().any(|w| w.contains("kallsyms"));
        assert!(
            !warned(&recording(s.clone(), span())),
            "no check, nothing to name"
        );
        s.capabilities.push(CapabilityCheck {
            cap: 0,
            name: Some("CHOWN".to_owned()),
            granted: true,
            syscall: None,
            caller: "0xffffffff81234567".to_owned(),
            stack: Vec::new(),
            helpers: Vec::new(),
            own_cred: true,
            noaudit: false,
            result: None,
            count: 1,
            comms: Vec::new(),
            noise: None,
        });
        assert!(warned(&recording(s, span())));
    }

    #[test]
    fn every_loss_is_counted_and_said() {
        let mut s = snapshot();
        s.stats = Stats {
            syscall_out_of_range: 1,
            counter_miss: 2,
            track_miss: 3,
            ring_drop: 4,
            read_failed: 5,
            cap_miss: 6,
            stack_miss: 7,
            slots_exhausted: 0,
            arg_miss: 8,
            pending_miss: 9,
            path_drop: 10,
            cred_miss: 11,
            net_miss: 12,
            read_drop: 13,
        };
        s.capability_source = CapabilitySource::None("no BTF".to_owned());
        let r = recording(s, span());
        assert_eq!(r.lost.syscalls, 3);
        assert_eq!(r.lost.map_full, 3);
        assert_eq!(r.lost.ring_buffer_drops, 4);
        assert_eq!(r.lost.capability_checks, 6);
        assert_eq!(r.attach.capabilities, "none");
        for said in [
            "8 argument values",
            "capabilities were not recorded: no BTF",
            "6 capability checks",
            "7 capability checks have no kernel stack",
            "9 capability checks were counted before their syscall returned",
            "11 sets of ids could not be stored",
            "12 socket addresses could not be stored",
            "13 file reads did not fit",
            "5 kernel reads failed",
            "3 syscall observations",
            "3 new processes",
        ] {
            assert!(
                r.warnings.iter().any(|w| w.contains(said)),
                "{said}: {:?}",
                r.warnings
            );
        }
    }
}
