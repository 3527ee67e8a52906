//! Other programs on `sys_enter`: on a shared machine another cinch, bpftrace or test run may
//! attach one while the bench measures, and then every process, the bench's included, pays for
//! it. Samples taken while one was attached are set aside.

use std::process::Command;

use crate::util::output;

/// `comm(pid)` of every process that holds a BPF program attached to `sys_enter` (tp_btf,
/// raw_tp or classic tracepoint: `bpftool perf list` shows all three), except `own`.
pub(super) fn sys_enter_holders(own: &[u32]) -> Vec<String> {
    let Ok(out) = output(Command::new("bpftool").args(["-j", "perf", "list"])) else {
        return Vec::new();
    };
    let Ok(entries) = serde_json::from_slice::<serde_json::Value>(&out.stdout) else {
        return Vec::new();
    };
    let mut holders: Vec<String> = entries
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["tracepoint"].as_str() == Some("sys_enter"))
        .filter_map(|e| e["pid"].as_u64())
        .filter_map(|pid| u32::try_from(pid).ok())
        .filter(|pid| !own.contains(pid))
        .map(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            format!("{}({pid})", comm.trim())
        })
        .collect();
    holders.sort();
    holders.dedup();
    holders
}
