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
    helpers::{bpf_get_current_pid_tgid, bpf_probe_read_kernel},
    macros::raw_tracepoint,
    programs::RawTracePointContext,
};
use cinch_common::{Event, EventKind, NO_OFFSET, Stat, TRACK_SLOT_MASK};

use crate::maps::{EVENTS, OFF_TASK_PID, OFF_TASK_TGID, TARGETS, TASK_TARGET, TRACER_TGID, bump};

#[raw_tracepoint(tracepoint = "sched_process_fork")]
pub fn sched_fork(ctx: RawTracePointContext) -> i32 {
    on_fork(ctx.arg::<*const u8>(1));
    0
}

#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn sched_exit(ctx: RawTracePointContext) -> i32 {
    on_exit(ctx.arg::<u64>(1) & 0xff != 0);
    0
}

#[inline(always)]
fn on_fork(child: *const u8) {
    let parent_tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let Some(parent) = TASK_TARGET.get(parent_tgid) else {
        return;
    };
    let track = *parent;
    if track == 0 {
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
    // A new thread shares its parent's thread group, which is tracked already.
    if child_tgid == parent_tgid || child_tgid == TRACER_TGID.load() {
        return;
    }
    let Some(cell) = TASK_TARGET.get_ptr_mut(child_tgid) else {
        bump(Stat::TrackMiss);
        return;
    };
    // SAFETY: a valid array cell; nothing else writes a tgid that is being created.
    unsafe { *cell = track };
    let slot = (track & TRACK_SLOT_MASK) - 1;
    if let Some(state) = TARGETS.get_ptr_mut(slot) {
        // SAFETY: valid cells; atomics because forks of one target race on several CPUs.
        unsafe {
            atomic_xadd::<u32, u32, { AtomicOrdering::Relaxed }>(&raw mut (*state).live, 1);
            atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(
                &raw mut (*state).processes_seen,
                1,
            );
        }
    }
    emit(EventKind::Fork, slot, child_tgid);
}

#[inline(always)]
fn on_exit(group_dead: bool) {
    if !group_dead {
        return;
    }
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let Some(cell) = TASK_TARGET.get_ptr_mut(tgid) else {
        return;
    };
    // SAFETY: a valid array cell.
    let track = unsafe { *cell };
    if track == 0 {
        return;
    }
    // SAFETY: as above; the group is dead, so no syscall of it reads this cell again.
    unsafe { *cell = 0 };
    let slot = (track & TRACK_SLOT_MASK) - 1;
    if let Some(state) = TARGETS.get_ptr_mut(slot) {
        // SAFETY: a valid cell; adding u32::MAX is an atomic decrement (BPF has atomic add).
        unsafe {
            atomic_xadd::<u32, u32, { AtomicOrdering::Relaxed }>(&raw mut (*state).live, u32::MAX);
        }
    }
    emit(EventKind::Exit, slot, tgid);
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
    };
    if EVENTS.output::<Event>(event, 0).is_err() {
        bump(Stat::RingDrop);
    }
}
