//! `capability:cap_capable` (Linux 6.14+): every capability check a tracked process makes,
//! granted or not, audited or not, with the syscall in progress and the kernel stack, so that
//! userspace can tell a real need (chown_common asking for CAP_CHOWN) from noise (the
//! vm-overcommit heuristic asking for CAP_SYS_ADMIN on every mmap).
//!
//! Kernel contract: the raw arguments are `(const struct cred *cred, struct user_namespace
//! *target_ns, const struct user_namespace *capable_ns, int cap, int ret)`
//! (include/trace/events/capability.h); `ret` is 0 when granted. The tracepoint fires inside
//! cap_capable() in the context of the task being checked.
//!
//! A check made inside a syscall whose result is tracked (`RESULT_TRACKED`: the syscalls a
//! search walks, each with its `syscalls:sys_exit_<name>` event attached) waits in
//! `PENDING_CHECKS` (per thread) for that syscall's return, which counts it with the result: a
//! capability granted in a syscall that failed anyway (an exec's walk through a `PATH` entry
//! that ends in ENOENT) is told apart from one the syscall needed. Per-syscall events, not
//! `raw_syscalls:sys_exit`: the kernel tests a bitmap before running anything, so the other
//! syscalls of every process pay no BPF program. The record has `long ret` at offset 16
//! (events/syscalls/sys_exit_*/format). Checks in other syscalls are counted at once, without
//! a result.
//!
//! Kernels before 6.14 have no such tracepoint: the fallback is fexit on cap_capable itself,
//! `int cap_capable(const struct cred *cred, struct user_namespace *targ_ns, int cap,
//! unsigned int opts)` (security/commoncap.c), whose return value follows the arguments and whose
//! `opts` carry CAP_OPT_NOAUDIT (include/linux/security.h).

use core::intrinsics::{AtomicOrdering, atomic_xadd};

use aya_ebpf::{
    EbpfContext,
    bindings::BPF_NOEXIST,
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_task,
        bpf_probe_read_kernel,
        generated::{bpf_get_current_task_btf, bpf_get_stack, bpf_task_pt_regs},
    },
    macros::{btf_tracepoint, fexit, tracepoint},
    programs::{BtfTracePointContext, FExitContext, TracePointContext},
};
use cinch_common::{
    ARCH_NATIVE, CAP_STACK_DEPTH, CapKey, MAX_PENDING_CHECKS, NO_OFFSET, NO_SYSCALL,
    RESULT_UNKNOWN, Stat, TRACK_CAPS_PENDING, TRACK_PENDING_EXEC, TRACK_PENDING_SECCOMP,
    TRACK_SLOT_MASK,
};

use crate::maps::{
    CAP_CHECKS, OFF_REGS_SYSCALL_NR, OFF_TASK_CRED, PENDING_CHECKS, PENDING_TEMPLATE,
    RESULT_TRACKED, TASK_TARGET, bump, current_track,
};
use crate::probes::syscalls::current_arch;

#[btf_tracepoint(function = "cap_capable")]
pub fn cap_capable_btf(ctx: BtfTracePointContext) -> i32 {
    let cred = ctx.arg::<u64>(0);
    let cap = ctx.arg::<i32>(3);
    let ret = ctx.arg::<i32>(4);
    on_cap_capable(&ctx, cred, cap, ret, 0);
    0
}

/// `CAP_OPT_NOAUDIT` (include/linux/security.h).
const CAP_OPT_NOAUDIT: u32 = 1 << 1;

#[fexit(function = "cap_capable")]
pub fn cap_capable_fexit(ctx: FExitContext) -> i32 {
    let cred = ctx.arg::<u64>(0);
    let cap = ctx.arg::<i32>(2);
    let opts = ctx.arg::<u32>(3);
    let ret = ctx.arg::<i32>(4);
    on_cap_capable(&ctx, cred, cap, ret, u32::from(opts & CAP_OPT_NOAUDIT != 0));
    0
}

#[inline(always)]
fn on_cap_capable<C: EbpfContext>(ctx: &C, cred: u64, cap: i32, ret: i32, noaudit: u32) {
    let pid_tgid = bpf_get_current_pid_tgid();
    let Some(track) = TASK_TARGET.get((pid_tgid >> 32) as u32) else {
        return;
    };
    let track = current_track(*track);
    // Checks before the command's execve belong to the tracer's own set-up (--user).
    if track == 0 || track & (TRACK_PENDING_EXEC | TRACK_PENDING_SECCOMP | TRACK_CAPS_PENDING) != 0
    {
        return;
    }
    let mut key = CapKey {
        slot: (track & TRACK_SLOT_MASK) - 1,
        cap: cap as u32,
        granted: u32::from(ret == 0),
        arch: current_arch(),
        nr: syscall_in_progress(),
        depth: 0,
        own_cred: u32::from(is_own_cred(cred)),
        noaudit,
        result: RESULT_UNKNOWN,
        reserved: 0,
        comm: bpf_get_current_comm().unwrap_or([0; 16]),
        stack: [0; CAP_STACK_DEPTH],
    };
    let size = (8 * CAP_STACK_DEPTH) as u32;
    // SAFETY: writes at most `size` bytes into the key's stack array; flags 0 = kernel stack.
    let got = unsafe { bpf_get_stack(ctx.as_ptr(), key.stack.as_mut_ptr().cast(), size, 0) };
    if got > 0 {
        key.depth = (got / 8) as u32;
    } else {
        bump(Stat::StackMiss);
    }
    if !result_tracked(&key) || !pend(pid_tgid as u32, &key) {
        count(&key, 1);
    }
}

/// Whether the syscall the check happened in reports its result (native syscalls only: the
/// syscall trace events do not cover compat ones).
#[inline(always)]
fn result_tracked(key: &CapKey) -> bool {
    key.arch == ARCH_NATIVE
        && key.nr != NO_SYSCALL
        && RESULT_TRACKED.get(key.nr).is_some_and(|&on| on != 0)
}

/// Keeps `key` until the thread's syscall returns; false when it cannot wait (it is then
/// counted now, with the result unknown).
#[inline(always)]
fn pend(tid: u32, key: &CapKey) -> bool {
    let pending = match PENDING_CHECKS.get_ptr_mut(tid) {
        Some(p) => p,
        None => {
            let Some(empty) = PENDING_TEMPLATE.get(0) else {
                return false;
            };
            if PENDING_CHECKS
                .insert(tid, empty, BPF_NOEXIST.into())
                .is_err()
            {
                bump(Stat::PendingMiss);
                return false;
            }
            let Some(p) = PENDING_CHECKS.get_ptr_mut(tid) else {
                return false;
            };
            p
        }
    };
    // SAFETY: a valid map value, touched only by this thread (the key is its thread id). Every
    // index is the loop's counter, which the verifier bounds (an index computed from `len`
    // loses its bound on the way).
    unsafe {
        let len = (*pending).len as usize;
        for i in 0..MAX_PENDING_CHECKS {
            if i == len {
                // Opaque and checked again, or the compiler writes at `len`, whose bound the
                // verifier does not know.
                let i = core::hint::black_box(i);
                if i >= MAX_PENDING_CHECKS {
                    break;
                }
                (*pending).keys[i] = *key;
                (*pending).counts[i] = 1;
                (*pending).len = i as u32 + 1;
                return true;
            }
            if same(&(*pending).keys[i], key) {
                (*pending).counts[i] += 1;
                return true;
            }
        }
    }
    bump(Stat::PendingMiss);
    false
}

/// Whether two keys are the same check: compared as words (keys are zero-filled, so the unused
/// part of the stack compares equal).
#[inline(always)]
fn same(a: &CapKey, b: &CapKey) -> bool {
    const WORDS: usize = size_of::<CapKey>() / 8;
    let a = (a as *const CapKey).cast::<u64>();
    let b = (b as *const CapKey).cast::<u64>();
    for i in 0..WORDS {
        // SAFETY: both point to whole keys, 8-byte aligned (the key holds u64s).
        if unsafe { *a.add(i) != *b.add(i) } {
            return false;
        }
    }
    true
}

/// Drops thread `tid`'s pending checks uncounted (its target was given up).
#[inline(always)]
pub fn discard_pending(tid: u32) {
    let _ = PENDING_CHECKS.remove(tid);
}

/// Counts the thread's pending checks with `result` and forgets them.
#[inline(always)]
pub fn flush_pending(tid: u32, result: i32) {
    let Some(pending) = PENDING_CHECKS.get_ptr_mut(tid) else {
        return;
    };
    // SAFETY: as in `pend`.
    let len = unsafe { (*pending).len } as usize;
    for i in 0..MAX_PENDING_CHECKS {
        if i >= len {
            break;
        }
        // SAFETY: `i` is in bounds; the key is counted from the map value, not the stack.
        unsafe {
            let key = &mut (*pending).keys[i];
            key.result = result;
            count(key, (*pending).counts[i]);
        }
    }
    let _ = PENDING_CHECKS.remove(tid);
}

/// `syscalls:sys_exit_<name>`, attached to the syscalls a search walks (the tracer's list):
/// the kernel calls it only for those, so other syscalls pay nothing here.
#[tracepoint]
pub fn sys_exit_syscall(ctx: TracePointContext) -> u32 {
    // SAFETY: offset 16 is `long ret` in every syscall exit record (see the module comment).
    if let Ok(ret) = unsafe { ctx.read_at::<i64>(16) } {
        on_sys_exit((bpf_get_current_pid_tgid() >> 32) as u32, ret);
    }
    0
}

/// Untracked processes leave after the lookup; a tracked thread's pending checks, if any, get
/// the syscall's result: 0 for success, `-errno` for failure (the kernel's `-MAX_ERRNO..0`).
#[inline(always)]
fn on_sys_exit(tgid: u32, ret: i64) {
    let Some(track) = TASK_TARGET.get(tgid) else {
        return;
    };
    if *track == 0 {
        return;
    }
    if current_track(*track) == 0 {
        // Its target was given up: what it checked is dropped with it.
        discard_pending(bpf_get_current_pid_tgid() as u32);
        return;
    }
    let result = if (-4095..0).contains(&ret) {
        ret as i32
    } else {
        0
    };
    flush_pending(bpf_get_current_pid_tgid() as u32, result);
}

/// Adds `n` to the key's count, inserting it the first time.
#[inline(always)]
#[expect(
    clippy::needless_borrows_for_generic_args,
    reason = "the 184-byte key stays on the 512-byte BPF stack once; by value it would be copied"
)]
fn count(key: &CapKey, n: u64) {
    if let Some(count) = CAP_CHECKS.get_ptr_mut(key) {
        // SAFETY: a valid value; atomic because threads of a target race on several CPUs.
        unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(count, n) };
    } else if CAP_CHECKS.insert(key, &n, 0).is_err() {
        bump(Stat::CapMiss);
    }
}

/// Whether `cred` is the current task's own (its `real_cred`), not credentials the kernel put in
/// `current->cred` with override_creds() for the duration of an operation.
#[inline(always)]
fn is_own_cred(cred: u64) -> bool {
    let off = OFF_TASK_CRED.load();
    if off == NO_OFFSET {
        return true;
    }
    // SAFETY: a fault-safe read of the current task_struct at an offset from the kernel's BTF.
    let own = unsafe {
        let task = bpf_get_current_task() as *const u8;
        bpf_probe_read_kernel(task.add(off as usize) as *const u64)
    };
    own.map_or(true, |own| own == cred)
}

/// The syscall number saved in the task's user registers (`orig_ax`), -1 outside a syscall.
#[inline(always)]
fn syscall_in_progress() -> u32 {
    let off = OFF_REGS_SYSCALL_NR.load();
    if off == NO_OFFSET {
        return NO_SYSCALL;
    }
    // SAFETY: bpf_task_pt_regs on the current task (a trusted BTF pointer) returns its user
    // register frame; the read is fault-safe.
    let nr = unsafe {
        let regs = bpf_task_pt_regs(bpf_get_current_task_btf()) as *const u8;
        bpf_probe_read_kernel(regs.add(off as usize) as *const i64)
    };
    match nr {
        Ok(nr) if nr >= 0 => nr as u32,
        Ok(_) => NO_SYSCALL,
        Err(_) => {
            bump(Stat::ReadFailed);
            NO_SYSCALL
        }
    }
}
