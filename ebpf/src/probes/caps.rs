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
//! Kernels before 6.14 have no such tracepoint: the fallback is fexit on cap_capable itself,
//! `int cap_capable(const struct cred *cred, struct user_namespace *targ_ns, int cap,
//! unsigned int opts)` (security/commoncap.c), whose return value follows the arguments and whose
//! `opts` carry CAP_OPT_NOAUDIT (include/linux/security.h).

use core::intrinsics::{AtomicOrdering, atomic_xadd};

use aya_ebpf::{
    EbpfContext,
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_task,
        bpf_probe_read_kernel,
        generated::{bpf_get_current_task_btf, bpf_get_stack, bpf_task_pt_regs},
    },
    macros::{btf_tracepoint, fexit},
    programs::{BtfTracePointContext, FExitContext},
};
use cinch_common::{
    CAP_STACK_DEPTH, CapKey, NO_OFFSET, NO_SYSCALL, Stat, TRACK_CAPS_PENDING, TRACK_PENDING_EXEC,
    TRACK_PENDING_SECCOMP, TRACK_SLOT_MASK,
};

use crate::maps::{CAP_CHECKS, OFF_REGS_SYSCALL_NR, OFF_TASK_CRED, TASK_TARGET, bump};
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
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let Some(track) = TASK_TARGET.get(tgid) else {
        return;
    };
    let track = *track;
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
    count(&key);
}

/// Adds one to the key's count, inserting it the first time.
#[inline(always)]
#[expect(
    clippy::needless_borrows_for_generic_args,
    reason = "the 168-byte key stays on the 512-byte BPF stack once; by value it would be copied"
)]
fn count(key: &CapKey) {
    if let Some(count) = CAP_CHECKS.get_ptr_mut(key) {
        // SAFETY: a valid value; atomic because threads of a target race on several CPUs.
        unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(count, 1) };
    } else if CAP_CHECKS.insert(key, &1, 0).is_err() {
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
