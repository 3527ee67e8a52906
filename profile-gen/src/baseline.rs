//! Runtime baselines: the syscalls a container runtime itself makes after it installed the
//! container's seccomp filter and before the entrypoint runs (docs/DESIGN.md, "container startup
//! boundary"). A recording that watched the container start contains them; one that attached
//! later (`startup_observed: false`) does not, and a profile without them stops the container
//! from starting. Each list is a data file that says where it comes from.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    Runc,
    Crun,
}

impl Runtime {
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Runc => "runc",
            Runtime::Crun => "crun",
        }
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baseline {
    pub runtime: Runtime,
    /// Runtime version the list belongs to.
    pub version: String,
    /// `measured` or how else the list was obtained.
    pub status: String,
    /// Where the list comes from.
    pub source: String,
    /// Why the runtime's calls must be in the profile.
    pub why: String,
    pub syscalls: BTreeSet<String>,
    /// The part of `syscalls` a start makes or not depending on scheduling (a Go runtime's
    /// threads): one observed start does not show them all, so they are added for every
    /// container recording, observed start or not.
    #[serde(default)]
    pub varies: BTreeSet<String>,
    /// Why `varies` holds what it does, and how it was measured.
    #[serde(default)]
    pub varies_why: String,
}

/// How much of a baseline went into a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every call: a recording did not observe the container start.
    Whole,
    /// Only the calls that vary between starts: every start was observed, each once.
    Varies,
}

impl Baseline {
    /// The calls of `scope`.
    pub fn calls(&self, scope: Scope) -> &BTreeSet<String> {
        match scope {
            Scope::Whole => &self.syscalls,
            Scope::Varies => &self.varies,
        }
    }
}

const RUNC: &str = include_str!("../data/baseline-runc.json");
const CRUN: &str = include_str!("../data/baseline-crun.json");

/// The embedded baseline for `runtime` (checked by unit tests: parses, every name is known to
/// libseccomp, nothing dangerous).
pub fn baseline(runtime: Runtime) -> &'static Baseline {
    static RUNC_PARSED: OnceLock<Baseline> = OnceLock::new();
    static CRUN_PARSED: OnceLock<Baseline> = OnceLock::new();
    let (cell, data) = match runtime {
        Runtime::Runc => (&RUNC_PARSED, RUNC),
        Runtime::Crun => (&CRUN_PARSED, CRUN),
    };
    cell.get_or_init(|| {
        serde_json::from_str(data)
            .expect("the runtime baselines are embedded at build time and checked by unit tests")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Arch;
    use crate::naming::{self, NameStatus};
    use crate::report::DANGEROUS_SYSCALLS;

    #[test]
    fn baselines_are_sane() {
        for runtime in [Runtime::Runc, Runtime::Crun] {
            let b = baseline(runtime);
            assert_eq!(b.runtime, runtime);
            assert!(!b.syscalls.is_empty());
            assert!(
                b.syscalls.contains("execve"),
                "{runtime}: the entrypoint's execve"
            );
            for name in &b.syscalls {
                assert_eq!(
                    naming::name_status(name),
                    NameStatus::Libseccomp,
                    "{runtime}: {name}"
                );
                assert!(
                    naming::syscall_number(Arch::X86_64, name).is_some(),
                    "{runtime}: {name} on x86_64"
                );
                // docs/PEERS.md: base lists that include mount, pivot_root, unshare, setns, keyctl
                // are over-broad.
                assert!(
                    !DANGEROUS_SYSCALLS.iter().any(|(d, _)| d == name),
                    "{runtime}: {name} is dangerous"
                );
            }
        }
    }

    #[test]
    fn what_varies_is_part_of_the_list_and_said_why() {
        for runtime in [Runtime::Runc, Runtime::Crun] {
            let b = baseline(runtime);
            assert!(b.varies.is_subset(&b.syscalls), "{runtime}");
            assert_eq!(b.varies.is_empty(), b.varies_why.is_empty(), "{runtime}");
        }
        // runc's Go runtime: a thread woken in one start and not the next.
        assert!(baseline(Runtime::Runc).varies.contains("futex"));
    }

    #[test]
    fn runc_starts_from_the_measured_list() {
        let b = baseline(Runtime::Runc);
        assert_eq!(b.version, "1.1.5");
        // docs/DESIGN.md's strace measurement: the data file, measured again with cinch, keeps it.
        let design = "read write close fstat newfstatat openat getdents64 fcntl fstatfs \
                      faccessat2 getcwd chdir capget capset prctl setgroups setgid setuid getpid \
                      getppid futex epoll_ctl rt_sigreturn execve";
        for name in design.split_whitespace() {
            assert!(b.syscalls.contains(name), "{name}");
        }
    }
}
