//! Empty programs: the hook types `cinch doctor` tries (it loads, attaches and detaches them to
//! find out which this kernel really allows, instead of guessing from its version), and the
//! cost floor `cargo xtask bench` measures cinch against.

use aya_ebpf::{
    macros::{btf_tracepoint, fentry, kprobe, lsm, tracepoint},
    programs::{BtfTracePointContext, FEntryContext, LsmContext, ProbeContext, TracePointContext},
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

/// The floor every syscall recorder pays: an empty program on `raw_syscalls:sys_enter`,
/// attached the way the recorder attaches (tp_btf). `cargo xtask bench` measures cinch's cost
/// above it.
#[btf_tracepoint(function = "sys_enter")]
pub fn floor_sys_enter(_ctx: BtfTracePointContext) -> i32 {
    0
}
