//! Maps and load-time globals. Immutable configuration is a global set by the tracer when it
//! loads the object; changing sets are maps.

use aya_ebpf::{
    Global,
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray, Queue, RingBuf},
};
use core::intrinsics::{AtomicOrdering, atomic_xadd};
use core::mem::MaybeUninit;

use cinch_common::{
    ARG_MASKS_LEN, ARG_SPEC_LEN, ArgKey, CELLS_PER_TARGET, CRED_IDS, CapKey, CredKey, MAX_ARG_KEYS,
    MAX_ARGS, MAX_BOUND, MAX_CAP_KEYS, MAX_CRED_KEYS, MAX_KNOWN_MNTNS, MAX_NET_KEYS,
    MAX_PENDING_THREADS, MAX_PRIV_EXECS, MAX_READ_KEYS, MAX_SYSCALLS, MAX_TARGETS, MNTNS_OFF,
    NO_OFFSET, NetKey, PathBytes, PendingChecks, PrivExecKey, ReadKey, STAT_COUNT, Stat,
    TRACK_GEN_MASK, TRACK_SLOT_MASK, TargetCounts, TargetState, track_gen, usage, with_gen,
};

/// Which target a thread group belongs to, indexed by tgid (0 = none). Sized to the kernel's
/// `pid_max` at load time, so every tgid has a cell: an array lookup is inlined by the verifier
/// and costs a few instructions, which is the filter every syscall of every process pays.
/// Cleared when the thread group dies, so a recycled pid is never attributed to a target.
#[map]
pub static TASK_TARGET: Array<u32> = Array::with_max_entries(4_194_304, 0);

/// Bumped whenever a thread may have become tracked, atomically, by the probes; the tracer writes
/// [`TRACK_EPOCH_TRACER`]. The sum of the two only grows, so a change of it invalidates every
/// [`UNTRACKED`] verdict taken before. Globals in sections of their own (each its own map, one
/// writer each): read with a direct load, not a map lookup.
#[unsafe(no_mangle)]
#[unsafe(link_section = ".data.epoch_probes")]
pub static mut TRACK_EPOCH_PROBES: u64 = 0;
#[unsafe(no_mangle)]
#[unsafe(link_section = ".data.epoch_tracer")]
pub static mut TRACK_EPOCH_TRACER: u64 = 0;

/// Per CPU, the last thread `sys_enter` found untracked there: its `struct pt_regs` pointer
/// (the top of its kernel stack, so one thread's while it lives) and the tracking epoch sum
/// read before it was looked up. The same thread's next syscall on this CPU leaves after
/// comparing them, without a helper call (a call and its return cost an untracked syscall
/// about 20 ns on this hardware). A pointer is reused only after its thread is gone, and a new
/// thread that is tracked bumps the epoch.
#[map]
pub static UNTRACKED: PerCpuArray<[u64; 2]> = PerCpuArray::with_max_entries(1, 0);

#[map]
pub static TARGETS: Array<TargetState> = Array::with_max_entries(MAX_TARGETS, 0);

/// Syscall counts per target, each a [`TargetCounts`] indexed by (architecture table, number),
/// per CPU: no atomics, no sharing. Sized at load time for the targets in use.
#[map]
pub static COUNTS: PerCpuArray<TargetCounts> = PerCpuArray::with_max_entries(1, 0);

/// One bit per counter cell, shared: set the first time any CPU sees the syscall, to emit a
/// "first seen" event for the live status. Written without atomics; a lost race only repeats an
/// event, never loses a count (the counts are the source of truth).
#[map]
pub static SEEN: Array<u64> = Array::with_max_entries(MAX_TARGETS * CELLS_PER_TARGET / 64, 0);

#[map]
pub static STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(STAT_COUNT, 0);

#[map]
pub static EVENTS: RingBuf = RingBuf::with_byte_size(256 * 1024, 0);

/// Filesystem writes and reads of targets ([`cinch_common::PathEvent`], 1,336 bytes each):
/// drained every tick; a full ring loses the event, which `Stat::PathDrop` (a write) or
/// `Stat::ReadDrop` (a read) reports.
#[map]
pub static PATHS: RingBuf = RingBuf::with_byte_size(4 * 1024 * 1024, 0);

/// The reads already sent ([`cinch_common::ReadKey`]).
#[map]
pub static READ_SEEN: LruHashMap<ReadKey, u8> = LruHashMap::with_max_entries(MAX_READ_KEYS, 0);

/// One CPU's path being read to hash (too large for the stack).
#[map]
pub static READ_PATH: PerCpuArray<PathBytes> = PerCpuArray::with_max_entries(1, 0);

/// Capability checks of tracked processes, counted by (target, capability, result, syscall,
/// program, kernel stack). Capability checks are rare next to syscalls, so a shared hash is fine
/// here.
#[map]
pub static CAP_CHECKS: HashMap<CapKey, u64> = HashMap::with_max_entries(MAX_CAP_KEYS, 0);

/// Capability checks waiting for the result of the syscall they happened in, by thread id:
/// `raw_syscalls:sys_exit` counts them with the result, the thread's exit counts them as unknown.
#[map]
pub static PENDING_CHECKS: HashMap<u32, PendingChecks> =
    HashMap::with_max_entries(MAX_PENDING_THREADS, 0);

/// The ids targets' processes ran with, counted by (target, ids, program).
#[map]
pub static CREDS: HashMap<CredKey, u64> = HashMap::with_max_entries(MAX_CRED_KEYS, 0);

/// Internet addresses targets bound, listened on and connected to, counted.
#[map]
pub static NETS: HashMap<NetKey, u64> = HashMap::with_max_entries(MAX_NET_KEYS, 0);

/// The address each socket was bound to, by `tgid << 32 | fd`, until its listen (least
/// recently used entries go first: a socket closed without a listen leaves one behind).
#[map]
pub static BOUND: LruHashMap<u64, NetKey> = LruHashMap::with_max_entries(MAX_BOUND, 0);

/// Execs of targets that gained privileges, counted by (target, program).
#[map]
pub static PRIV_EXECS: HashMap<PrivExecKey, u64> = HashMap::with_max_entries(MAX_PRIV_EXECS, 0);

/// Per native syscall number: 1 when its exit event is attached, so a check made in it can wait
/// for its result. Filled by the tracer after each attach.
#[map]
pub static RESULT_TRACKED: Array<u32> = Array::with_max_entries(MAX_SYSCALLS, 0);

/// One zeroed [`PendingChecks`], never written: what a new `PENDING_CHECKS` entry starts from
/// (too large for the BPF stack).
#[map]
pub static PENDING_TEMPLATE: Array<PendingChecks> = Array::with_max_entries(1, 0);

/// Mount namespace inode → target slot: containers. Processes entering one are followed.
#[map]
pub static MNTNS_SLOT: HashMap<u32, u32> = HashMap::with_max_entries(MAX_TARGETS, 0);

/// Mount namespaces that existed when recording started (`--new-containers`): the host's and
/// its services', by inode, each with its unique id (0 where the kernel does not say). A fork
/// in any other mount namespace starts a new target. An inode number is reused as soon as its
/// namespace is gone, so a namespace whose inode is known but whose id differs is new.
#[map]
pub static KNOWN_MNTNS: HashMap<u32, u64> = HashMap::with_max_entries(MAX_KNOWN_MNTNS, 0);

/// Mount namespaces whose targets the tracer gave up while their processes lived (a pod's
/// sandbox, a container the agent does not record), by [`cinch_common::dropped_key`]: a fork
/// there starts no new target. Least recently used first out: a namespace evicted while it
/// lives only starts a target again, which the tracer gives up again.
#[map]
pub static DROPPED_MNTNS: LruHashMap<u64, u32> = LruHashMap::with_max_entries(MAX_KNOWN_MNTNS, 0);

/// Each slot's generation ([`cinch_common::TRACK_GEN_SHIFT`]), bumped by the tracer when it
/// gives a target up early; a tracked cell of another generation is stale.
#[map]
pub static SLOT_GEN: Array<u32> = Array::with_max_entries(MAX_TARGETS, 0);

/// Target slots the kernel side may hand to new containers, filled by the tracer. A queue pop
/// is atomic, which the BPF instruction set offers no other way on every CPU version.
#[map]
pub static FREE_SLOTS: Queue<u32> = Queue::with_max_entries(MAX_TARGETS, 0);

/// Recorded argument values of the argument-sensitive syscalls, counted by (target, syscall,
/// masked value). Only those syscalls reach it, so a shared hash is fine; a full map loses the
/// value, which `ARG_LOST` and `Stat::ArgMiss` report (the generator then falls back to Docker's
/// conditions for that syscall, never to the bare name).
#[map]
pub static ARG_VALUES: HashMap<ArgKey, u64> = HashMap::with_max_entries(MAX_ARG_KEYS, 0);

/// One bit per counter cell (as `SEEN`): a value of that syscall could not be stored.
#[map]
pub static ARG_LOST: Array<u64> = Array::with_max_entries(MAX_TARGETS * CELLS_PER_TARGET / 64, 0);

/// A load-time array global: like [`Global`], read one element at a time (a `Global<[T; N]>`
/// would copy the whole array on every load).
#[repr(transparent)]
pub struct GlobalArray<T, const N: usize>(MaybeUninit<[T; N]>);

// SAFETY: read-only after load; the kernel freezes the section.
unsafe impl<T, const N: usize> Sync for GlobalArray<T, N> {}

impl<T: Copy, const N: usize> GlobalArray<T, N> {
    pub const fn new(value: [T; N]) -> Self {
        Self(MaybeUninit::new(value))
    }

    /// Element `i`, `None` past the end. A volatile read, so the compiler does not fold the
    /// compile-time contents (the loader replaces them).
    #[inline(always)]
    pub fn get(&self, i: usize) -> Option<T> {
        if i >= N {
            return None;
        }
        // SAFETY: in bounds of an initialised array.
        Some(unsafe { core::ptr::read_volatile(self.0.as_ptr().cast::<T>().add(i)) })
    }
}

/// Per (architecture table, syscall number): `arg_spec(index, mask)` for the syscalls whose
/// arguments are recorded, 0 for the rest.
#[unsafe(no_mangle)]
pub static ARG_SPEC: GlobalArray<u8, ARG_SPEC_LEN> = GlobalArray::new([0; ARG_SPEC_LEN]);
/// Per (architecture table, syscall number): the [`cinch_common::PathSpec`] of the syscalls
/// that write a path, 0 for the rest.
#[unsafe(no_mangle)]
pub static PATH_SPEC: GlobalArray<u32, ARG_SPEC_LEN> = GlobalArray::new([0; ARG_SPEC_LEN]);
/// Per (architecture table, syscall number): 1 for the syscalls that set ids (setuid and its
/// kin), 0 for the rest.
#[unsafe(no_mangle)]
pub static CRED_SPEC: GlobalArray<u8, ARG_SPEC_LEN> = GlobalArray::new([0; ARG_SPEC_LEN]);
/// Per (architecture table, syscall number): `NET_BIND`, `NET_LISTEN`, `NET_CONNECT`,
/// `NET_SENDTO`, `NET_SENDMSG`, or 0.
#[unsafe(no_mangle)]
pub static NET_SPEC: GlobalArray<u8, ARG_SPEC_LEN> = GlobalArray::new([0; ARG_SPEC_LEN]);
/// Offsets in `struct cred` of `uid`, `gid`, `euid`, `egid`; NO_OFFSET when unknown.
#[unsafe(no_mangle)]
pub static OFF_CRED_IDS: GlobalArray<u32, CRED_IDS> = GlobalArray::new([NO_OFFSET; CRED_IDS]);
/// What the exit probe reads for the resources a target used (`cinch_common::usage`); all
/// NO_OFFSET when one is missing (nothing is read then).
#[unsafe(no_mangle)]
pub static OFF_USAGE: GlobalArray<u32, { usage::LEN }> = GlobalArray::new([NO_OFFSET; usage::LEN]);
/// Offsets the directory walk of a relative path reads ([`cinch_common::walk`]); NO_OFFSET
/// when unknown (relative paths are then placed by the tracer from /proc, while it can).
#[unsafe(no_mangle)]
pub static OFF_PATH_WALK: GlobalArray<u32, { cinch_common::walk::LEN }> =
    GlobalArray::new([NO_OFFSET; cinch_common::walk::LEN]);
/// The masks spec bytes name.
#[unsafe(no_mangle)]
pub static ARG_MASKS: GlobalArray<u64, ARG_MASKS_LEN> = GlobalArray::new([0; ARG_MASKS_LEN]);
/// Offsets in `struct pt_regs` of the six syscall arguments, native table first, then compat;
/// NO_OFFSET where unknown (the argument is then not recorded).
#[unsafe(no_mangle)]
pub static OFF_REGS_ARGS: GlobalArray<u32, { 2 * MAX_ARGS as usize }> =
    GlobalArray::new([NO_OFFSET; 2 * MAX_ARGS as usize]);

/// The tracer's own tgid: never traced.
#[unsafe(no_mangle)]
pub static TRACER_TGID: Global<u32> = Global::new(0);
/// The native execve / execveat numbers (a process registered before exec starts counting at
/// its execve).
#[unsafe(no_mangle)]
pub static NR_EXECVE: Global<u32> = Global::new(u32::MAX);
#[unsafe(no_mangle)]
pub static NR_EXECVEAT: Global<u32> = Global::new(u32::MAX);
/// Offset of `task_struct.thread_info.status` and the TS_COMPAT bit (x86); NO_OFFSET when the
/// architecture has no compat syscalls to tell apart.
#[unsafe(no_mangle)]
pub static OFF_COMPAT_STATUS: Global<u32> = Global::new(NO_OFFSET);
#[unsafe(no_mangle)]
pub static COMPAT_FLAG: Global<u32> = Global::new(0);
/// Offsets of `task_struct.pid` and `task_struct.tgid`, from the running kernel's BTF.
#[unsafe(no_mangle)]
pub static OFF_TASK_PID: Global<u32> = Global::new(NO_OFFSET);
#[unsafe(no_mangle)]
pub static OFF_TASK_TGID: Global<u32> = Global::new(NO_OFFSET);

/// Offset of the syscall number in `struct pt_regs` (`orig_ax` on x86_64).
#[unsafe(no_mangle)]
pub static OFF_REGS_SYSCALL_NR: Global<u32> = Global::new(NO_OFFSET);

/// Offsets of `task_struct.nsproxy`, `nsproxy.mnt_ns`, `mnt_namespace.ns.inum` and
/// `task_struct.seccomp.mode`.
#[unsafe(no_mangle)]
pub static OFF_TASK_NSPROXY: Global<u32> = Global::new(NO_OFFSET);
#[unsafe(no_mangle)]
pub static OFF_NSPROXY_MNT_NS: Global<u32> = Global::new(NO_OFFSET);
#[unsafe(no_mangle)]
pub static OFF_MNT_NS_INUM: Global<u32> = Global::new(NO_OFFSET);
/// Offset of the mount namespace's unique 64-bit id (`mnt_namespace.ns.ns_id`, before Linux
/// 6.18 `mnt_namespace.seq`): never reused, unlike the inode number.
#[unsafe(no_mangle)]
pub static OFF_MNT_NS_ID: Global<u32> = Global::new(NO_OFFSET);
#[unsafe(no_mangle)]
pub static OFF_TASK_SECCOMP_MODE: Global<u32> = Global::new(NO_OFFSET);
/// Offsets of `task_struct.signal` and `signal_struct.live`, for kernels whose
/// sched_process_exit has no `group_dead` argument (before 6.16); NO_OFFSET when it has.
#[unsafe(no_mangle)]
pub static OFF_TASK_SIGNAL: Global<u32> = Global::new(NO_OFFSET);
#[unsafe(no_mangle)]
pub static OFF_SIGNAL_LIVE: Global<u32> = Global::new(NO_OFFSET);
/// Offset of `task_struct.real_cred`: override_creds() swaps `cred` but never `real_cred`.
#[unsafe(no_mangle)]
pub static OFF_TASK_CRED: Global<u32> = Global::new(NO_OFFSET);
/// Bit offset of `linux_binprm.secureexec` (a bitfield); NO_OFFSET when the kernel's BTF does
/// not have it (privilege-gaining execs are then not recorded).
#[unsafe(no_mangle)]
pub static OFF_BPRM_SECUREEXEC: Global<u32> = Global::new(NO_OFFSET);
/// `MNTNS_OFF`, `MNTNS_TARGETS` or `MNTNS_WATCH_NEW`.
#[unsafe(no_mangle)]
pub static MNTNS_MODE: Global<u32> = Global::new(MNTNS_OFF);

#[inline(always)]
pub fn bump(stat: Stat) {
    if let Some(p) = STATS.get_ptr_mut(stat as u32) {
        // SAFETY: per-CPU cell; BPF programs do not migrate while running.
        unsafe { *p += 1 };
    }
}

/// The tracking epoch ([`TRACK_EPOCH_PROBES`] + [`TRACK_EPOCH_TRACER`]): read before a thread is
/// looked up, stored with its untracked verdict.
#[inline(always)]
pub fn track_epoch() -> u64 {
    // SAFETY: 8-byte globals; volatile so that they are read here, before the lookup.
    unsafe {
        core::ptr::read_volatile(&raw const TRACK_EPOCH_PROBES)
            .wrapping_add(core::ptr::read_volatile(&raw const TRACK_EPOCH_TRACER))
    }
}

/// `track` as a task's cell holds it, or 0 when it is stale: its target was given up and its
/// slot handed on since the cell was written (its generation is not the slot's).
#[inline(always)]
pub fn current_track(track: u32) -> u32 {
    if track == 0 {
        return 0;
    }
    let generation = SLOT_GEN
        .get((track & TRACK_SLOT_MASK).wrapping_sub(1))
        .copied()
        .unwrap_or(0);
    if track_gen(track) == generation & TRACK_GEN_MASK {
        track
    } else {
        0
    }
}

/// A task's cell, read through [`current_track`]: a stale cell is cleared (its task is
/// untracked from now on).
///
/// # Safety
/// `cell` points at a valid `TASK_TARGET` cell.
#[inline(always)]
pub unsafe fn read_track(cell: *mut u32) -> u32 {
    // SAFETY: the caller's.
    let track = unsafe { *cell };
    let current = current_track(track);
    if current != track {
        // SAFETY: the caller's.
        unsafe { *cell = 0 };
    }
    current
}

/// The cell value that tracks a process in `slot`: `flags` and the slot's generation.
#[inline(always)]
pub fn track_for(slot: u32, flags: u32) -> u32 {
    let generation = SLOT_GEN.get(slot).copied().unwrap_or(0);
    with_gen((slot + 1) | flags, generation)
}

/// Says that a thread may have become tracked: every [`UNTRACKED`] verdict taken before is
/// stale. Called after the `TASK_TARGET` cell is written.
#[inline(always)]
pub fn tracking_changed() {
    // SAFETY: an 8-byte global; atomic, since forks on several CPUs bump it at once and a lost
    // bump could leave a stale verdict valid.
    unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(&raw mut TRACK_EPOCH_PROBES, 1) };
}
