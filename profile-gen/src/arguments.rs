//! Argument-sensitive syscalls: the ones where a bare name in a profile allows more than
//! Docker's default does, or than the workload ever did. For these the kernel side records one
//! argument (masked), and the generator allows only the values observed.
//!
//! Why each is here (Docker's default, moby `profiles/seccomp/default.json`, conditions the
//! first three; the rest it allows bare, which is the hole a recorded profile can close):
//!
//! | syscall | argument | kept | why |
//! | --- | --- | --- | --- |
//! | `socket`, `socketpair` | 0, domain | the family | AF_ALG (38) and AF_VSOCK (40) are kernel attack surface Docker refuses; AF_NETLINK, AF_PACKET reach the host's network stack |
//! | `clone` | 0, flags | the namespace bits | `CLONE_NEWUSER` and the other `CLONE_NEW*` create namespaces, where container escapes start; Docker refuses them without SYS_ADMIN |
//! | `unshare` | 0, flags | the namespace bits and `CLONE_NEWTIME` | the same, for the calling process |
//! | `setns` | 1, nstype | all 32 bits | which kind of namespace may be joined |
//! | `personality` | 0, persona | all 32 bits | `ADDR_NO_RANDOMIZE` and friends turn off hardening; Docker allows five values |
//! | `ioctl` | 1, request | all 32 bits | TIOCSTI injects input into a terminal, and every driver has its own requests |
//! | `prctl` | 0, option | all 32 bits | options range from harmless names to `PR_SET_MM` |
//! | `mmap`, `mprotect`, `pkey_mprotect` | 2, prot | PROT_WRITE and PROT_EXEC | memory both writable and executable is what an injected payload needs |
//!
//! Values are compared as the kernel reads them: the kernel takes these arguments as 32-bit
//! `int`s, so rules mask with 0xffffffff (SCMP_CMP_MASKED_EQ) and garbage in the upper half of a
//! register cannot slip past or trip a rule.
//!
//! On 32-bit x86 `mmap` takes a pointer to its arguments (old_mmap) and `socketcall` multiplexes
//! the socket calls through a pointer: seccomp cannot see through pointers, so those are not
//! recorded and keep Docker's conditions, as does everything on an architecture whose register
//! layout the tracer does not know.

use std::collections::BTreeSet;

use crate::arch::Arch;

/// The namespace bits of clone(2) flags: CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER,
/// NEWPID, NEWNET (Docker's mask 2114060288).
pub const CLONE_NS_MASK: u64 = 0x7E02_0000;
/// CLONE_NEWTIME: only unshare (and clone3) take it; for clone the bit is CSIGNAL's.
pub const CLONE_NEWTIME: u64 = 0x80;
pub const PROT_WRITE: u64 = 0x2;
pub const PROT_EXEC: u64 = 0x4;
const INT: u64 = 0xffff_ffff;

/// How observed values become rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One rule per observed value: `arg & mask == value`.
    Values,
    /// Allowed unless writable and executable at once, unless that was observed.
    NoWriteExec,
}

/// One argument-sensitive syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgSyscall {
    pub name: &'static str,
    /// Which argument, from 0.
    pub index: u32,
    /// What of it the kernel side keeps.
    pub mask: u64,
    pub kind: Kind,
    /// More distinct values than this in one profile and the rule list stops being readable:
    /// the generator then falls back to Docker's conditions for the syscall, and says so.
    pub max_values: usize,
    /// Architectures where the argument is behind a pointer (or the call is another one).
    pub not_on: &'static [Arch],
}

pub const ARG_SYSCALLS: &[ArgSyscall] = &[
    ArgSyscall {
        name: "socket",
        index: 0,
        mask: INT,
        kind: Kind::Values,
        max_values: 16,
        not_on: &[],
    },
    ArgSyscall {
        name: "socketpair",
        index: 0,
        mask: INT,
        kind: Kind::Values,
        max_values: 16,
        not_on: &[],
    },
    ArgSyscall {
        name: "clone",
        index: 0,
        mask: CLONE_NS_MASK,
        kind: Kind::Values,
        max_values: 16,
        // s390 swaps clone's first two arguments; cinch records no s390 arguments anyway.
        not_on: &[Arch::S390x],
    },
    ArgSyscall {
        name: "unshare",
        index: 0,
        mask: CLONE_NS_MASK | CLONE_NEWTIME,
        kind: Kind::Values,
        max_values: 16,
        not_on: &[],
    },
    ArgSyscall {
        name: "setns",
        index: 1,
        mask: INT,
        kind: Kind::Values,
        max_values: 16,
        not_on: &[],
    },
    ArgSyscall {
        name: "personality",
        index: 0,
        mask: INT,
        kind: Kind::Values,
        max_values: 16,
        not_on: &[],
    },
    ArgSyscall {
        name: "ioctl",
        index: 1,
        mask: INT,
        kind: Kind::Values,
        max_values: 64,
        not_on: &[],
    },
    ArgSyscall {
        name: "prctl",
        index: 0,
        mask: INT,
        kind: Kind::Values,
        max_values: 64,
        not_on: &[],
    },
    ArgSyscall {
        name: "mmap",
        index: 2,
        mask: PROT_WRITE | PROT_EXEC,
        kind: Kind::NoWriteExec,
        max_values: 4,
        not_on: &[Arch::X86, Arch::Arm],
    },
    ArgSyscall {
        name: "mmap2",
        index: 2,
        mask: PROT_WRITE | PROT_EXEC,
        kind: Kind::NoWriteExec,
        max_values: 4,
        not_on: &[],
    },
    ArgSyscall {
        name: "mprotect",
        index: 2,
        mask: PROT_WRITE | PROT_EXEC,
        kind: Kind::NoWriteExec,
        max_values: 4,
        not_on: &[],
    },
    ArgSyscall {
        name: "pkey_mprotect",
        index: 2,
        mask: PROT_WRITE | PROT_EXEC,
        kind: Kind::NoWriteExec,
        max_values: 4,
        not_on: &[],
    },
];

/// The entry for `name` on `arch`, if its argument is recorded there.
pub fn lookup(arch: Arch, name: &str) -> Option<&'static ArgSyscall> {
    ARG_SYSCALLS
        .iter()
        .find(|a| a.name == name && !a.not_on.contains(&arch))
}

/// Every mask the table uses, without duplicates, in a fixed order (the kernel side's
/// `ARG_MASKS`; slot 0 is never used, so a zero spec byte means "not recorded").
pub fn masks() -> Vec<u64> {
    let mut out = vec![0];
    for a in ARG_SYSCALLS {
        if !out.contains(&a.mask) {
            out.push(a.mask);
        }
    }
    out
}

/// The slot of `mask` in [`masks`].
pub fn mask_slot(mask: u64) -> Option<u32> {
    masks()
        .iter()
        .position(|m| *m == mask)
        .and_then(|i| u32::try_from(i).ok())
}

/// Names that have an entry on some architecture.
pub fn names() -> BTreeSet<&'static str> {
    ARG_SYSCALLS.iter().map(|a| a.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::naming::{self, NameStatus};

    #[test]
    fn the_table_is_sane() {
        assert!(masks().len() <= 8, "the kernel side has 8 mask slots");
        for a in ARG_SYSCALLS {
            assert_eq!(
                naming::name_status(a.name),
                NameStatus::Libseccomp,
                "{}",
                a.name
            );
            assert!(a.index < 6, "{}", a.name);
            assert!(a.mask != 0 && a.mask <= INT, "{}", a.name);
            assert!(mask_slot(a.mask).is_some_and(|s| s > 0));
        }
        // Docker's clone mask.
        assert_eq!(CLONE_NS_MASK, 2_114_060_288);
    }

    #[test]
    fn pointer_arguments_are_not_recorded() {
        assert!(
            lookup(Arch::X86, "mmap").is_none(),
            "old_mmap takes a struct pointer"
        );
        assert!(lookup(Arch::X86, "mmap2").is_some());
        assert!(lookup(Arch::X86_64, "mmap").is_some());
        assert!(lookup(Arch::X86_64, "socketcall").is_none());
    }
}
