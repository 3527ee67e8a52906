//! The attach ladders cinch climbs, as data ([`super::attach`] walks them), and what
//! `cinch record` attaches with them. `cinch doctor` walks the same rungs to say which work here.

use aya::Ebpf;
use cinch_common::names;

use super::attach::{Hook, Ladder, Rung, TraceEvent};
use super::loader::{explain_load_error, load_as_built};
use super::outcome::Outcome;
use crate::error::kernel;

/// Which program serves `raw_syscalls:sys_enter` (the rung of [`SYS_ENTER`] that attached).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SyscallAttach {
    TpBtf,
    RawTp,
    Tracepoint,
}

impl SyscallAttach {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SyscallAttach::TpBtf => "tp_btf",
            SyscallAttach::RawTp => "raw_tp",
            SyscallAttach::Tracepoint => "tracepoint",
        }
    }
}

/// Where capability checks come from on this kernel (the rung of [`CAP_CAPABLE`] that
/// attached).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CapabilitySource {
    /// `capability:cap_capable` (Linux 6.14+), through tp_btf.
    Tracepoint,
    /// fexit on `cap_capable()`, for kernels without the tracepoint (BPF trampolines, 5.5+).
    Fexit,
    /// Nothing worked; the reason says why. Syscalls are still recorded.
    None(String),
}

impl CapabilitySource {
    pub(crate) fn as_str(&self) -> &'static str {
        match self {
            CapabilitySource::Tracepoint => "tracepoint",
            CapabilitySource::Fexit => "fexit",
            CapabilitySource::None(_) => "none",
        }
    }
}

/// A rung with no trace event to check first.
const fn rung<T>(hook: Hook, gives: T) -> Rung<T> {
    Rung {
        hook,
        gives,
        event: None,
    }
}

const SYS_ENTER_EVENT: (&str, &str) = ("raw_syscalls", "sys_enter");
const CAP_CAPABLE_EVENT: TraceEvent = TraceEvent {
    path: "capability/cap_capable",
    since: "Linux 6.14",
};

/// `raw_syscalls:sys_enter`: tp_btf reads the tgid and `thread_info.status` through the BTF task
/// pointer (one helper call per traced syscall instead of two); raw_tp and the classic
/// tracepoint are there for kernels that refuse it.
pub(crate) static SYS_ENTER: Ladder<SyscallAttach> = Ladder {
    rungs: &[
        rung(
            Hook::TpBtf {
                program: names::SYS_ENTER_TP_BTF,
                category: SYS_ENTER_EVENT.0,
                event: SYS_ENTER_EVENT.1,
            },
            SyscallAttach::TpBtf,
        ),
        rung(
            Hook::RawTp {
                program: names::SYS_ENTER_RAW_TP,
                category: SYS_ENTER_EVENT.0,
                event: SYS_ENTER_EVENT.1,
            },
            SyscallAttach::RawTp,
        ),
        rung(
            Hook::Tracepoint {
                program: names::SYS_ENTER_TRACEPOINT,
                category: SYS_ENTER_EVENT.0,
                event: SYS_ENTER_EVENT.1,
            },
            SyscallAttach::Tracepoint,
        ),
    ],
};

/// Syscall results for capability checks: the program on one syscall's exit event, as
/// `cinch doctor` tries it; `record` attaches it to every syscall of [`super::results`].
pub(crate) static SYS_EXIT: Ladder<()> = Ladder {
    rungs: &[Rung {
        hook: Hook::Tracepoint {
            program: names::SYS_EXIT_SYSCALL,
            category: "syscalls",
            event: "sys_exit_execve",
        },
        gives: (),
        event: Some(TraceEvent {
            path: "syscalls/sys_exit_execve",
            since: "kernels built with CONFIG_FTRACE_SYSCALLS",
        }),
    }],
};

/// Capability checks: the `capability:cap_capable` tracepoint, else fexit on `cap_capable()`.
/// kprobes are not used: a kprobe sees neither the result nor, portably, the audit flag, and a
/// kretprobe would have to pair entries with returns.
pub(crate) static CAP_CAPABLE: Ladder<CapabilitySource> = Ladder {
    rungs: &[
        Rung {
            hook: Hook::TpBtf {
                program: names::CAP_CAPABLE_TP_BTF,
                category: "capability",
                event: "cap_capable",
            },
            gives: CapabilitySource::Tracepoint,
            event: Some(CAP_CAPABLE_EVENT),
        },
        rung(
            Hook::Fexit {
                program: names::CAP_CAPABLE_FEXIT,
                function: "cap_capable",
            },
            CapabilitySource::Fexit,
        ),
    ],
};

/// Other ways to hook `cap_capable` that `cinch record` does not use; `cinch doctor` says which
/// this kernel allows. Their programs are empty (ebpf/src/probes/empty.rs).
pub(crate) static CAP_CAPABLE_OTHERS: &[Rung<()>] = &[
    Rung {
        hook: Hook::Tracepoint {
            program: "doctor_tracepoint",
            category: "capability",
            event: "cap_capable",
        },
        gives: (),
        event: Some(CAP_CAPABLE_EVENT),
    },
    rung(
        Hook::Kprobe {
            program: "doctor_kprobe",
            function: "cap_capable",
        },
        (),
    ),
    rung(
        Hook::Fentry {
            program: "doctor_fentry",
            function: "cap_capable",
        },
        (),
    ),
];

/// The process lifecycle, one way each, all needed: forks, exits and execs of tracked
/// processes.
pub(crate) static PROCESS_EVENTS: &[Rung<()>] = &[
    rung(
        Hook::RawTp {
            program: names::FORK,
            category: "sched",
            event: "sched_process_fork",
        },
        (),
    ),
    rung(
        Hook::RawTp {
            program: names::EXIT,
            category: "sched",
            event: "sched_process_exit",
        },
        (),
    ),
    rung(
        Hook::RawTp {
            program: names::EXEC,
            category: "sched",
            event: "sched_process_exec",
        },
        (),
    ),
];

/// A BPF LSM program, which cinch does not need; `cinch doctor` reports whether it loads.
pub(crate) static LSM_PROBE: Rung<()> = rung(
    Hook::Lsm {
        program: "doctor_lsm",
        hook: "file_open",
    },
    (),
);

/// The floor every syscall recorder pays: an empty program attached like the first rung of
/// [`SYS_ENTER`] (`cinch bench-floor`).
pub(super) static FLOOR: Rung<()> = rung(
    Hook::TpBtf {
        program: names::FLOOR,
        category: SYS_ENTER_EVENT.0,
        event: SYS_ENTER_EVENT.1,
    },
    (),
);

/// What [`attach_recorder`] attached.
pub(super) struct Attached {
    pub syscalls: SyscallAttach,
    pub capabilities: CapabilitySource,
    /// The syscall exit events attached for capability checks, or why none are (checks are
    /// then counted without the result of their syscall).
    pub results: Result<super::results::Links, String>,
}

/// Attaches what a recording needs: the process lifecycle first, so that a fork between
/// attaching sys_enter and registering the target is followed, then the syscall exit events (so
/// that no check waits for a result nothing will deliver), the capability source, and
/// sys_enter.
pub(super) fn attach_recorder(ebpf: &mut Ebpf) -> anyhow::Result<Attached> {
    for rung in PROCESS_EVENTS {
        let outcome = rung.attach(ebpf, None);
        if let Some(why) = outcome.reason() {
            return Err(explain_load_error(
                &format!("attaching {}", rung.hook),
                anyhow::Error::msg(why.to_owned()),
            ));
        }
    }
    // The kernel's BTF is parsed three times: by our reader for the struct offsets, by aya's
    // loader, which keeps its copy private, and here, once for all the BTF programs. One after
    // the other, so that only one copy is in memory at a time.
    let btf = aya::Btf::from_sys_fs().ok();
    let results = super::results::attach(ebpf);
    let capabilities = attach_capability_source(ebpf, btf.as_ref());
    let syscalls = attach_sys_enter(ebpf, btf.as_ref())?;
    drop(btf);
    Ok(Attached {
        syscalls,
        capabilities,
        results,
    })
}

/// The first rung of [`CAP_CAPABLE`] that attaches. Its absence is reported, not fatal
/// (syscalls are still recorded).
///
/// `CINCH_CAPABILITY_SOURCE=fexit` skips the tracepoint, so the fallback is exercised on
/// kernels that have both.
fn attach_capability_source(ebpf: &mut Ebpf, btf: Option<&aya::Btf>) -> CapabilitySource {
    let force_fexit = std::env::var_os("CINCH_CAPABILITY_SOURCE").is_some_and(|v| v == "fexit");
    let climb = CAP_CAPABLE.climb(ebpf, btf, |rung| {
        (force_fexit && rung.gives != CapabilitySource::Fexit)
            .then(|| "CINCH_CAPABILITY_SOURCE=fexit".to_owned())
    });
    if let Some(rung) = climb.chosen() {
        return rung.gives.clone();
    }
    let why: Vec<String> = climb
        .tried
        .iter()
        .map(|(rung, outcome)| match outcome {
            Outcome::Skipped(why) => format!("{rung}: skipped ({why})"),
            o => format!(
                "{rung} could not be attached: {}",
                o.reason().unwrap_or_default()
            ),
        })
        .collect();
    CapabilitySource::None(why.join("; "))
}

/// The first rung of [`SYS_ENTER`] that attaches; an error when none does.
fn attach_sys_enter(ebpf: &mut Ebpf, btf: Option<&aya::Btf>) -> anyhow::Result<SyscallAttach> {
    let climb = SYS_ENTER.climb(ebpf, btf, |_| None);
    if let Some(rung) = climb.chosen() {
        return Ok(rung.gives);
    }
    let why: Vec<String> = climb
        .tried
        .iter()
        .map(|(rung, outcome)| {
            format!(
                "{}: {}",
                rung.hook.kind(),
                outcome.reason().unwrap_or_default()
            )
        })
        .collect();
    Err(explain_load_error(
        "no way to attach to raw_syscalls:sys_enter worked",
        anyhow::Error::msg(why.join("; ")),
    ))
}

/// Loads the object and attaches only [`FLOOR`], the empty `sys_enter` program (the benchmark
/// floor). Dropping the returned value detaches it.
pub(crate) fn attach_floor() -> anyhow::Result<Ebpf> {
    if !super::object_present() {
        return Err(kernel(
            "this cinch was built without its eBPF object (AYA_BUILD_SKIP)",
        ));
    }
    let mut ebpf = load_as_built()?;
    let btf =
        aya::Btf::from_sys_fs().map_err(|e| kernel(format!("reading the kernel's BTF: {e}")))?;
    match FLOOR.attach(&mut ebpf, Some(&btf)).reason() {
        None => Ok(ebpf),
        Some(why) => Err(explain_load_error(
            "attaching the floor program",
            anyhow::Error::msg(why.to_owned()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rungs_name_their_hook() {
        let names: Vec<String> = SYS_ENTER.rungs.iter().map(|r| r.to_string()).collect();
        assert_eq!(
            names,
            [
                "tp_btf on raw_syscalls:sys_enter",
                "raw_tp on raw_syscalls:sys_enter",
                "tracepoint on raw_syscalls:sys_enter"
            ]
        );
        assert_eq!(
            CAP_CAPABLE.rungs[0].to_string(),
            "tp_btf on capability:cap_capable (Linux 6.14+)"
        );
        assert_eq!(CAP_CAPABLE.rungs[1].to_string(), "fexit on cap_capable");
        let gives: Vec<&str> = SYS_ENTER.rungs.iter().map(|r| r.gives.as_str()).collect();
        assert_eq!(gives, ["tp_btf", "raw_tp", "tracepoint"]);
    }
}
