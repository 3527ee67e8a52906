//! Empty programs that `cinch doctor` loads (and attaches, then detaches) to find out which hook
//! types this kernel really allows, instead of guessing from its version.

use aya_ebpf::{
    macros::{fentry, kprobe, lsm, tracepoint},
    programs::{FEntryContext, LsmContext, ProbeContext, TracePointContext},
};

#[kprobe]
pub fn doctor_kprobe(_ctx: ProbeContext) -> u32 {
    0
}

#[fentry(function = "cap_capable")]
pub fn doctor_fentry(_ctx: FEntryContext) -> i32 {
    0
}

#[lsm(hook = "file_open")]
pub fn doctor_lsm(_ctx: LsmContext) -> i32 {
    0
}

#[tracepoint]
pub fn doctor_tracepoint(_ctx: TracePointContext) -> u32 {
    0
}
