//! Syscalls the kernel makes a process issue without its code asking for them, so a test run
//! may never show them while production does. A profile without them breaks a workload the
//! first time the kernel needs one: CPython's test suite aborted under a profile without
//! `restart_syscall` ("The futex facility returned an unexpected error code"), and `sleep`
//! stopped and continued under such a profile fails with "cannot read realtime clock".
//!
//! Each rule cites the kernel code that makes the call. `cinch generate` adds the names a rule
//! asks for when the recordings did not already have them (in a rule of their own, with a
//! comment), says so in its summary, and `cinch report` explains each one, or warns when a
//! profile denies one.
//!
//! Looked at and left out, with the reason:
//! - a syscall interrupted by a signal and restarted with `-ERESTARTSYS`/`-ERESTARTNOINTR`
//!   is re-issued with its own number (`regs->ax = regs->orig_ax`): already recorded;
//! - `uretprobe` (Linux 6.11+) is issued by the kernel's uretprobe trampoline when a tracer
//!   probes the workload's functions, but kernel/seccomp.c lets it through every filter since
//!   Linux 6.14, and libseccomp 2.5 cannot name it;
//! - a thread's exit (`exit`), the futex wake of `CLONE_CHILD_CLEARTID` and the robust-futex
//!   walk are either made by libc's own code (and recorded when a thread ends) or done inside
//!   the kernel without a syscall.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::arch::Arch;
use crate::naming;

/// When a rule applies to an architecture of the profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum When {
    /// Always: nothing a recording can show tells whether the kernel will need it.
    Always,
    /// When the workload installed a signal handler on that architecture (one of
    /// [`HANDLER_INSTALLERS`] was recorded), or may have handlers installed before the recording
    /// began (a container's runtime: runc's Go runtime installs its handlers before the seccomp
    /// filter and can take its preemption signals after it; a process cinch attached to):
    /// returning from a handler needs it.
    HandlerInstalled,
}

/// One syscall the kernel can make a process issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KernelIssued {
    pub name: &'static str,
    pub when: When,
    /// Why a process issues it without asking, in one sentence.
    pub why: &'static str,
    /// The kernel code that makes it happen.
    pub source: &'static str,
}

/// Syscalls that install signal handlers.
pub const HANDLER_INSTALLERS: &[&str] = &["rt_sigaction", "sigaction", "signal"];

const RESTART: &str = "the kernel resumes a timed wait (nanosleep, clock_nanosleep, futex or poll with a timeout) that a signal interrupted without running a handler (a stop and continue, or a signal the process ignores while another thread blocks it) by making the process issue restart_syscall";
const RESTART_SOURCE: &str = "arch/x86/kernel/signal.c arch_do_signal_or_restart(): -ERESTART_RESTARTBLOCK sets regs->ax = get_nr_restart_syscall(regs) and rewinds the ip; the restart blocks are set by hrtimer_nanosleep() (kernel/time/hrtimer.c), futex_wait() (kernel/futex/waitwake.c) and do_sys_poll() (fs/select.c)";
const SIGRETURN: &str = "a signal handler returns through the frame the kernel built for it, whose return address is the restorer (libc's or the vDSO's) that issues this call; the first time one of the workload's handlers runs, it needs it";
const SIGRETURN_SOURCE: &str = "arch/x86/kernel/signal_64.c x64_setup_rt_frame() and signal_32.c ia32_setup_frame()/ia32_setup_rt_frame() store sa_restorer (or the vDSO's __kernel_sigreturn) as the handler's return address";
const VDSO: &str = "the vDSO answers this time query without a syscall on the recording machine, but falls back to the real syscall where the clocksource has no vDSO mode, and on x86_64 the kernel emulates the legacy vsyscall page's time, gettimeofday and getcpu with a seccomp check but no sys_enter event, so no recording can show it";
const VDSO_SOURCE: &str = "lib/vdso/gettimeofday.c: vdso_clocksource_ok() false leads to clock_gettime_fallback() and friends; arch/x86/entry/vsyscall/vsyscall_64.c emulate_vsyscall() calls secure_computing() without trace_sys_enter()";

/// The rules, in the order `generate` and `report` list them.
pub const RULES: &[KernelIssued] = &[
    KernelIssued {
        name: "restart_syscall",
        when: When::Always,
        why: RESTART,
        source: RESTART_SOURCE,
    },
    KernelIssued {
        name: "rt_sigreturn",
        when: When::HandlerInstalled,
        why: SIGRETURN,
        source: SIGRETURN_SOURCE,
    },
    KernelIssued {
        name: "sigreturn",
        when: When::HandlerInstalled,
        why: SIGRETURN,
        source: SIGRETURN_SOURCE,
    },
    KernelIssued {
        name: "clock_gettime",
        when: When::Always,
        why: VDSO,
        source: VDSO_SOURCE,
    },
    KernelIssued {
        name: "clock_gettime64",
        when: When::Always,
        why: VDSO,
        source: VDSO_SOURCE,
    },
    KernelIssued {
        name: "clock_getres",
        when: When::Always,
        why: VDSO,
        source: VDSO_SOURCE,
    },
    KernelIssued {
        name: "clock_getres_time64",
        when: When::Always,
        why: VDSO,
        source: VDSO_SOURCE,
    },
    KernelIssued {
        name: "gettimeofday",
        when: When::Always,
        why: VDSO,
        source: VDSO_SOURCE,
    },
    KernelIssued {
        name: "time",
        when: When::Always,
        why: VDSO,
        source: VDSO_SOURCE,
    },
    KernelIssued {
        name: "getcpu",
        when: When::Always,
        why: VDSO,
        source: VDSO_SOURCE,
    },
];

/// The rule for `name`, if the kernel can issue it.
pub fn rule(name: &str) -> Option<&'static KernelIssued> {
    RULES.iter().find(|r| r.name == name)
}

/// The names the rules add on each of `architectures`, given what the recordings observed there
/// (`observed`, by architecture) and the architectures on which handlers may have been installed
/// before a recording began (`inherited_handlers`: [`crate::observed::Observed::inherited_handlers`]):
/// every rule whose condition holds and whose syscall exists on that architecture. Names already
/// observed are included; the caller decides what is new.
pub fn required(
    architectures: &BTreeSet<Arch>,
    observed: &BTreeMap<Arch, BTreeSet<String>>,
    inherited_handlers: &BTreeSet<Arch>,
) -> BTreeMap<Arch, BTreeSet<&'static str>> {
    let empty = BTreeSet::new();
    architectures
        .iter()
        .map(|arch| {
            let seen = observed.get(arch).unwrap_or(&empty);
            let handler = inherited_handlers.contains(arch)
                || HANDLER_INSTALLERS.iter().any(|n| seen.contains(*n));
            let names = RULES
                .iter()
                .filter(|r| match r.when {
                    When::Always => true,
                    When::HandlerInstalled => handler,
                })
                .filter(|r| naming::syscall_number(*arch, r.name).is_some())
                .map(|r| r.name)
                .collect();
            (*arch, names)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::naming::NameStatus;
    use crate::report::DANGEROUS_SYSCALLS;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn every_rule_names_a_syscall_libseccomp_knows_and_none_is_dangerous() {
        for r in RULES {
            assert_eq!(
                naming::name_status(r.name),
                NameStatus::Libseccomp,
                "{}",
                r.name
            );
            assert!(
                !DANGEROUS_SYSCALLS.iter().any(|(d, _)| *d == r.name),
                "{} is dangerous",
                r.name
            );
            assert!(!r.why.is_empty() && r.source.contains(".c"), "{}", r.name);
        }
    }

    /// Allowing them never makes a profile wider than Docker's default: moby allows every one
    /// unconditionally, whatever the capabilities (and so do the runtime baselines' names).
    #[test]
    fn every_kernel_issued_and_baseline_name_is_in_dockers_default() {
        let none = BTreeSet::new();
        let baselines = [
            crate::baseline::Runtime::Runc,
            crate::baseline::Runtime::Crun,
        ]
        .into_iter()
        .flat_map(|rt| {
            crate::baseline::baseline(rt)
                .syscalls
                .iter()
                .map(String::as_str)
        });
        for name in RULES.iter().map(|r| r.name).chain(baselines) {
            assert_eq!(
                crate::arg_rules::docker_conditions(name, &none),
                Some(Vec::new()),
                "{name} is not allowed bare by Docker's default"
            );
        }
    }

    #[test]
    fn restart_syscall_and_time_queries_always_signal_returns_with_a_handler() {
        let arches: BTreeSet<Arch> = [Arch::X86_64].into_iter().collect();
        let no_handler: BTreeMap<Arch, BTreeSet<String>> =
            [(Arch::X86_64, set(&["read", "exit_group"]))]
                .into_iter()
                .collect();
        let none = BTreeSet::new();
        let got = &required(&arches, &no_handler, &none)[&Arch::X86_64];
        assert!(got.contains("restart_syscall"));
        assert!(got.contains("clock_gettime") && got.contains("time"));
        assert!(!got.contains("rt_sigreturn"), "{got:?}");
        // Names that do not exist on x86_64 are not asked for there.
        assert!(!got.contains("sigreturn") && !got.contains("clock_gettime64"));

        let handler: BTreeMap<Arch, BTreeSet<String>> = [(Arch::X86_64, set(&["rt_sigaction"]))]
            .into_iter()
            .collect();
        assert!(required(&arches, &handler, &none)[&Arch::X86_64].contains("rt_sigreturn"));
        // A container's runtime (or a process cinch attached to) may have installed handlers
        // before the recording began: runc's Go runtime takes its preemption signals after the
        // seccomp install, and a denied rt_sigreturn is a SIGSEGV.
        let inherited: BTreeSet<Arch> = [Arch::X86_64].into_iter().collect();
        assert!(required(&arches, &no_handler, &inherited)[&Arch::X86_64].contains("rt_sigreturn"));
    }

    #[test]
    fn the_condition_is_per_architecture() {
        // An i386 program that installs a handler (with the old sigaction) needs both signal
        // returns on i386; the x86_64 side installed none.
        let arches: BTreeSet<Arch> = [Arch::X86_64, Arch::X86].into_iter().collect();
        let observed: BTreeMap<Arch, BTreeSet<String>> = [
            (Arch::X86_64, set(&["execve"])),
            (Arch::X86, set(&["sigaction"])),
        ]
        .into_iter()
        .collect();
        let got = required(&arches, &observed, &BTreeSet::new());
        assert!(!got[&Arch::X86_64].contains("rt_sigreturn"));
        assert!(got[&Arch::X86].contains("rt_sigreturn"));
        assert!(got[&Arch::X86].contains("sigreturn"));
        assert!(got[&Arch::X86].contains("restart_syscall"));
        assert!(got[&Arch::X86].contains("clock_gettime64"));
    }
}
