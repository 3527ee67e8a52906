//! The ABI between cinch's eBPF probes and its tracer: map layouts, event structs, constants.
//!
//! Everything here is `#[repr(C)]`, `Copy`, padded explicitly and size-asserted, because the same
//! bytes are written by BPF programs and read by userspace. No pointers, no `bool`.

#![no_std]

use core::mem::size_of;

/// Syscall numbers per architecture table. The highest number on any supported architecture
/// is below 470 (Linux 6.18); 512 leaves room and keeps the index arithmetic a shift.
pub const MAX_SYSCALLS: u32 = 512;

/// Architecture tables per target: the native one and its 32-bit compat (x86 on x86_64).
pub const ARCH_NATIVE: u32 = 0;
pub const ARCH_COMPAT: u32 = 1;
pub const ARCH_TABLES: u32 = 2;

/// Counter cells per target: one per (architecture table, syscall number).
pub const CELLS_PER_TARGET: u32 = ARCH_TABLES * MAX_SYSCALLS;

/// The most targets (recordings) one tracer serves at once. The per-CPU counter map is sized
/// at load time for the targets actually needed, up to this.
pub const MAX_TARGETS: u32 = 256;

/// `TASK_TARGET[tgid]` holds 0 for an untracked process, else `slot + 1` in the low 16 bits
/// plus the flags below.
pub const TRACK_SLOT_MASK: u32 = 0xffff;
/// The process was registered before its `execve` (`cinch record -- COMMAND`): nothing is
/// counted until it calls execve/execveat, which is counted and clears the flag.
pub const TRACK_PENDING_EXEC: u32 = 1 << 16;

/// Index of a syscall counter cell.
#[inline(always)]
pub const fn cell(slot: u32, arch: u32, nr: u32) -> u32 {
    slot * CELLS_PER_TARGET + arch * MAX_SYSCALLS + nr
}

/// Per-target state, `TARGETS[slot]`. Updated atomically by the fork and exit probes only.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TargetState {
    /// Thread groups of the target currently alive.
    pub live: u32,
    /// `TARGET_*` flags.
    pub flags: u32,
    /// Thread groups ever seen (registered ones included).
    pub processes_seen: u64,
}
const _: () = assert!(size_of::<TargetState>() == 16);

/// The slot is in use.
pub const TARGET_ACTIVE: u32 = 1;

/// Per-CPU error and loss counters, `STATS[code]`; the tracer sums them and reports every
/// non-zero one.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stat {
    /// A tracked syscall whose number is outside `0..MAX_SYSCALLS` (not stored).
    SyscallOutOfRange = 0,
    /// A counter cell could not be looked up (slot beyond the sized map).
    CounterMiss = 1,
    /// A new process of a target could not be tracked (its tgid is beyond the map).
    TrackMiss = 2,
    /// A rare event did not fit in the ring buffer (live status only; never the profile).
    RingDrop = 3,
    /// A kernel read (bpf_probe_read_kernel) failed.
    ReadFailed = 4,
    /// A capability check could not be aggregated (CAP_CHECKS full).
    CapMiss = 5,
    /// A capability check's kernel stack could not be taken (its caller is then unknown).
    StackMiss = 6,
}
pub const STAT_COUNT: u32 = 7;

/// Kernel return addresses kept per capability check, innermost first: enough to pass the BPF
/// and capability plumbing frames and reach the caller with some context.
pub const CAP_STACK_DEPTH: usize = 16;

/// Aggregation key of a capability check: who asked for what, from where, with what result.
/// The stack is part of the key (not an id into a stack map, whose hash collisions lose stacks,
/// and a check without its caller cannot be classified as noise).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CapKey {
    pub slot: u32,
    /// CAP_* number.
    pub cap: u32,
    /// 1 when the kernel granted the capability.
    pub granted: u32,
    /// `ARCH_NATIVE` / `ARCH_COMPAT` of the syscall in progress.
    pub arch: u32,
    /// The syscall in progress; `NO_SYSCALL` outside one.
    pub nr: u32,
    /// Number of valid entries in `stack` (0 when the stack could not be taken).
    pub depth: u32,
    /// The checking task's comm (NUL-padded), i.e. which program needed it.
    pub comm: [u8; 16],
    pub stack: [u64; CAP_STACK_DEPTH],
}
const _: () = assert!(size_of::<CapKey>() == 40 + 8 * CAP_STACK_DEPTH);

pub const NO_SYSCALL: u32 = u32::MAX;
/// Distinct capability-check keys kept per tracer.
pub const MAX_CAP_KEYS: u32 = 16_384;

/// Rare events for the live status, through the ring buffer.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A new thread group joined a target.
    Fork = 1,
    /// A target's thread group exited (the whole group).
    Exit = 2,
    /// A target used a syscall for the first time.
    FirstSyscall = 3,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Event {
    /// `EventKind` value.
    pub kind: u32,
    pub slot: u32,
    pub tgid: u32,
    /// Syscall number for `FirstSyscall`, else 0.
    pub nr: u32,
    /// `ARCH_NATIVE` / `ARCH_COMPAT` for `FirstSyscall`, else 0.
    pub arch: u32,
    pub _pad: u32,
}
const _: () = assert!(size_of::<Event>() == 24);

/// Names of maps, programs and globals, shared so a rename cannot silently break loading.
pub mod names {
    pub const TASK_TARGET: &str = "TASK_TARGET";
    pub const TARGETS: &str = "TARGETS";
    pub const COUNTS: &str = "COUNTS";
    pub const SEEN: &str = "SEEN";
    pub const STATS: &str = "STATS";
    pub const EVENTS: &str = "EVENTS";
    pub const CAP_CHECKS: &str = "CAP_CHECKS";

    pub const SYS_ENTER_TP_BTF: &str = "sys_enter_btf";
    pub const SYS_ENTER_RAW_TP: &str = "sys_enter_raw";
    pub const SYS_ENTER_TRACEPOINT: &str = "sys_enter_tp";
    pub const FORK: &str = "sched_fork";
    pub const EXIT: &str = "sched_exit";
    pub const CAP_CAPABLE_TP_BTF: &str = "cap_capable_btf";

    pub const G_TRACER_TGID: &str = "TRACER_TGID";
    pub const G_NR_EXECVE: &str = "NR_EXECVE";
    pub const G_NR_EXECVEAT: &str = "NR_EXECVEAT";
    pub const G_OFF_COMPAT_STATUS: &str = "OFF_COMPAT_STATUS";
    pub const G_COMPAT_FLAG: &str = "COMPAT_FLAG";
    pub const G_OFF_TASK_PID: &str = "OFF_TASK_PID";
    pub const G_OFF_TASK_TGID: &str = "OFF_TASK_TGID";
    pub const G_OFF_REGS_SYSCALL_NR: &str = "OFF_REGS_SYSCALL_NR";
}

/// Marks an offset global as "not available on this kernel/architecture".
pub const NO_OFFSET: u32 = u32::MAX;

#[cfg(feature = "user")]
mod pod {
    // SAFETY: plain old data: repr(C), Copy, no padding holes (sizes asserted above).
    unsafe impl aya::Pod for super::TargetState {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Event {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::CapKey {}
}
