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
/// The process belongs to a container whose runtime has not installed the seccomp filter yet:
/// nothing is counted until the task's seccomp mode is "filter" (the start-up boundary), or,
/// for a container without seccomp, until its first execve.
pub const TRACK_PENDING_SECCOMP: u32 = 1 << 17;
/// Capability checks are not counted until the process's next execve: in a container, the
/// runtime still uses its own privileges after installing the filter (setgroups, setuid, capset)
/// but those are not the workload's needs; `--cap-drop ALL` containers start fine.
pub const TRACK_CAPS_PENDING: u32 = 1 << 18;
/// Registered by the tracer when it attached (`--pid`, `--container`), not by a fork the
/// kernel side saw: it was never counted in `live`, so its exit is not subtracted either. The
/// tracer watches attached processes itself; `live` counts only what the kernel side added, so
/// only the kernel side ever writes it.
pub const TRACK_ATTACHED: u32 = 1 << 19;
/// The process's credentials may have changed (it was just registered, exec'd, or entered a
/// syscall that sets ids): its next counted syscall records them in `CREDS`.
pub const TRACK_CRED_PENDING: u32 = 1 << 20;
/// The high bits of a tracked cell: the generation of its slot when the cell was written. A
/// watch-mode target the tracer gives up early (a pod's sandbox, a container the agent does
/// not record) has its slot's generation in `SLOT_GEN` bumped and the slot handed on while its
/// processes may still live; a cell whose generation is not its slot's is stale, read as
/// untracked and cleared.
pub const TRACK_GEN_SHIFT: u32 = 21;
pub const TRACK_GEN_MASK: u32 = (1 << (32 - TRACK_GEN_SHIFT)) - 1;

/// The generation a tracked cell carries.
#[inline(always)]
pub const fn track_gen(track: u32) -> u32 {
    track >> TRACK_GEN_SHIFT
}

/// `track` (slot and flags) with generation `generation`.
#[inline(always)]
pub const fn with_gen(track: u32, generation: u32) -> u32 {
    (track & ((1 << TRACK_GEN_SHIFT) - 1)) | ((generation & TRACK_GEN_MASK) << TRACK_GEN_SHIFT)
}

/// Index of a syscall counter cell among all targets' (the `SEEN` bitmap).
#[inline(always)]
pub const fn cell(slot: u32, arch: u32, nr: u32) -> u32 {
    slot * CELLS_PER_TARGET + arch * MAX_SYSCALLS + nr
}

/// Index of a syscall counter within its target's [`TargetCounts`].
#[inline(always)]
pub const fn counter(arch: u32, nr: u32) -> u32 {
    arch * MAX_SYSCALLS + nr
}

/// One target's syscall counters, `COUNTS[slot]`, one copy per CPU. One 8 KiB value per target
/// rather than one map entry per counter: the kernel allocates per-CPU memory per entry, and
/// 1,024 small allocations per target made loading 128 targets take a tenth of a second (and
/// reading them back, a lookup per counter).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TargetCounts {
    pub counts: [u64; CELLS_PER_TARGET as usize],
}
const _: () = assert!(size_of::<TargetCounts>() == 8 * 1024);

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
    /// Mount namespace inode of a container target (0 for a process tree).
    pub mntns: u32,
    /// The first thread group of the target (for resolving a container while it runs).
    pub first_tgid: u32,
    /// Tasks (threads) alive now and the most alive at once, and the most thread groups alive
    /// at once: the processes the kernel side saw start (attached ones are not counted).
    pub threads: u32,
    pub threads_peak: u32,
    pub live_peak: u32,
    pub _pad: u32,
    /// CPU time of the counted tasks that exited (`se.sum_exec_runtime` at exit), ns.
    pub cpu_ns: u64,
    /// The peak resident sets of the counted thread groups that exited (`signal->maxrss` when
    /// the group dies), summed, in pages.
    pub maxrss_pages: u64,
    /// The unique id of a container target's mount namespace (0 where the kernel gives none).
    pub mntns_id: u64,
}
const _: () = assert!(size_of::<TargetState>() == 64);

/// The `DROPPED_MNTNS` key of a mount namespace: its unique id, else its inode number with the
/// top bit set (a kernel without ids).
#[inline(always)]
pub const fn dropped_key(inum: u32, id: u64) -> u64 {
    if id != 0 { id } else { (1 << 63) | inum as u64 }
}

/// The slot is in use.
pub const TARGET_ACTIVE: u32 = 1;
/// Counting started at a successful seccomp filter install in the container.
pub const TARGET_ARMED_SECCOMP: u32 = 1 << 1;
/// Counting started at the container's first execve (it runs without seccomp).
pub const TARGET_ARMED_EXEC: u32 = 1 << 2;

/// `SECCOMP_MODE_FILTER` (include/uapi/linux/seccomp.h).
pub const SECCOMP_MODE_FILTER: u32 = 2;

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
    /// A new container appeared but no target slot was free.
    SlotsExhausted = 7,
    /// A capability check could not be aggregated (CAP_CHECKS full).
    CapMiss = 5,
    /// A capability check's kernel stack could not be taken (its caller is then unknown).
    StackMiss = 6,
    /// An argument value could not be stored (ARG_VALUES full): that syscall's values are
    /// incomplete for its target, and `ARG_LOST` says which.
    ArgMiss = 8,
    /// A capability check inside a syscall could not wait for the syscall's result (the pending
    /// table was full): it is counted with the result unknown, so it counts as a need.
    PendingMiss = 9,
    /// A filesystem write did not fit in the `PATHS` ring: the recording's writes are
    /// incomplete, and the generator does not suggest a read-only root from them.
    PathDrop = 10,
    /// A set of ids could not be stored (`CREDS` full): the recording cannot say which users
    /// its processes ran as.
    CredMiss = 11,
    /// A socket address could not be stored (`NETS` full): the recording cannot say where its
    /// sockets listened and connected.
    NetMiss = 12,
    /// A file read or exec did not fit in the `PATHS` ring: the recording's reads are
    /// incomplete (the image use and the secret-looking files it reports then say so).
    ReadDrop = 13,
}
pub const STAT_COUNT: u32 = 14;

/// Argument recording (never wider than Docker's default): for a syscall whose `ARG_SPEC` byte
/// is not 0, the kernel side stores `args[index] & ARG_MASKS[mask]` for its target. The byte is
/// [`arg_spec`]`(index, mask)`; the tracer fills the table from the generator's list of
/// argument-sensitive syscalls, per architecture table, so every other syscall pays one load
/// and one branch. `ARG_SPEC` is indexed like a target's counters ([`counter`]).
pub const ARG_SPEC_LEN: usize = CELLS_PER_TARGET as usize;
/// Masks a spec byte can name.
pub const ARG_MASKS_LEN: usize = 8;
/// Syscall arguments as the ABI passes them.
pub const MAX_ARGS: u32 = 6;

/// The `ARG_SPEC` byte for argument `index` (0..6) masked with `ARG_MASKS[mask]` (0..8).
#[inline(always)]
pub const fn arg_spec(index: u32, mask: u32) -> u8 {
    ((mask << 3) | (index + 1)) as u8
}

/// Argument index of a non-zero spec byte.
#[inline(always)]
pub const fn arg_spec_index(spec: u8) -> u32 {
    (spec & 7) as u32 - 1
}

/// Mask slot of a non-zero spec byte.
#[inline(always)]
pub const fn arg_spec_mask(spec: u8) -> u32 {
    (spec >> 3) as u32
}

/// A recorded argument value: target, syscall (as its counter cell) and the masked value.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArgKey {
    pub slot: u32,
    /// [`counter`]`(arch, nr)`.
    pub cell: u32,
    pub value: u64,
}
const _: () = assert!(size_of::<ArgKey>() == 16);
const _: () =
    assert!(size_of::<PendingChecks>() == 8 + MAX_PENDING_CHECKS * (size_of::<CapKey>() + 8));

/// Distinct (target, syscall, value) triples kept per tracer.
pub const MAX_ARG_KEYS: u32 = 16_384;

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
    /// 1 when the checked credentials are the task's own (`current->real_cred`); 0 when the kernel
    /// checked credentials it borrowed with override_creds() (overlayfs acting as its mounter,
    /// for instance), which says nothing about what the task itself needs.
    pub own_cred: u32,
    /// 1 when the kernel asked without auditing (`CAP_OPT_NOAUDIT`): a probe, not a need. Only
    /// the fexit source sees the flag; the tracepoint has no such field.
    pub noaudit: u32,
    /// What the syscall in progress returned: 0 when it succeeded, `-errno` when it failed,
    /// [`RESULT_UNKNOWN`] outside a syscall or when its return was not seen.
    pub result: i32,
    pub reserved: u32,
    /// The checking task's comm (NUL-padded), i.e. which program needed it.
    pub comm: [u8; 16],
    pub stack: [u64; CAP_STACK_DEPTH],
}
const _: () = assert!(size_of::<CapKey>() == 56 + 8 * CAP_STACK_DEPTH);

/// An exec of a target that gained privileges (`linux_binprm.secureexec`: a set-user-ID or
/// set-group-ID file, file capabilities, an LSM transition): what no-new-privileges would stop.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PrivExecKey {
    pub slot: u32,
    /// The new program's comm (the file's name, NUL-padded).
    pub comm: [u8; 16],
}
const _: () = assert!(size_of::<PrivExecKey>() == 20);

/// Distinct (target, program) privilege-gaining execs kept per tracer.
pub const MAX_PRIV_EXECS: u32 = 256;

/// The ids a target's process ran with (its `real_cred`), by program: recorded after each
/// registration, exec and id-setting syscall.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CredKey {
    pub slot: u32,
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub egid: u32,
    pub comm: [u8; 16],
}
const _: () = assert!(size_of::<CredKey>() == 36);

/// Distinct (target, ids, program) kept per tracer.
pub const MAX_CRED_KEYS: u32 = 1024;

/// `NET_SPEC` values: the socket calls whose address says what network a workload uses.
pub const NET_BIND: u8 = 1;
pub const NET_LISTEN: u8 = 2;
pub const NET_CONNECT: u8 = 3;
/// `sendto` to an address (arguments 4 and 5); counted as a connect.
pub const NET_SENDTO: u8 = 4;
/// `sendmsg` with a `msg_name`; counted as a connect.
pub const NET_SENDMSG: u8 = 5;

/// One Internet address a target's socket was bound to, listened on or connected to, counted
/// in `NETS`. A listen is the address its socket was bound to (from `BOUND`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NetKey {
    pub slot: u32,
    /// `NET_BIND`, `NET_LISTEN` or `NET_CONNECT`.
    pub kind: u8,
    pub _pad: u8,
    /// `AF_INET` or `AF_INET6`.
    pub family: u16,
    /// Host byte order.
    pub port: u16,
    pub _pad2: u16,
    /// The address in network byte order; an IPv4 address in the first 4 bytes.
    pub addr: [u8; 16],
}
const _: () = assert!(size_of::<NetKey>() == 28);

/// Distinct (target, call, address, port) kept per tracer.
pub const MAX_NET_KEYS: u32 = 1024;
/// Sockets bound and not yet known to be listened on, by (tgid, descriptor).
pub const MAX_BOUND: u32 = 4096;

/// `OFF_CRED_IDS` entries: `cred.uid`, `cred.gid`, `cred.euid`, `cred.egid`.
pub const CRED_IDS: usize = 4;

/// Filesystem writes and reads: for a syscall whose `PATH_SPEC` entry is not 0, the kernel side
/// sends its path (and, for rename and link, the second path) with the directory descriptor it
/// is relative to, as a [`PathEvent`] on the `PATHS` ring. An open-like syscall writes when its
/// flags carry a write intent ([`OPEN_WRITE_FLAGS`]) and reads otherwise; an exec
/// ([`PATH_SPEC_EXEC`]) reads. A read is sent once per target, path and directory
/// (`READ_SEEN`): a file a server opens for every request is one event. The entry packs argument
/// indexes plus one (0: none) in 3-bit fields; the tracer fills the table per architecture
/// table, indexed like a target's counters ([`counter`]).
pub const PATH_LEN: usize = 256;

/// Directory names a [`PathEvent`] carries, from the leaf up.
pub const DIR_COMPONENTS: usize = 12;
/// Bytes per directory name (longer names are cut, and the directory is then not placed).
pub const COMPONENT_LEN: usize = 64;

/// A path-writing syscall of a target, as the kernel saw it: paths are the caller's strings,
/// relative to `dirfd` (`AT_FDCWD`: the working directory) unless absolute. For a relative
/// first path the kernel side also walks the directory it is relative to up to the process's
/// root, and sends the names it passed ([`DIR_COMPLETE`]): the process may be gone before the
/// tracer could ask where it was.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PathEvent {
    pub slot: u32,
    pub tgid: u32,
    pub nr: u32,
    pub arch: u32,
    pub dirfd: i32,
    pub dirfd2: i32,
    /// The open flags for open-like syscalls, else 0.
    pub flags: u64,
    pub comm: [u8; 16],
    /// `DIR_*`: what `dir` holds.
    pub dir_state: u32,
    /// Names in `dir`.
    pub dir_depth: u32,
    /// NUL-terminated; empty when it could not be read.
    pub path: [u8; PATH_LEN],
    /// The second path (rename, link, symlink's link name); empty for the others.
    pub path2: [u8; PATH_LEN],
    /// The directory `path` is relative to, leaf first, each name NUL-terminated.
    pub dir: [[u8; COMPONENT_LEN]; DIR_COMPONENTS],
}
const _: () = assert!(size_of::<PathEvent>() == 56 + 2 * PATH_LEN + DIR_COMPONENTS * COMPONENT_LEN);

/// [`PathEvent::dir_state`]: not walked (the path is absolute, or there is no path).
pub const DIR_NONE: u32 = 0;
/// The walk reached the process's root (or its mount namespace's): `dir` is the whole way.
pub const DIR_COMPLETE: u32 = 1;
/// Deeper than [`DIR_COMPONENTS`], a name could not be read, or the descriptor was not a
/// directory the kernel side could follow.
pub const DIR_FAILED: u32 = 2;

/// `OFF_PATH_WALK` entries: offsets the directory walk reads, from the kernel's BTF.
pub mod walk {
    pub const TASK_FS: usize = 0;
    pub const FS_PWD_DENTRY: usize = 1;
    pub const FS_PWD_MNT: usize = 2;
    pub const FS_ROOT_DENTRY: usize = 3;
    pub const FS_ROOT_MNT: usize = 4;
    pub const DENTRY_PARENT: usize = 5;
    pub const DENTRY_NAME: usize = 6;
    pub const VFSMOUNT_ROOT: usize = 7;
    pub const MOUNT_MNT: usize = 8;
    pub const MOUNT_PARENT: usize = 9;
    pub const MOUNT_MOUNTPOINT: usize = 10;
    pub const TASK_FILES: usize = 11;
    pub const FILES_FDT: usize = 12;
    pub const FDT_FD: usize = 13;
    pub const FDT_MAX_FDS: usize = 14;
    pub const FILE_PATH_DENTRY: usize = 15;
    pub const FILE_PATH_MNT: usize = 16;
    pub const LEN: usize = 17;
}

/// `OFF_USAGE` entries: what the exit probe reads for the resources a target used.
pub mod usage {
    /// `task_struct.signal`.
    pub const TASK_SIGNAL: usize = 0;
    /// `signal_struct.maxrss`: the group's peak resident set, in pages, set when it dies.
    pub const SIGNAL_MAXRSS: usize = 1;
    /// `task_struct.se.sum_exec_runtime`: the task's CPU time, ns.
    pub const TASK_SUM_EXEC_RUNTIME: usize = 2;
    pub const LEN: usize = 3;
}

/// `AT_FDCWD`: a path relative to the working directory.
pub const AT_FDCWD: i32 = -100;
/// `O_WRONLY | O_RDWR | O_CREAT | O_TRUNC` (the same on every architecture cinch supports):
/// an open with none of them does not write.
pub const OPEN_WRITE_FLAGS: u64 = 0o3 | 0o100 | 0o1000;

/// Fields of a `PATH_SPEC` entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PathSpec {
    pub path: Option<u32>,
    pub dirfd: Option<u32>,
    /// The open flags argument; `how` when it points to a `struct open_how` (openat2).
    pub flags: Option<u32>,
    pub how: bool,
    pub path2: Option<u32>,
    pub dirfd2: Option<u32>,
    /// The syscall executes the path (a read, whatever the flags).
    pub exec: bool,
}

impl PathSpec {
    pub const fn encode(self) -> u32 {
        const fn field(v: Option<u32>, shift: u32) -> u32 {
            match v {
                Some(i) => (i + 1) << shift,
                None => 0,
            }
        }
        field(self.path, 0)
            | field(self.dirfd, 3)
            | field(self.flags, 6)
            | field(self.path2, 9)
            | field(self.dirfd2, 12)
            | if self.how { 1 << 15 } else { 0 }
            | if self.exec { PATH_SPEC_EXEC } else { 0 }
    }
}

/// Field `n` (0: path, 1: dirfd, 2: flags, 3: path2, 4: dirfd2) of a `PATH_SPEC` entry: the
/// argument index, `None` when absent.
#[inline(always)]
pub const fn path_spec_field(spec: u32, n: u32) -> Option<u32> {
    let v = (spec >> (3 * n)) & 7;
    if v == 0 { None } else { Some(v - 1) }
}

/// Whether the flags argument of a `PATH_SPEC` entry points to a `struct open_how`.
#[inline(always)]
pub const fn path_spec_how(spec: u32) -> bool {
    spec & (1 << 15) != 0
}

/// A `PATH_SPEC` bit: the syscall executes its path (execve, execveat), a read.
pub const PATH_SPEC_EXEC: u32 = 1 << 16;

/// The key that sends a read once (`READ_SEEN`): the target, the directory a relative path is
/// relative to (the working directory's dentry, or `tgid << 32 | dirfd`; 0 for an absolute
/// path), and the path as the caller gave it by its length and 64-bit FNV-1a hash. A small
/// key keeps the lookup every read pays cheap; two paths of one length and hash in one
/// target and directory (about one chance in 2^64 per pair) would send the second as seen.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadKey {
    pub slot: u32,
    pub len: u32,
    pub dir: u64,
    pub hash: u64,
}
const _: () = assert!(size_of::<ReadKey>() == 24);

/// A path read from user memory, to hash.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PathBytes {
    pub bytes: [u8; PATH_LEN],
}

/// Reads remembered as sent, least recently used first out (one forgotten is sent again, which
/// the tracer counts once).
pub const MAX_READ_KEYS: u32 = 16_384;

/// [`CapKey::result`] when the syscall's return is not known.
pub const RESULT_UNKNOWN: i32 = 1;

/// Checks one thread can have waiting for its syscall's return; more in one syscall are counted
/// at once with [`RESULT_UNKNOWN`].
pub const MAX_PENDING_CHECKS: usize = 8;

/// Capability checks made inside a syscall that has not returned yet, per thread
/// (`PENDING_CHECKS[tid]`): `raw_syscalls:sys_exit` adds the result and counts them.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PendingChecks {
    /// Keys in use at the start of `keys`.
    pub len: u32,
    pub reserved: u32,
    pub keys: [CapKey; MAX_PENDING_CHECKS],
    /// How many times each key was checked in this syscall (an exec asks the overcommit
    /// heuristic once per mapping).
    pub counts: [u64; MAX_PENDING_CHECKS],
}

/// Threads that can be inside a syscall with a capability check pending at the same time.
pub const MAX_PENDING_THREADS: u32 = 1024;

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
    /// A new mount-namespace target (a container) was created by the kernel side.
    NewTarget = 4,
    /// A target used an argument value for the first time (`value`, by `comm`): the process
    /// named as the one that needed it. Evidence only: a dropped event loses the name, never the
    /// value.
    FirstArg = 5,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Event {
    /// `EventKind` value.
    pub kind: u32,
    pub slot: u32,
    pub tgid: u32,
    /// Syscall number for `FirstSyscall` and `FirstArg`, else 0.
    pub nr: u32,
    /// `ARCH_NATIVE` / `ARCH_COMPAT` for `FirstSyscall` and `FirstArg`, else 0.
    pub arch: u32,
    pub _pad: u32,
    /// The masked argument value for `FirstArg`, else 0.
    pub value: u64,
    /// The process name (NUL-padded) for `FirstArg`, else zeros.
    pub comm: [u8; 16],
}
const _: () = assert!(size_of::<Event>() == 48);

/// Names of maps, programs and globals, shared so a rename cannot silently break loading.
pub mod names {
    pub const TASK_TARGET: &str = "TASK_TARGET";
    pub const TARGETS: &str = "TARGETS";
    pub const COUNTS: &str = "COUNTS";
    pub const SEEN: &str = "SEEN";
    pub const STATS: &str = "STATS";
    pub const EVENTS: &str = "EVENTS";
    pub const CAP_CHECKS: &str = "CAP_CHECKS";
    pub const MNTNS_SLOT: &str = "MNTNS_SLOT";
    pub const KNOWN_MNTNS: &str = "KNOWN_MNTNS";
    pub const DROPPED_MNTNS: &str = "DROPPED_MNTNS";
    pub const SLOT_GEN: &str = "SLOT_GEN";
    pub const FREE_SLOTS: &str = "FREE_SLOTS";
    pub const ARG_VALUES: &str = "ARG_VALUES";
    pub const ARG_LOST: &str = "ARG_LOST";
    pub const PENDING_CHECKS: &str = "PENDING_CHECKS";
    pub const PENDING_TEMPLATE: &str = "PENDING_TEMPLATE";
    pub const RESULT_TRACKED: &str = "RESULT_TRACKED";
    pub const PRIV_EXECS: &str = "PRIV_EXECS";
    pub const PATHS: &str = "PATHS";
    pub const CREDS: &str = "CREDS";
    pub const NETS: &str = "NETS";
    pub const READ_SEEN: &str = "READ_SEEN";
    /// The tracer's tracking epoch (a global in a section of its own, which aya loads as a
    /// one-value array map): written after each process the tracer registers.
    pub const TRACK_EPOCH_TRACER: &str = ".data.epoch_tracer";

    pub const SYS_ENTER_TP_BTF: &str = "sys_enter_btf";
    pub const SYS_ENTER_RAW_TP: &str = "sys_enter_raw";
    pub const SYS_ENTER_TRACEPOINT: &str = "sys_enter_tp";
    pub const SYS_EXIT_SYSCALL: &str = "sys_exit_syscall";
    pub const FORK: &str = "sched_fork";
    pub const EXIT: &str = "sched_exit";
    pub const CAP_CAPABLE_TP_BTF: &str = "cap_capable_btf";
    pub const CAP_CAPABLE_FEXIT: &str = "cap_capable_fexit";
    pub const EXEC: &str = "sched_exec";
    pub const FLOOR: &str = "floor_sys_enter";

    pub const G_TRACER_TGID: &str = "TRACER_TGID";
    pub const G_NR_EXECVE: &str = "NR_EXECVE";
    pub const G_NR_EXECVEAT: &str = "NR_EXECVEAT";
    pub const G_OFF_COMPAT_STATUS: &str = "OFF_COMPAT_STATUS";
    pub const G_COMPAT_FLAG: &str = "COMPAT_FLAG";
    pub const G_OFF_TASK_PID: &str = "OFF_TASK_PID";
    pub const G_OFF_TASK_TGID: &str = "OFF_TASK_TGID";
    pub const G_OFF_REGS_SYSCALL_NR: &str = "OFF_REGS_SYSCALL_NR";
    pub const G_OFF_TASK_NSPROXY: &str = "OFF_TASK_NSPROXY";
    pub const G_OFF_NSPROXY_MNT_NS: &str = "OFF_NSPROXY_MNT_NS";
    pub const G_OFF_MNT_NS_INUM: &str = "OFF_MNT_NS_INUM";
    pub const G_OFF_MNT_NS_ID: &str = "OFF_MNT_NS_ID";
    pub const G_OFF_TASK_SECCOMP_MODE: &str = "OFF_TASK_SECCOMP_MODE";
    pub const G_MNTNS_MODE: &str = "MNTNS_MODE";
    pub const G_OFF_TASK_SIGNAL: &str = "OFF_TASK_SIGNAL";
    pub const G_OFF_TASK_CRED: &str = "OFF_TASK_CRED";
    pub const G_OFF_BPRM_SECUREEXEC: &str = "OFF_BPRM_SECUREEXEC";
    pub const G_OFF_SIGNAL_LIVE: &str = "OFF_SIGNAL_LIVE";
    pub const G_ARG_SPEC: &str = "ARG_SPEC";
    pub const G_ARG_MASKS: &str = "ARG_MASKS";
    pub const G_PATH_SPEC: &str = "PATH_SPEC";
    pub const G_OFF_PATH_WALK: &str = "OFF_PATH_WALK";
    pub const G_CRED_SPEC: &str = "CRED_SPEC";
    pub const G_NET_SPEC: &str = "NET_SPEC";
    pub const G_OFF_CRED_IDS: &str = "OFF_CRED_IDS";
    pub const G_OFF_USAGE: &str = "OFF_USAGE";
    pub const G_OFF_REGS_ARGS: &str = "OFF_REGS_ARGS";
}

/// `MNTNS_MODE` values: whether the fork/exec probes look at mount namespaces at all.
pub const MNTNS_OFF: u32 = 0;
/// Follow processes that enter the mount namespaces in `MNTNS_SLOT` (attach to containers).
pub const MNTNS_TARGETS: u32 = 1;
/// Also create a target for every mount namespace not in `KNOWN_MNTNS` (new containers).
pub const MNTNS_WATCH_NEW: u32 = 2;
/// Most mount namespaces known at start in watch mode.
pub const MAX_KNOWN_MNTNS: u32 = 16_384;

/// Marks an offset global as "not available on this kernel/architecture".
pub const NO_OFFSET: u32 = u32::MAX;

#[cfg(feature = "user")]
mod pod {
    // SAFETY: plain old data: repr(C), Copy, no padding holes (sizes asserted above).
    unsafe impl aya::Pod for super::TargetState {}
    // SAFETY: repr(C), Copy, an array of integers.
    unsafe impl aya::Pod for super::TargetCounts {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::Event {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::CapKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::ArgKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::PendingChecks {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::PrivExecKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::PathEvent {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::CredKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::NetKey {}
    // SAFETY: as above.
    unsafe impl aya::Pod for super::ReadKey {}
}
