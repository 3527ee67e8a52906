//! `raw_syscalls:sys_enter`: the hot path. Every syscall of every process on the machine runs
//! this while cinch records, so untracked processes leave after one inlined array lookup (tp_btf:
//! usually before it, on a per-CPU verdict, see [`UNTRACKED`]).
//!
//! Kernel contract: the raw tracepoint's arguments are `(struct pt_regs *regs, long id)`
//! (include/trace/events/syscalls.h, TRACE_EVENT_FN(sys_enter, ...)); the classic tracepoint's
//! record has `long id` at offset 8 (events/raw_syscalls/sys_enter/format). For a compat task
//! (`int 0x80`, i386 binaries) `id` is the i386 number and `thread_info.status & TS_COMPAT` is set
//! for the duration of the syscall (arch/x86/include/asm/compat.h, in_ia32_syscall()).

use aya_ebpf::bindings::BPF_NOEXIST;
use aya_ebpf::{
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_task,
        bpf_probe_read_kernel, bpf_probe_read_kernel_str_bytes, bpf_probe_read_user,
        bpf_probe_read_user_str_bytes, generated::bpf_get_current_task_btf,
    },
    macros::{btf_tracepoint, raw_tracepoint, tracepoint},
    programs::{BtfTracePointContext, RawTracePointContext, TracePointContext},
};
use cinch_common::{
    ARCH_COMPAT, ARCH_NATIVE, AT_FDCWD, ArgKey, COMPONENT_LEN, CredKey, DIR_COMPLETE,
    DIR_COMPONENTS, DIR_FAILED, DIR_NONE, Event, EventKind, MAX_ARGS, MAX_SYSCALLS, NET_BIND,
    NET_CONNECT, NET_LISTEN, NET_SENDMSG, NET_SENDTO, NO_OFFSET, NetKey, OPEN_WRITE_FLAGS,
    PATH_LEN, PATH_SPEC_EXEC, PathBytes, PathEvent, ReadKey, SECCOMP_MODE_FILTER, Stat,
    TARGET_ARMED_EXEC, TARGET_ARMED_SECCOMP, TRACK_CAPS_PENDING, TRACK_CRED_PENDING,
    TRACK_PENDING_EXEC, TRACK_PENDING_SECCOMP, TRACK_SLOT_MASK, arg_spec_index, arg_spec_mask,
    cell, counter, path_spec_field, path_spec_how, walk,
};

use crate::maps::{
    ARG_LOST, ARG_MASKS, ARG_SPEC, ARG_VALUES, BOUND, COMPAT_FLAG, COUNTS, CRED_SPEC, CREDS,
    EVENTS, NET_SPEC, NETS, NR_EXECVE, NR_EXECVEAT, OFF_COMPAT_STATUS, OFF_CRED_IDS, OFF_PATH_WALK,
    OFF_REGS_ARGS, OFF_TASK_CRED, OFF_TASK_SECCOMP_MODE, OFF_TASK_TGID, PATH_SPEC, PATHS,
    READ_PATH, READ_SEEN, SEEN, TARGETS, TASK_TARGET, UNTRACKED, bump, read_track, track_epoch,
};

/// tp_btf: the current task is a BTF-typed pointer, so its tgid and `thread_info.status` are
/// plain loads (the verifier checks the constant offsets against task_struct's BTF) instead of
/// helper calls or bpf_probe_read_kernel.
///
/// First, without any helper call: a thread this CPU last found untracked, with no thread
/// possibly tracked since ([`UNTRACKED`]), leaves at once. The `regs` argument identifies the
/// thread: it points into the thread's own kernel stack.
#[btf_tracepoint(function = "sys_enter")]
pub fn sys_enter_btf(ctx: BtfTracePointContext) -> i32 {
    let regs = ctx.arg::<u64>(0);
    let epoch = track_epoch();
    let cache = UNTRACKED.get_ptr_mut(0);
    if let Some(c) = cache {
        // SAFETY: this CPU's cell; programs on sys_enter run one at a time on a CPU.
        let (r, e) = unsafe {
            (
                core::ptr::read_volatile(&raw const (*c)[0]),
                core::ptr::read_volatile(&raw const (*c)[1]),
            )
        };
        if r == regs && e == epoch {
            return 0;
        }
    }
    sys_enter_btf_lookup(ctx, regs, epoch, cache.unwrap_or_default());
    0
}

/// The rest of [`sys_enter_btf`], a BPF subprogram of its own (not inlined): the fast exit above
/// then keeps a small stack frame and saves few registers.
#[inline(never)]
fn sys_enter_btf_lookup(ctx: BtfTracePointContext, regs: u64, epoch: u64, cache: *mut [u64; 2]) {
    let untracked = || {
        if !cache.is_null() {
            // SAFETY: this CPU's cell, as above. The pointer before the epoch: a program that
            // ran in between (were they ever nested) read a later epoch, so a mixed cell stays
            // conservative.
            unsafe {
                core::ptr::write_volatile(&raw mut (*cache)[0], regs);
                core::ptr::write_volatile(&raw mut (*cache)[1], epoch);
            }
        }
    };
    let id = ctx.arg::<i64>(1);
    let off_tgid = OFF_TASK_TGID.load();
    // The recorder always sets the offset; `cinch doctor` loads this program without any, and
    // the verifier must not see a load at NO_OFFSET.
    if off_tgid == NO_OFFSET {
        let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
        on_sys_enter(tgid, id, current_arch, untracked, |i, arch| {
            reg_arg(ctx.arg::<*const u8>(0), i, arch)
        });
        return;
    }
    // SAFETY: a trusted BTF pointer to the current task; the load is checked by the verifier.
    let task = unsafe { bpf_get_current_task_btf() } as *const u8;
    let tgid = unsafe { core::ptr::read_volatile(task.add(off_tgid as usize) as *const u32) };
    on_sys_enter(
        tgid,
        id,
        || current_arch_btf(task),
        untracked,
        |i, arch| reg_arg(ctx.arg::<*const u8>(0), i, arch),
    );
}

#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn sys_enter_raw(ctx: RawTracePointContext) -> i32 {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    on_sys_enter(
        tgid,
        ctx.arg::<i64>(1),
        current_arch,
        || {},
        |i, arch| reg_arg(ctx.arg::<*const u8>(0), i, arch),
    );
    0
}

#[tracepoint]
pub fn sys_enter_tp(ctx: TracePointContext) -> u32 {
    // SAFETY: offset 8 is `long id` in the sys_enter record (see the module comment).
    if let Ok(id) = unsafe { ctx.read_at::<i64>(8) } {
        let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
        on_sys_enter(
            tgid,
            id,
            current_arch,
            || {},
            |i, _| {
                // SAFETY: `unsigned long args[6]` follows `id` at offset 16, already in the ABI's
                // order for compat tasks too (syscall_get_arguments()).
                unsafe { ctx.read_at::<u64>(16 + 8 * (i as usize & 7)) }.ok()
            },
        );
    }
    0
}

/// `arch` and `args` are only called for a tracked process: an untracked one leaves after the
/// lookup, calling `untracked`. `args(index, arch)` reads one syscall argument.
#[inline(always)]
fn on_sys_enter(
    tgid: u32,
    id: i64,
    arch: impl FnOnce() -> u32,
    untracked: impl FnOnce(),
    args: impl Fn(u32, u32) -> Option<u64>,
) {
    let Some(entry) = TASK_TARGET.get_ptr_mut(tgid) else {
        untracked();
        return;
    };
    // SAFETY: a valid array cell.
    let track = unsafe { read_track(entry) };
    if track == 0 {
        untracked();
        return;
    }
    record(entry, track, id, arch(), args);
}

/// Argument `i` of the syscall in progress, from the `struct pt_regs` the raw tracepoint gets
/// (offsets from the running kernel's BTF, per architecture table).
#[inline(always)]
fn reg_arg(regs: *const u8, i: u32, arch: u32) -> Option<u64> {
    let off = OFF_REGS_ARGS.get((arch * MAX_ARGS + i) as usize)?;
    if off == NO_OFFSET {
        return None;
    }
    // SAFETY: 8 bytes of the saved registers at an offset from the kernel's BTF; faults safely.
    match unsafe { bpf_probe_read_kernel(regs.add(off as usize) as *const u64) } {
        Ok(v) => Some(v),
        Err(_) => {
            bump(Stat::ReadFailed);
            None
        }
    }
}

#[inline(always)]
fn record(entry: *mut u32, track: u32, id: i64, arch: u32, args: impl Fn(u32, u32) -> Option<u64>) {
    if track & (TRACK_PENDING_EXEC | TRACK_PENDING_SECCOMP | TRACK_CAPS_PENDING) != 0 {
        let Some(mut armed) = arm(track, arch, id) else {
            return;
        };
        if track & TRACK_CAPS_PENDING != 0 && armed & TRACK_CAPS_PENDING == 0 {
            // The runtime's execve of the entrypoint: until it has replaced the process, the
            // runtime's other threads still run with the ids it started with (runc sets ids on
            // its own thread only), so none records them; sched_process_exec asks again once
            // the exec is done. In the same write, so no thread sees one flag without the other.
            armed &= !TRACK_CRED_PENDING;
        }
        // SAFETY: a valid array cell.
        unsafe { *entry = armed };
    }
    if id < 0 || id >= i64::from(MAX_SYSCALLS) {
        bump(Stat::SyscallOutOfRange);
        return;
    }
    let nr = id as u32;
    let slot = (track & TRACK_SLOT_MASK) - 1;
    // SAFETY: a valid array cell (arming may just have rewritten it).
    let now = unsafe { *entry };
    // Not while a container's runtime still sets the process up (its ids between setgid and
    // setuid are not the workload's), nor at an execve (the old program's name): the next
    // syscall, the new program's, records them.
    let is_exec = arch == ARCH_NATIVE && (nr == NR_EXECVE.load() || nr == NR_EXECVEAT.load());
    if now & (TRACK_CRED_PENDING | TRACK_CAPS_PENDING) == TRACK_CRED_PENDING && !is_exec {
        // SAFETY: as above; a lost race with another thread only records the ids twice.
        unsafe { *entry = now & !TRACK_CRED_PENDING };
        record_creds(slot);
    }
    if CRED_SPEC.get(counter(arch, nr) as usize).unwrap_or(0) != 0 {
        // An id-setting syscall: its effect shows at the next one.
        // SAFETY: as above.
        unsafe { *entry |= TRACK_CRED_PENDING };
    }
    let Some(counts) = COUNTS.get_ptr_mut(slot) else {
        bump(Stat::CounterMiss);
        return;
    };
    // SAFETY: this CPU's copy of the target's counters; the program does not migrate while it
    // runs. `get_mut` keeps the bounds check the verifier needs (arch is 0 or 1, nr < 512).
    let Some(count) = (unsafe { (*counts).counts.get_mut(counter(arch, nr) as usize) }) else {
        bump(Stat::CounterMiss);
        return;
    };
    let before = *count;
    *count = before + 1;
    if before == 0 {
        first_on_this_cpu(slot, arch, nr, cell(slot, arch, nr));
    }
    // The only extra work of the common path: one load from the frozen spec table.
    let spec = ARG_SPEC.get(counter(arch, nr) as usize).unwrap_or(0);
    if spec != 0 {
        record_arg(slot, arch, nr, spec, &args);
    }
    let paths = PATH_SPEC.get(counter(arch, nr) as usize).unwrap_or(0);
    if paths != 0 {
        record_path(slot, arch, nr, paths, &args);
    }
    let net = NET_SPEC.get(counter(arch, nr) as usize).unwrap_or(0);
    if net != 0 {
        record_net(slot, arch, net, &args);
    }
}

/// `AF_INET`, `AF_INET6` (include/linux/socket.h; the same on every architecture).
const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

/// Counts the Internet address a `bind` or `connect` names (`sockaddr_in`, `sockaddr_in6`),
/// and remembers a bound one by (tgid, descriptor) for the socket's `listen`, which names
/// none. Seen at entry: an address is counted whether or not the call then succeeds.
#[inline(always)]
fn record_net(slot: u32, arch: u32, kind: u8, args: &impl Fn(u32, u32) -> Option<u64>) {
    let Some(fd) = args(0, arch) else {
        return;
    };
    let socket = (bpf_get_current_pid_tgid() & 0xffff_ffff_0000_0000) | (fd & 0xffff_ffff);
    if kind == NET_LISTEN {
        // SAFETY: a valid map value, copied out at once.
        if let Some(bound) = unsafe { BOUND.get(socket) } {
            let mut key = *bound;
            key.kind = NET_LISTEN;
            count_net(&key);
        }
        return;
    }
    let (addr, len) = match kind {
        NET_SENDTO => (args(4, arch), args(5, arch)),
        NET_SENDMSG => {
            // `struct msghdr` starts with `void *msg_name; int msg_namelen` (64-bit layout;
            // the compat table has no sendmsg entry in NET_SPEC).
            let Some(msg) = args(1, arch) else {
                return;
            };
            // SAFETY: a user pointer, read with the fault-safe helper.
            let Ok(head) = (unsafe { bpf_probe_read_user(msg as *const [u64; 2]) }) else {
                return;
            };
            (Some(head[0]), Some(head[1] & 0xffff_ffff))
        }
        _ => (args(1, arch), args(2, arch)),
    };
    let (Some(addr), Some(len)) = (addr, len) else {
        return;
    };
    if addr == 0 {
        return;
    }
    // A send to an address is a connect for what it says of the network.
    let kind = if kind == NET_BIND {
        NET_BIND
    } else {
        NET_CONNECT
    };
    // `sockaddr_in` is 16 bytes: family, port, IPv4 address; `sockaddr_in6` 28: family, port,
    // flow information, then the address at byte 8.
    if len < 16 {
        return;
    }
    // SAFETY: a user pointer, read with the fault-safe helper.
    let Ok(head) = (unsafe { bpf_probe_read_user(addr as *const [u8; 16]) }) else {
        return;
    };
    let family = u16::from_ne_bytes([head[0], head[1]]);
    let mut key = NetKey {
        slot,
        kind,
        family,
        port: u16::from_be_bytes([head[2], head[3]]),
        ..NetKey::default()
    };
    match family {
        AF_INET => key.addr[..4].copy_from_slice(&head[4..8]),
        AF_INET6 if len >= 24 => {
            // SAFETY: as above.
            match unsafe { bpf_probe_read_user((addr + 8) as *const [u8; 16]) } {
                Ok(a) => key.addr = a,
                Err(_) => return,
            }
        }
        _ => return,
    }
    count_net(&key);
    if kind == NET_BIND {
        let _ = BOUND.insert(socket, key, 0);
    }
}

#[inline(always)]
fn count_net(key: &NetKey) {
    if let Some(count) = NETS.get_ptr_mut(key) {
        // SAFETY: a valid value; the count is evidence only.
        unsafe { *count += 1 };
    } else if NETS.insert(key, 1u64, 0).is_err() {
        bump(Stat::NetMiss);
    }
}

/// Sends the path a path-writing syscall writes, or a file-reading one reads (an open without
/// a write intent, an exec), to the tracer, which resolves it against the process's working
/// directory or `dirfd`. A read is sent once per target, directory and path.
#[inline(always)]
fn record_path(slot: u32, arch: u32, nr: u32, spec: u32, args: &impl Fn(u32, u32) -> Option<u64>) {
    let mut flags = 0u64;
    let mut read = spec & PATH_SPEC_EXEC != 0;
    if let Some(i) = path_spec_field(spec, 2) {
        let Some(raw) = args(i, arch) else {
            return;
        };
        flags = if path_spec_how(spec) {
            // SAFETY: `struct open_how` starts with `__u64 flags`; a user pointer, read safely.
            match unsafe { bpf_probe_read_user(raw as *const u64) } {
                Ok(f) => f,
                Err(_) => return,
            }
        } else {
            raw
        };
        read = flags & OPEN_WRITE_FLAGS == 0;
    }
    let dirfd = |n: u32| {
        path_spec_field(spec, n)
            .and_then(|i| args(i, arch))
            .map_or(AT_FDCWD, |v| v as i32)
    };
    let path = path_spec_field(spec, 0).and_then(|i| args(i, arch));
    let keyed = if read {
        match first_read(slot, dirfd(1), path) {
            Read::Sent => return,
            Read::New(key) => Some(key),
            Read::Unkeyed => None,
        }
    } else {
        None
    };
    let Some(mut entry) = PATHS.reserve::<PathEvent>(0) else {
        if let Some(key) = keyed {
            // Sent again at its next read.
            let _ = READ_SEEN.remove(key);
        }
        bump(if read { Stat::ReadDrop } else { Stat::PathDrop });
        return;
    };
    let e = entry.as_mut_ptr();
    // SAFETY: `e` points to a reserved, exclusively owned ring entry of PathEvent's size; every
    // field is written before it is submitted (the paths up to their NUL).
    unsafe {
        (*e).slot = slot;
        (*e).tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
        (*e).nr = nr;
        (*e).arch = arch;
        (*e).dirfd = dirfd(1);
        (*e).dirfd2 = dirfd(4);
        (*e).flags = flags;
        (*e).comm = bpf_get_current_comm().unwrap_or([0; 16]);
        (*e).path[0] = 0;
        (*e).path2[0] = 0;
        (*e).dir_state = DIR_NONE;
        (*e).dir_depth = 0;
        if let Some(p) = path
            && bpf_probe_read_user_str_bytes(p as *const u8, &mut (*e).path)
                .is_ok_and(|s| !s.is_empty() && s[0] != b'/')
        {
            cinch_walk_dir(e, (*e).dirfd);
        }
        if let Some(p) = path_spec_field(spec, 3).and_then(|i| args(i, arch)) {
            let _ = bpf_probe_read_user_str_bytes(p as *const u8, &mut (*e).path2);
        }
    }
    entry.submit(0);
}

/// What a read's key says.
enum Read {
    /// Sent before, or its path cannot be read: nothing to send.
    Sent,
    /// The first time this target reads the path from its directory: the key is now in
    /// `READ_SEEN`.
    New(ReadKey),
    /// No path to key.
    Unkeyed,
}

/// Looks a read up in `READ_SEEN`, and remembers it there when it is new.
#[inline(always)]
fn first_read(slot: u32, dirfd: i32, path: Option<u64>) -> Read {
    let Some(path) = path else {
        return Read::Unkeyed;
    };
    let Some(buf) = READ_PATH.get_ptr_mut(0) else {
        return Read::Sent;
    };
    // SAFETY: this CPU's scratch buffer; the program does not migrate while it runs.
    let Ok(s) = (unsafe { bpf_probe_read_user_str_bytes(path as *const u8, &mut (*buf).bytes) })
    else {
        return Read::Sent;
    };
    let len = s.len() as u32;
    let absolute = s.first() == Some(&b'/');
    // The process and descriptor when the working directory cannot be read: a read is then
    // sent once per process (one after a chdir under the same name is not).
    let own = (bpf_get_current_pid_tgid() & 0xffff_ffff_0000_0000) | u64::from(dirfd as u32);
    let dir = if absolute {
        0
    } else if dirfd == AT_FDCWD {
        // SAFETY: the current task's address, only read through kptr's fault-safe helper.
        let task = unsafe { bpf_get_current_task() } as u64;
        kptr(task, walk::TASK_FS)
            .and_then(|fs| kptr(fs, walk::FS_PWD_DENTRY))
            .unwrap_or(own)
    } else {
        own
    };
    let key = ReadKey {
        slot,
        len,
        dir,
        hash: cinch_hash_path(buf, len),
    };
    // SAFETY: a lookup only; the value is not used.
    if unsafe { READ_SEEN.get(key) }.is_some() || READ_SEEN.insert(key, 1u8, 0).is_err() {
        return Read::Sent;
    }
    Read::New(key)
}

/// The 64-bit FNV-1a hash of the first `len` bytes of `p`, as a global BPF function: the
/// verifier checks its loop once, on its own.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn cinch_hash_path(p: *const PathBytes, len: u32) -> u64 {
    if p.is_null() {
        return 0;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for i in 0..PATH_LEN {
        if i as u32 >= len {
            break;
        }
        // SAFETY: `p` points to PATH_LEN bytes (the caller's per-CPU buffer) and i < PATH_LEN.
        let b = unsafe { (*p).bytes[i] };
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Stores the masked argument value of an argument-sensitive syscall for its target.
#[inline(always)]
fn record_arg(slot: u32, arch: u32, nr: u32, spec: u8, args: &impl Fn(u32, u32) -> Option<u64>) {
    let Some(mask) = ARG_MASKS.get(arg_spec_mask(spec) as usize) else {
        return;
    };
    let index = arg_spec_index(spec);
    let lost = || {
        bump(Stat::ArgMiss);
        let idx = cell(slot, arch, nr);
        if let Some(word) = ARG_LOST.get_ptr_mut(idx / 64) {
            // SAFETY: a valid array cell; a plain OR (bits are only ever set).
            unsafe { *word |= 1u64 << (idx % 64) };
        }
    };
    let Some(value) = args(index, arch) else {
        lost();
        return;
    };
    let key = ArgKey {
        slot,
        cell: counter(arch, nr),
        value: value & mask,
    };
    if let Some(count) = ARG_VALUES.get_ptr_mut(key) {
        // SAFETY: a valid map value. Not atomic: the count is evidence, the key is what counts.
        unsafe { *count += 1 };
        return;
    }
    if ARG_VALUES.insert(key, 1u64, BPF_NOEXIST as u64).is_ok() {
        // Rare: once per distinct value and target. Names the process that needed it.
        let event = Event {
            kind: EventKind::FirstArg as u32,
            slot,
            tgid: (bpf_get_current_pid_tgid() >> 32) as u32,
            nr,
            arch,
            _pad: 0,
            value: key.value,
            comm: bpf_get_current_comm().unwrap_or([0; 16]),
        };
        if EVENTS.output::<Event>(event, 0).is_err() {
            bump(Stat::RingDrop);
        }
    } else if ARG_VALUES.get_ptr_mut(key).is_none() {
        // Full (another CPU inserting the same key at once is not a loss).
        lost();
    }
}

/// Counts the ids the current task runs with (`real_cred`: what an exec or a set*id changed) for
/// its target and program.
#[inline(always)]
fn record_creds(slot: u32) {
    let off_cred = OFF_TASK_CRED.load();
    if off_cred == NO_OFFSET {
        return;
    }
    // SAFETY: fault-safe reads of the current task's credentials at offsets from BTF.
    let Ok(cred) = (unsafe {
        bpf_probe_read_kernel(
            (bpf_get_current_task() as *const u8).add(off_cred as usize) as *const u64
        )
    }) else {
        bump(Stat::ReadFailed);
        return;
    };
    let id = |i: usize| -> Option<u32> {
        let off = OFF_CRED_IDS.get(i)?;
        if off == NO_OFFSET || cred == 0 {
            return None;
        }
        // SAFETY: as above.
        unsafe { bpf_probe_read_kernel((cred + u64::from(off)) as *const u32) }.ok()
    };
    let (Some(uid), Some(gid), Some(euid), Some(egid)) = (id(0), id(1), id(2), id(3)) else {
        bump(Stat::ReadFailed);
        return;
    };
    let key = CredKey {
        slot,
        uid,
        gid,
        euid,
        egid,
        comm: bpf_get_current_comm().unwrap_or([0; 16]),
    };
    if let Some(count) = CREDS.get_ptr_mut(key) {
        // SAFETY: a valid value; the count is evidence only.
        unsafe { *count += 1 };
    } else if CREDS.insert(key, 1u64, 0).is_err() {
        bump(Stat::CredMiss);
    }
}

/// [`walk_dir`] as a global BPF function: the verifier checks it once, on its own, instead of
/// in every state `sys_enter` reaches it with.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn cinch_walk_dir(e: *mut PathEvent, dirfd: i32) -> i32 {
    if e.is_null() {
        return 0;
    }
    // SAFETY: a reserved ring entry of PathEvent's size (the caller's), not null.
    unsafe { walk_dir(e, dirfd) };
    0
}

/// Mount tops crossed between two names of a directory walk (a volume inside a volume...).
const MOUNT_CROSSINGS: usize = 4;

/// Reads a kernel pointer at `base + OFF_PATH_WALK[field]`.
#[inline(always)]
fn kptr(base: u64, field: usize) -> Option<u64> {
    let off = OFF_PATH_WALK.get(field)?;
    if off == NO_OFFSET || base == 0 {
        return None;
    }
    // SAFETY: a kernel address plus an offset from the kernel's BTF; faults safely.
    unsafe { bpf_probe_read_kernel((base + u64::from(off)) as *const u64) }.ok()
}

/// Fills `e.dir` with the names of the directory a relative path is relative to (`dirfd`, or
/// the working directory for `AT_FDCWD`), leaf first, up to the process's root: dentry
/// parents within a mount, mount points across mounts (include/linux/dcache.h, fs/mount.h;
/// the walk `d_path()` makes, without its locks: a concurrent rename may give a stale name).
#[inline(always)]
unsafe fn walk_dir(e: *mut PathEvent, dirfd: i32) {
    // SAFETY (whole function): `e` is a reserved ring entry; reads of kernel memory are
    // bpf_probe_read_kernel, which faults safely.
    unsafe {
        (*e).dir_state = DIR_FAILED;
        let task = bpf_get_current_task() as u64;
        let Some(fs) = kptr(task, walk::TASK_FS) else {
            return;
        };
        let (Some(root_d), Some(root_m)) =
            (kptr(fs, walk::FS_ROOT_DENTRY), kptr(fs, walk::FS_ROOT_MNT))
        else {
            return;
        };
        let start = if dirfd == AT_FDCWD {
            kptr(fs, walk::FS_PWD_DENTRY).zip(kptr(fs, walk::FS_PWD_MNT))
        } else {
            dirfd_path(task, dirfd)
        };
        let Some((mut d, mut m)) = start else {
            return;
        };
        let Some(mount_mnt) = OFF_PATH_WALK
            .get(walk::MOUNT_MNT)
            .filter(|&o| o != NO_OFFSET)
        else {
            return;
        };
        // One name per step, so the step is the depth (a verifier state per depth, not per
        // order of names and mount crossings); the mount tops between two names are crossed
        // in an inner loop.
        for depth in 0..=DIR_COMPONENTS {
            for _ in 0..MOUNT_CROSSINGS {
                if d == root_d && m == root_m {
                    break;
                }
                let Some(mnt_root) = kptr(m, walk::VFSMOUNT_ROOT) else {
                    return;
                };
                if d != mnt_root {
                    break;
                }
                // The top of this mount: go on from where it is mounted.
                let mount = m - u64::from(mount_mnt);
                let Some(parent) = kptr(mount, walk::MOUNT_PARENT) else {
                    return;
                };
                if parent == mount {
                    // The mount namespace's root mount: its top is the top.
                    break;
                }
                let Some(point) = kptr(mount, walk::MOUNT_MOUNTPOINT) else {
                    return;
                };
                d = point;
                m = parent + u64::from(mount_mnt);
            }
            if d == root_d && m == root_m {
                (*e).dir_state = DIR_COMPLETE;
                break;
            }
            let Some(parent) = kptr(d, walk::DENTRY_PARENT) else {
                return;
            };
            if parent == d {
                (*e).dir_state = DIR_COMPLETE;
                break;
            }
            let Some(slot) = (*e).dir.get_mut(depth) else {
                return;
            };
            let Some(name) = kptr(d, walk::DENTRY_NAME) else {
                return;
            };
            match bpf_probe_read_kernel_str_bytes(name as *const u8, slot) {
                Ok(s) if s.len() < COMPONENT_LEN - 1 => {}
                _ => return,
            }
            (*e).dir_depth = depth as u32 + 1;
            d = parent;
        }
        if (*e).dir_state != DIR_COMPLETE {
            (*e).dir_depth = 0;
        }
    }
}

/// The (dentry, vfsmount) of the current task's descriptor `fd`.
#[inline(always)]
fn dirfd_path(task: u64, fd: i32) -> Option<(u64, u64)> {
    if fd < 0 {
        return None;
    }
    let files = kptr(task, walk::TASK_FILES)?;
    let fdt = kptr(files, walk::FILES_FDT)?;
    let off_max = OFF_PATH_WALK.get(walk::FDT_MAX_FDS)?;
    if off_max == NO_OFFSET {
        return None;
    }
    // SAFETY: `unsigned int max_fds` of the fdtable; faults safely.
    let max = unsafe { bpf_probe_read_kernel((fdt + u64::from(off_max)) as *const u32) }.ok()?;
    if fd as u32 >= max {
        return None;
    }
    let array = kptr(fdt, walk::FDT_FD)?;
    // SAFETY: `struct file *fd[max_fds]`, index checked against max_fds; faults safely.
    let file = unsafe { bpf_probe_read_kernel((array + 8 * fd as u64) as *const u64) }.ok()?;
    Some((
        kptr(file, walk::FILE_PATH_DENTRY)?,
        kptr(file, walk::FILE_PATH_MNT)?,
    ))
}

/// Start-up boundaries: the new tracking value once this syscall is past them, `None` while
/// it is still before (not counted).
#[inline(always)]
fn arm(track: u32, arch: u32, id: i64) -> Option<u32> {
    let is_exec =
        arch == ARCH_NATIVE && (id as u32 == NR_EXECVE.load() || id as u32 == NR_EXECVEAT.load());
    let mut t = track;
    if t & TRACK_PENDING_EXEC != 0 {
        // Registered before exec: the recording starts at the command's own execve.
        if !is_exec {
            return None;
        }
        t &= !TRACK_PENDING_EXEC;
    }
    if t & TRACK_PENDING_SECCOMP != 0 {
        // A container's process before its runtime installed the seccomp filter: what the
        // runtime does up to there is not the workload's. Seccomp runs before this tracepoint,
        // so the first syscall that finds the task's mode at "filter" is the first one made
        // under the profile (the install itself is not).
        let armed = if seccomp_mode() == SECCOMP_MODE_FILTER {
            TARGET_ARMED_SECCOMP
        } else if is_exec {
            // No seccomp at all (seccomp=unconfined): start at the entrypoint's execve.
            TARGET_ARMED_EXEC
        } else {
            return None;
        };
        t &= !TRACK_PENDING_SECCOMP;
        if let Some(state) = TARGETS.get_ptr_mut((t & TRACK_SLOT_MASK) - 1) {
            // SAFETY: a valid cell; a plain OR: both writers set flags, never clear them.
            unsafe { (*state).flags |= armed };
        }
    }
    if t & TRACK_CAPS_PENDING != 0 {
        if is_exec {
            t &= !TRACK_CAPS_PENDING;
        } else if track & TRACK_PENDING_SECCOMP == 0 && seccomp_mode() != SECCOMP_MODE_FILTER {
            // Between the install and the entrypoint's execve, only the thread that installed
            // the filter runs under it: runc's other Go runtime threads are not filtered, so
            // what they do is neither the workload's nor needed by the profile. Per thread,
            // until the execve ends them all.
            if TARGETS
                .get((t & TRACK_SLOT_MASK) - 1)
                .is_some_and(|s| s.flags & TARGET_ARMED_SECCOMP != 0)
            {
                return None;
            }
        }
    }
    Some(t)
}

/// Only reached the first time a CPU counts a cell: checks the shared bit and announces the
/// syscall if no CPU has.
#[inline(always)]
fn first_on_this_cpu(slot: u32, arch: u32, nr: u32, idx: u32) {
    let Some(word) = SEEN.get_ptr_mut(idx / 64) else {
        return;
    };
    let bit = 1u64 << (idx % 64);
    // SAFETY: a valid array cell.
    unsafe {
        if *word & bit != 0 {
            return;
        }
        *word |= bit;
    }
    let event = Event {
        kind: EventKind::FirstSyscall as u32,
        slot,
        tgid: (bpf_get_current_pid_tgid() >> 32) as u32,
        nr,
        arch,
        _pad: 0,
        value: 0,
        comm: [0; 16],
    };
    if EVENTS.output::<Event>(event, 0).is_err() {
        bump(Stat::RingDrop);
    }
}

/// The current task's `seccomp.mode` (0 when it cannot be read).
#[inline(always)]
fn seccomp_mode() -> u32 {
    let off = OFF_TASK_SECCOMP_MODE.load();
    if off == NO_OFFSET {
        return 0;
    }
    // SAFETY: 4 bytes of the current task_struct at an offset from the kernel's BTF.
    let mode = unsafe {
        let task = bpf_get_current_task() as *const u8;
        bpf_probe_read_kernel(task.add(off as usize) as *const u32)
    };
    mode.unwrap_or_else(|_| {
        bump(Stat::ReadFailed);
        0
    })
}

/// [`current_arch`] for tp_btf programs: `bpf_get_current_task_btf()` returns a trusted BTF
/// pointer, and the verifier lets the program load `thread_info.status` from it directly (the
/// offset is a constant from the frozen .rodata, so it can check it against task_struct's BTF).
#[inline(always)]
fn current_arch_btf(task: *const u8) -> u32 {
    let off = OFF_COMPAT_STATUS.load();
    if off == NO_OFFSET {
        return ARCH_NATIVE;
    }
    // SAFETY: a BTF-typed task pointer; the verifier checks the load against the task_struct
    // layout and turns it into a fault-safe load.
    let status = unsafe { core::ptr::read_volatile(task.add(off as usize) as *const u32) };
    if status & COMPAT_FLAG.load() != 0 {
        ARCH_COMPAT
    } else {
        ARCH_NATIVE
    }
}

/// `ARCH_COMPAT` when the current syscall is a 32-bit compat one.
#[inline(always)]
pub fn current_arch() -> u32 {
    let off = OFF_COMPAT_STATUS.load();
    if off == NO_OFFSET {
        return ARCH_NATIVE;
    }
    // SAFETY: reads 4 bytes of the current task_struct at an offset taken from the running
    // kernel's BTF; bpf_probe_read_kernel faults safely.
    let status = unsafe {
        let task = bpf_get_current_task() as *const u8;
        bpf_probe_read_kernel(task.add(off as usize) as *const u32)
    };
    match status {
        Ok(s) if s & COMPAT_FLAG.load() != 0 => ARCH_COMPAT,
        Ok(_) => ARCH_NATIVE,
        Err(_) => {
            bump(Stat::ReadFailed);
            ARCH_NATIVE
        }
    }
}
