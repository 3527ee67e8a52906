//! Following a workload's processes: a new thread group inherits its parent's target at fork,
//! and leaves it when the whole group is dead (not when one thread exits: a peer untracked a
//! process when a non-leader thread exited).
//!
//! Kernel contract: `sched_process_fork` raw arguments are `(struct task_struct *parent, struct
//! task_struct *child)`, fired in the parent after copy_process() and *before*
//! wake_up_new_task(), so the child cannot run a syscall before it is tracked
//! (kernel/fork.c, kernel_clone()). `sched_process_exit` raw arguments are `(struct task_struct
//! *p, bool group_dead)` since Linux 6.16 (include/trace/events/sched.h); group_dead is true for
//! exactly one thread of the group, the last one.

use core::intrinsics::{AtomicOrdering, atomic_xadd};

use aya_ebpf::{
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_task, bpf_probe_read_kernel,
    },
    macros::raw_tracepoint,
    programs::RawTracePointContext,
};
use cinch_common::{
    Event, EventKind, MNTNS_OFF, MNTNS_WATCH_NEW, NO_OFFSET, PrivExecKey, RESULT_UNKNOWN, Stat,
    TARGET_ACTIVE, TRACK_ATTACHED, TRACK_CAPS_PENDING, TRACK_CRED_PENDING, TRACK_PENDING_SECCOMP,
    TRACK_SLOT_MASK, TargetState, dropped_key, usage,
};

use crate::maps::{
    DROPPED_MNTNS, EVENTS, FREE_SLOTS, KNOWN_MNTNS, MNTNS_MODE, MNTNS_SLOT, OFF_BPRM_SECUREEXEC,
    OFF_MNT_NS_ID, OFF_MNT_NS_INUM, OFF_NSPROXY_MNT_NS, OFF_SIGNAL_LIVE, OFF_TASK_NSPROXY,
    OFF_TASK_PID, OFF_TASK_SIGNAL, OFF_TASK_TGID, OFF_USAGE, PRIV_EXECS, TARGETS, TASK_TARGET,
    TRACER_TGID, bump, current_track, read_track, track_for, tracking_changed,
};

#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn sched_fork(ctx: RawTracePointContext) -> i32 {
    on_fork(ctx.arg::<*const u8>(1));
    0
}

#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn sched_exit(ctx: RawTracePointContext) -> i32 {
    let group_dead = if OFF_SIGNAL_LIVE.load() == NO_OFFSET {
        ctx.arg::<u64>(1) & 0xff != 0
    } else {
        signal_live_is_zero()
    };
    on_exit(group_dead);
    0
}

/// Before Linux 6.16 the tracepoint has no `group_dead`: do_exit() has already decremented
/// `current->signal->live` when it fires (kernel/exit.c), so the group is dead when it is 0.
/// Two threads exiting at the same instant may both see 0; the first clears the tracking cell
/// and the second then finds it empty, so the count is decremented once in all but a race of
/// a few instructions.
#[inline(always)]
fn signal_live_is_zero() -> bool {
    let (o_signal, o_live) = (OFF_TASK_SIGNAL.load(), OFF_SIGNAL_LIVE.load());
    // SAFETY: fault-safe reads at offsets from the running kernel's BTF.
    let live = unsafe {
        let task = bpf_get_current_task() as *const u8;
        bpf_probe_read_kernel(task.add(o_signal as usize) as *const *const u8)
            .and_then(|signal| bpf_probe_read_kernel(signal.add(o_live as usize) as *const i32))
    };
    match live {
        Ok(live) => live == 0,
        Err(_) => {
            bump(Stat::ReadFailed);
            false
        }
    }
}

/// `sched_process_exec` raw arguments are `(struct task_struct *p, pid_t old_pid, struct
/// linux_binprm *bprm)`: a process that entered a target container's mount namespace with
/// setns(2) and exec'd without forking (nsenter, some exec probes) joins it here.
///
/// A thread other than the leader that execs takes the leader's pid (de_thread()): the checks
/// its execve made wait under its old thread id, which sys_exit will not look up. The exec has
/// succeeded by now, so they are counted here, with success.
#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn sched_exec(ctx: RawTracePointContext) -> i32 {
    let old_pid = ctx.arg::<u32>(1);
    if old_pid != bpf_get_current_pid_tgid() as u32 {
        crate::probes::caps::flush_pending(old_pid, 0);
    }
    on_exec();
    count_privileged_exec(ctx.arg::<*const u8>(2));
    0
}

/// Counts the exec of a target that gained privileges: `bprm->secureexec`, set by
/// cap_bprm_creds_from_file() (security/commoncap.c) when the new credentials differ from the
/// old (set-user-ID, set-group-ID, file capabilities) and by LSMs on a transition. Read at
/// sched_process_exec, after the credentials are computed.
#[inline(always)]
fn count_privileged_exec(bprm: *const u8) {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let Some(cell) = TASK_TARGET.get_ptr_mut(tgid) else {
        return;
    };
    // SAFETY: a valid array cell.
    let track = unsafe { read_track(cell) };
    if track == 0 {
        return;
    }
    // The new program's ids (set-user-ID, or the same): recorded at its first syscall. The
    // exec killed the other threads, so nothing else writes the cell now.
    // SAFETY: as above.
    unsafe { *cell = track | TRACK_CRED_PENDING };
    let bit = OFF_BPRM_SECUREEXEC.load();
    if bit == NO_OFFSET {
        return;
    }
    // SAFETY: a fault-safe read of the binprm the tracepoint passes, at an offset from BTF.
    let Ok(byte) = (unsafe { bpf_probe_read_kernel(bprm.add((bit / 8) as usize)) }) else {
        bump(Stat::ReadFailed);
        return;
    };
    let byte: u8 = byte;
    if byte & (1 << (bit % 8)) == 0 {
        return;
    }
    let key = PrivExecKey {
        slot: (track & TRACK_SLOT_MASK) - 1,
        comm: bpf_get_current_comm().unwrap_or([0; 16]),
    };
    if let Some(count) = PRIV_EXECS.get_ptr_mut(key) {
        // SAFETY: a valid value; atomic because several CPUs may exec at once.
        unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(count, 1) };
    } else if PRIV_EXECS.insert(key, 1, 0).is_err() {
        bump(Stat::CapMiss);
    }
}

#[inline(always)]
fn on_exec() {
    if MNTNS_MODE.load() == MNTNS_OFF {
        return;
    }
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let Some(cell) = TASK_TARGET.get_ptr_mut(tgid) else {
        return;
    };
    // SAFETY: a valid array cell.
    if unsafe { read_track(cell) } != 0 || tgid == TRACER_TGID.load() {
        return;
    }
    let Some((inum, _)) = current_mntns() else {
        return;
    };
    // SAFETY: a valid map value.
    let Some(slot) = (unsafe { MNTNS_SLOT.get(inum) }).copied() else {
        return;
    };
    // SAFETY: a valid array cell; exec'd into a running container: counted from now.
    unsafe { *cell = track_for(slot, 0) };
    tracking_changed();
    join(slot, tgid);
}

/// The current task's mount namespace: its inode number, and its unique id (0 where the
/// kernel's BTF names none).
#[inline(always)]
fn current_mntns() -> Option<(u32, u64)> {
    let (o_nsproxy, o_mnt_ns, o_inum, o_id) = (
        OFF_TASK_NSPROXY.load(),
        OFF_NSPROXY_MNT_NS.load(),
        OFF_MNT_NS_INUM.load(),
        OFF_MNT_NS_ID.load(),
    );
    if o_nsproxy == NO_OFFSET || o_mnt_ns == NO_OFFSET || o_inum == NO_OFFSET {
        return None;
    }
    // SAFETY: pointer chasing through kernel structs with fault-safe reads; offsets come from
    // the running kernel's BTF.
    unsafe {
        let task = bpf_get_current_task() as *const u8;
        let nsproxy: *const u8 =
            bpf_probe_read_kernel(task.add(o_nsproxy as usize) as *const *const u8).ok()?;
        if nsproxy.is_null() {
            return None; // an exiting task
        }
        let mnt_ns: *const u8 =
            bpf_probe_read_kernel(nsproxy.add(o_mnt_ns as usize) as *const *const u8).ok()?;
        let inum = bpf_probe_read_kernel(mnt_ns.add(o_inum as usize) as *const u32).ok()?;
        let id = if o_id == NO_OFFSET {
            0
        } else {
            bpf_probe_read_kernel(mnt_ns.add(o_id as usize) as *const u64).unwrap_or(0)
        };
        Some((inum, id))
    }
}

/// Whether mount namespace `inum` (id `id`) existed when recording started. By inode alone
/// where either id is unknown; a known inode with another id is a new namespace that reuses a
/// gone one's number, whose entry is dropped.
#[inline(always)]
fn known_mntns(inum: u32, id: u64) -> bool {
    // SAFETY: a valid map value.
    let Some(&known) = (unsafe { KNOWN_MNTNS.get(inum) }) else {
        return false;
    };
    if known == 0 || id == 0 || known == id {
        return true;
    }
    let _ = KNOWN_MNTNS.remove(inum);
    false
}

/// The container target a fork by an untracked process belongs to, creating one for a mount
/// namespace that is new since recording started (`--new-containers`). Returns the slot.
#[inline(always)]
fn container_slot(child_tgid: u32) -> Option<u32> {
    let (inum, id) = current_mntns()?;
    // SAFETY: valid map values.
    if let Some(slot) = unsafe { MNTNS_SLOT.get(inum) } {
        return Some(*slot);
    }
    if MNTNS_MODE.load() != MNTNS_WATCH_NEW || known_mntns(inum, id) {
        return None;
    }
    // SAFETY: a valid map value.
    if unsafe { DROPPED_MNTNS.get(dropped_key(inum, id)) }.is_some() {
        return None;
    }
    let Ok(Some(slot)) = FREE_SLOTS.pop() else {
        bump(Stat::SlotsExhausted);
        return None;
    };
    if MNTNS_SLOT.insert(inum, slot, 1 /* BPF_NOEXIST */).is_err() {
        // Another CPU created the target first: give the slot back and use that one.
        let _ = FREE_SLOTS.push(slot, 0);
        // SAFETY: a valid map value.
        return unsafe { MNTNS_SLOT.get(inum) }.copied();
    }
    let state = TargetState {
        flags: TARGET_ACTIVE,
        mntns: inum,
        mntns_id: id,
        first_tgid: child_tgid,
        ..TargetState::default()
    };
    if TARGETS.set(slot, state, 0).is_err() {
        bump(Stat::SlotsExhausted);
        return None;
    }
    emit(EventKind::NewTarget, slot, child_tgid);
    Some(slot)
}

#[inline(always)]
fn on_fork(child: *const u8) {
    let parent_tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let Some(parent) = TASK_TARGET.get(parent_tgid) else {
        return;
    };
    // A parent whose target was given up forks an untracked child.
    let mut track = current_track(*parent);
    if track == 0 && MNTNS_MODE.load() == MNTNS_OFF {
        return;
    }
    let (off_pid, off_tgid) = (OFF_TASK_PID.load(), OFF_TASK_TGID.load());
    if off_pid == NO_OFFSET || off_tgid == NO_OFFSET {
        bump(Stat::ReadFailed);
        return;
    }
    // SAFETY: fields of the child task_struct at offsets from the running kernel's BTF.
    let child_tgid = unsafe { bpf_probe_read_kernel(child.add(off_tgid as usize) as *const i32) };
    let Ok(child_tgid) = child_tgid else {
        bump(Stat::ReadFailed);
        return;
    };
    let child_tgid = child_tgid as u32;
    // A new thread shares its parent's thread group, which is tracked already: it only counts
    // as a task.
    if child_tgid == parent_tgid {
        if track != 0 {
            // Its kernel stack may be a dead untracked thread's, as some CPU remembers it.
            tracking_changed();
            if track & TRACK_ATTACHED == 0 {
                thread_started((track & TRACK_SLOT_MASK) - 1);
            }
        }
        return;
    }
    if child_tgid == TRACER_TGID.load() {
        return;
    }
    if track == 0 {
        // An untracked parent forking inside a target container's mount namespace: a runtime
        // entering it (the container's init, `docker exec`). Counted from its seccomp install.
        let Some(slot) = container_slot(child_tgid) else {
            return;
        };
        track = track_for(slot, TRACK_PENDING_SECCOMP | TRACK_CAPS_PENDING);
    }
    let Some(cell) = TASK_TARGET.get_ptr_mut(child_tgid) else {
        bump(Stat::TrackMiss);
        return;
    };
    // SAFETY: a valid array cell; nothing else writes a tgid that is being created. The child
    // is counted in `live` (join), so it is not "attached" even if its parent was.
    unsafe { *cell = track & !TRACK_ATTACHED };
    tracking_changed();
    join((track & TRACK_SLOT_MASK) - 1, child_tgid);
}

/// Counts a new thread group (and its one task) into a target and announces it.
#[inline(always)]
fn join(slot: u32, tgid: u32) {
    if let Some(state) = TARGETS.get_ptr_mut(slot) {
        // SAFETY: valid cells; atomics because forks of one target race on several CPUs.
        unsafe {
            atomic_xadd::<u32, u32, { AtomicOrdering::Relaxed }>(&raw mut (*state).live, 1);
            atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(
                &raw mut (*state).processes_seen,
                1,
            );
            raise(&raw mut (*state).live_peak, (*state).live);
        }
    }
    thread_started(slot);
    emit(EventKind::Fork, slot, tgid);
}

/// Counts a new task into a target and keeps the most alive at once.
#[inline(always)]
fn thread_started(slot: u32) {
    if let Some(state) = TARGETS.get_ptr_mut(slot) {
        // SAFETY: valid cells; an atomic add because tasks of one target start on several CPUs.
        unsafe {
            atomic_xadd::<u32, u32, { AtomicOrdering::Relaxed }>(&raw mut (*state).threads, 1);
            raise(&raw mut (*state).threads_peak, (*state).threads);
        }
    }
}

/// `*peak = max(*peak, now)`. Not atomic (BPF has no atomic max): two CPUs raising it at the
/// same instant may keep the smaller of their two values, which are at most the tasks started
/// in those few instructions apart.
///
/// # Safety
/// `peak` points into a valid map value.
#[inline(always)]
unsafe fn raise(peak: *mut u32, now: u32) {
    // SAFETY: the caller's.
    unsafe {
        if now > *peak {
            *peak = now;
        }
    }
}

/// Adds what an exiting task of `slot` used: its CPU time, and when its group is dead, the
/// group's peak resident set (do_exit() sets `signal->maxrss` before this tracepoint fires,
/// kernel/exit.c). Both reads are fault-safe at offsets from BTF.
#[inline(always)]
fn add_usage(slot: u32, group_dead: bool) {
    let (Some(o_signal), Some(o_maxrss), Some(o_runtime)) = (
        OFF_USAGE.get(usage::TASK_SIGNAL),
        OFF_USAGE.get(usage::SIGNAL_MAXRSS),
        OFF_USAGE.get(usage::TASK_SUM_EXEC_RUNTIME),
    ) else {
        return;
    };
    if o_signal == NO_OFFSET || o_maxrss == NO_OFFSET || o_runtime == NO_OFFSET {
        return;
    }
    let Some(state) = TARGETS.get_ptr_mut(slot) else {
        return;
    };
    // SAFETY: fault-safe reads of the current task at offsets from the running kernel's BTF;
    // `state` is a valid map value, added to atomically (tasks exit on several CPUs).
    unsafe {
        let task = bpf_get_current_task() as *const u8;
        let Ok(runtime) = bpf_probe_read_kernel(task.add(o_runtime as usize) as *const u64) else {
            bump(Stat::ReadFailed);
            return;
        };
        atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(&raw mut (*state).cpu_ns, runtime);
        if !group_dead {
            return;
        }
        let maxrss = bpf_probe_read_kernel(task.add(o_signal as usize) as *const *const u8)
            .and_then(|signal| bpf_probe_read_kernel(signal.add(o_maxrss as usize) as *const u64));
        match maxrss {
            Ok(pages) => {
                atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(
                    &raw mut (*state).maxrss_pages,
                    pages,
                );
            }
            Err(_) => bump(Stat::ReadFailed),
        }
    }
}

#[inline(always)]
fn on_exit(group_dead: bool) {
    let pid_tgid = bpf_get_current_pid_tgid();
    let Some(cell) = TASK_TARGET.get_ptr_mut((pid_tgid >> 32) as u32) else {
        return;
    };
    // SAFETY: a valid array cell.
    let held = unsafe { *cell };
    if held == 0 {
        return;
    }
    // SAFETY: as above.
    let track = unsafe { read_track(cell) };
    if track == 0 {
        // Its target was given up (the cell is cleared now): neither its exit nor what it
        // checked counts.
        crate::probes::caps::discard_pending(pid_tgid as u32);
        return;
    }
    // A thread that dies inside a syscall (exit, exit_group, a fatal signal) never returns from
    // it: its pending capability checks are counted without a result.
    crate::probes::caps::flush_pending(pid_tgid as u32, RESULT_UNKNOWN);
    let slot = (track & TRACK_SLOT_MASK) - 1;
    // Tasks of attached processes were not counted when they started: neither are their
    // exits, nor what they used before the recording began.
    let counted = track & TRACK_ATTACHED == 0;
    if counted {
        add_usage(slot, group_dead);
        if let Some(state) = TARGETS.get_ptr_mut(slot) {
            // SAFETY: a valid cell; adding u32::MAX is an atomic decrement.
            unsafe {
                atomic_xadd::<u32, u32, { AtomicOrdering::Relaxed }>(
                    &raw mut (*state).threads,
                    u32::MAX,
                );
            }
        }
    }
    if !group_dead {
        return;
    }
    let tgid = (pid_tgid >> 32) as u32;
    // SAFETY: as above; the group is dead, so no syscall of it reads this cell again.
    unsafe { *cell = 0 };
    if counted && let Some(state) = TARGETS.get_ptr_mut(slot) {
        // SAFETY: a valid cell; adding u32::MAX is an atomic decrement (BPF has atomic add).
        unsafe {
            atomic_xadd::<u32, u32, { AtomicOrdering::Relaxed }>(&raw mut (*state).live, u32::MAX);
        }
        // SAFETY: as above, read after our own decrement: of processes exiting at once, the
        // last to decrement reads 0.
        if MNTNS_MODE.load() == MNTNS_WATCH_NEW && unsafe { (*state).live } == 0 {
            // SAFETY: as above.
            forget_mntns(unsafe { (*state).mntns }, slot);
        }
    }
    emit(EventKind::Exit, slot, tgid);
}

/// A watched container's last process is exiting: its mount namespace no longer names its
/// slot. The kernel reuses a freed namespace's inode number for the next namespace at once, and
/// a new container must get a target of its own, not the one the tracer is about to read and
/// release. The exiting task still holds the namespace here, so no new one has its number yet.
#[inline(always)]
fn forget_mntns(inum: u32, slot: u32) {
    // SAFETY: a valid map value.
    if unsafe { MNTNS_SLOT.get(inum) }.is_some_and(|&s| s == slot) {
        let _ = MNTNS_SLOT.remove(inum);
    }
}

#[inline(always)]
fn emit(kind: EventKind, slot: u32, tgid: u32) {
    let event = Event {
        kind: kind as u32,
        slot,
        tgid,
        nr: 0,
        arch: 0,
        _pad: 0,
        value: 0,
        comm: [0; 16],
    };
    if EVENTS.output::<Event>(event, 0).is_err() {
        bump(Stat::RingDrop);
    }
}
