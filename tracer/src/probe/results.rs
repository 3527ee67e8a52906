//! Syscall results for capability checks. A capability granted inside a syscall that failed
//! anyway is not a need (docs/capability-checks.md, F1), so the kernel side holds a check made
//! in one of [`RESULT_SYSCALLS`] until the syscall returns.
//!
//! The result comes from each syscall's own exit event, `syscalls:sys_exit_<name>`, not from
//! `raw_syscalls:sys_exit`: for a syscall with no program on its event the kernel returns after
//! testing a bitmap (kernel/trace/trace_syscalls.c, perf_syscall_exit()), while a program on
//! `raw_syscalls:sys_exit` would run for every syscall of every process on the machine, doubling
//! what cinch costs the processes it does not trace. The syscalls are those a search walks,
//! where a grant in a failed call is common (each `PATH` entry an exec tries); a check in any
//! other syscall is counted at once, without a result, and counts as a need.

use aya::Ebpf;
use aya::maps::Array;
use aya::programs::TracePoint;
use aya::programs::trace_point::TracePointLink;
use cinch_common::{MAX_SYSCALLS, names};
use profile_gen::Arch;

/// The syscalls a search walks, whose result a capability check waits for: each `PATH` entry an
/// exec or a shell's lookup tries (execve, stat, access), each directory the dynamic loader or
/// an interpreter searches (openat, stat). Names a kernel or architecture lacks are skipped.
/// Every entry costs about 70 ms when the recording ends (see [`Links`]), so the list holds the
/// searches, not every syscall that takes a path.
pub(crate) const RESULT_SYSCALLS: &[&str] = &[
    "execve",
    "execveat",
    "open",
    "openat",
    "stat",
    "lstat",
    "newfstatat",
    "statx",
    "access",
    "faccessat",
    "faccessat2",
];

/// The exit program's attachments. Closing a syscall trace event waits for RCU grace periods
/// under the kernel's event mutex (kernel/trace/trace_event_perf.c, perf_trace_destroy()), about
/// 45 to 70 ms each here, one event at a time; [`Links::detach`] closes them from as many
/// threads, which shares what it can.
#[derive(Default)]
pub(crate) struct Links(Vec<TracePointLink>);

impl Links {
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Detaches every attachment, concurrently.
    pub(crate) fn detach(&mut self) {
        let links = std::mem::take(&mut self.0);
        std::thread::scope(|s| {
            for link in links {
                s.spawn(move || drop(link));
            }
        });
    }
}

impl Drop for Links {
    fn drop(&mut self) {
        self.detach();
    }
}

/// Attaches the exit program to every syscall of [`RESULT_SYSCALLS`] this kernel traces, then
/// marks them in `RESULT_TRACKED`: the attachments, or why there are none.
pub(super) fn attach(ebpf: &mut Ebpf) -> Result<Links, String> {
    crate::tracefs::ensure_mounted().map_err(|e| crate::error::sentence(&e))?;
    let events = crate::tracefs::mount_point()
        .unwrap_or_else(|| crate::tracefs::TRACEFS.into())
        .join("events/syscalls");
    if !events.is_dir() {
        return Err(format!(
            "{} does not exist (a kernel without CONFIG_FTRACE_SYSCALLS)",
            events.display()
        ));
    }
    let native = Arch::native();
    let program: &mut TracePoint = ebpf
        .program_mut(names::SYS_EXIT_SYSCALL)
        .ok_or("the eBPF object has no syscall exit program")?
        .try_into()
        .map_err(|e| format!("{e}"))?;
    program.load().map_err(|e| format!("loading it: {e}"))?;
    let mut tracked = Vec::new();
    let mut links = Links::default();
    let mut first_error = None;
    for name in RESULT_SYSCALLS {
        let Some(nr) = profile_gen::naming::table_number(native, name) else {
            continue;
        };
        let event = format!("sys_exit_{name}");
        if nr >= MAX_SYSCALLS || !events.join(&event).is_dir() {
            continue;
        }
        match program
            .attach("syscalls", &event)
            .and_then(|id| program.take_link(id))
        {
            Ok(link) => {
                links.0.push(link);
                tracked.push(nr);
            }
            Err(e) => {
                first_error.get_or_insert_with(|| format!("syscalls:{event}: {e}"));
            }
        }
    }
    if tracked.is_empty() {
        return Err(first_error.unwrap_or_else(|| "no syscall exit event to attach to".into()));
    }
    let mut table: Array<_, u32> = ebpf
        .map_mut(names::RESULT_TRACKED)
        .ok_or("the eBPF object has no RESULT_TRACKED map")?
        .try_into()
        .map_err(|e| format!("{e}"))?;
    for nr in &tracked {
        table
            .set(*nr, 1, 0)
            .map_err(|e| format!("marking syscall {nr}: {e}"))?;
    }
    Ok(links)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every name is a syscall on some architecture cinch knows (a typo would silently never
    /// attach), and the exec that walks `PATH` is there on each.
    #[test]
    fn every_result_syscall_is_a_syscall() {
        for name in RESULT_SYSCALLS {
            assert!(
                [Arch::X86_64, Arch::Aarch64]
                    .iter()
                    .any(|&a| profile_gen::naming::table_number(a, name).is_some()),
                "{name}"
            );
        }
        for arch in [Arch::X86_64, Arch::Aarch64] {
            assert!(profile_gen::naming::table_number(arch, "execve").is_some());
        }
    }
}
