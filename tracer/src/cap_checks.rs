//! Turning the kernel's raw capability checks into the Recording's `capabilities`: symbolized
//! stacks split into the capability helpers and the kernel function that asked, with the
//! syscall, its result and the credential and audit flags.
//!
//! Whether a check is a need is not decided here: the Recording keeps what the rules read, and
//! the generator applies them (`profile_gen::cap_rules`), so an old recording is classified by
//! newer rules.

use std::collections::{BTreeMap, BTreeSet};

use cinch_common::{ARCH_COMPAT, CapKey, NO_SYSCALL, RESULT_UNKNOWN};
use profile_gen::Arch;
use profile_gen::capability::Capability;
use profile_gen::recording::{CapabilityCheck, SyscallRef};

/// Frames that are the capability machinery itself or the tracing path into the probe; the
/// caller is the first frame below them (nearest to the tracepoint but not one of these).
const PLUMBING: &[&str] = &[
    "cap_capable",
    "cap_capable_helper",
    "security_capable",
    "ns_capable",
    "ns_capable_common",
    "ns_capable_noaudit",
    "ns_capable_setid",
    "capable",
    "has_ns_capability",
    "has_ns_capability_noaudit",
    "has_capability",
    "has_capability_noaudit",
    "capable_wrt_inode_uidgid",
    "privileged_wrt_inode_uidgid",
    "file_ns_capable",
    "sk_ns_capable",
    "sk_capable",
    "sk_net_capable",
    "netlink_ns_capable",
    "netlink_capable",
    "netlink_net_capable",
    "ptrace_has_cap",
];

fn is_tracing_frame(f: &str) -> bool {
    f.starts_with("bpf_")
        || f.starts_with("__bpf_")
        || f.starts_with("__traceiter_")
        || f.starts_with("__probestub_")
        || f.starts_with("trace_call_bpf")
        || f.starts_with("perf_trace_")
}

/// Symbolizes return addresses with /proc/kallsyms.
pub(crate) struct Symbols {
    /// The names of the kernel's text symbols, back to back.
    names: String,
    /// (address, start and end of the name in `names`) of every text symbol, sorted.
    index: Vec<(u64, u32, u32)>,
}

/// The kernel's symbols, read once per run.
static SYMBOLS: std::sync::OnceLock<Symbols> = std::sync::OnceLock::new();

/// The kernel's symbols, read the first time they are needed (or waited for, when
/// [`read_symbols_in_background`] is reading them).
pub(crate) fn symbols() -> &'static Symbols {
    SYMBOLS.get_or_init(Symbols::load)
}

/// Starts reading the kernel's symbols on another thread: the kernel takes about 100 ms to
/// produce /proc/kallsyms, which would otherwise be waited for when the recording is written.
pub(crate) fn read_symbols_in_background() {
    std::thread::spawn(|| {
        symbols();
    });
}

impl Symbols {
    /// Streams /proc/kallsyms (hundreds of thousands of lines) keeping only text symbols, their
    /// names packed in one string: no String per symbol, and never the whole file in memory.
    pub(crate) fn load() -> Symbols {
        use std::io::BufRead as _;
        let mut names = String::new();
        let mut index = Vec::new();
        let Ok(file) = std::fs::File::open("/proc/kallsyms") else {
            return Symbols { names, index };
        };
        let mut reader = std::io::BufReader::with_capacity(64 * 1024, file);
        let mut line = String::new();
        while matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
            let mut fields = line.split_ascii_whitespace();
            // `__pfx_*` (about half the text symbols on kernels with function padding) marks the
            // padding before a function: no return address points into it, so it is not kept.
            if let (Some(addr), Some("t" | "T"), Some(name)) =
                (fields.next(), fields.next(), fields.next())
                && !name.starts_with("__pfx_")
                && let Ok(addr) = u64::from_str_radix(addr, 16)
                && let (Ok(start), Ok(end)) = (
                    u32::try_from(names.len()),
                    u32::try_from(names.len() + name.len()),
                )
            {
                names.push_str(name);
                index.push((addr, start, end));
            }
            line.clear();
        }
        index.sort_unstable_by_key(|&(a, _, _)| a);
        names.shrink_to_fit();
        index.shrink_to_fit();
        Symbols { names, index }
    }

    /// Whether the kernel hid its symbols' addresses (all zeros: `kptr_restrict`, or a reader
    /// without CAP_SYSLOG), so that no caller can be named.
    pub(crate) fn hidden(&self) -> bool {
        self.index.iter().all(|&(a, _, _)| a == 0)
    }

    fn name(&self, addr: u64) -> String {
        let i = self.index.partition_point(|&(a, _, _)| a <= addr);
        match i.checked_sub(1).and_then(|i| self.index.get(i)) {
            Some(&(a, start, end)) if a != 0 => self.names[start as usize..end as usize].to_owned(),
            _ => format!("{addr:#x}"),
        }
    }
}

/// What one recording entry stands for: capability, granted, syscall in progress, its result,
/// the helpers and the stack from the caller down, own credentials, not audited.
type MergeKey = (
    u32,
    bool,
    Option<(Arch, u32)>,
    Option<i32>,
    Vec<String>,
    Vec<String>,
    bool,
    bool,
);

/// Raw checks → recording entries, merged when they differ only in the process or in stack
/// frames the recording does not keep.
pub(crate) fn build(checks: &[(CapKey, u64)], symbols: &Symbols) -> Vec<CapabilityCheck> {
    let native = Arch::native();
    let mut merged: BTreeMap<MergeKey, CapabilityCheck> = BTreeMap::new();
    for (key, count) in checks {
        let depth = (key.depth as usize).min(key.stack.len());
        let named: Vec<String> = key.stack[..depth]
            .iter()
            .map(|&a| symbols.name(a))
            .collect();
        // The stack is taken in the tracepoint inside cap_capable(), so every frame before the
        // first capability frame is tracing machinery, whatever its address resolves to: a BPF
        // program loaded after /proc/kallsyms was read is not named there (its address falls
        // after the last kernel symbol, `_einittext`).
        let inner = named
            .iter()
            .position(|f| PLUMBING.contains(&f.as_str()))
            .unwrap_or(0);
        let frames: Vec<String> = named
            .into_iter()
            .skip(inner)
            .filter(|f| !is_tracing_frame(f))
            .collect();
        let split = frames
            .iter()
            .position(|f| !PLUMBING.contains(&f.as_str()))
            .unwrap_or(frames.len());
        let (plumbing, rest) = frames.split_at(split);
        let caller = rest
            .first()
            .cloned()
            .unwrap_or_else(|| "unknown".to_owned());
        let arch = if key.arch == ARCH_COMPAT {
            native.compat().unwrap_or(native)
        } else {
            native
        };
        let syscall = (key.nr != NO_SYSCALL).then(|| SyscallRef {
            arch,
            nr: key.nr,
            name: profile_gen::naming::syscall_name(arch, key.nr),
        });
        let granted = key.granted == 1;
        let result = (key.nr != NO_SYSCALL && key.result != RESULT_UNKNOWN).then_some(key.result);
        let own_cred = key.own_cred == 1;
        let noaudit = key.noaudit == 1;
        let entry = merged
            .entry((
                key.cap,
                granted,
                syscall.as_ref().map(|s| (s.arch, s.nr)),
                result,
                plumbing.to_vec(),
                rest.to_vec(),
                own_cred,
                noaudit,
            ))
            .or_insert_with(|| CapabilityCheck {
                cap: key.cap,
                name: Capability::from_number(key.cap).map(|c| c.docker_name().to_owned()),
                granted,
                syscall: syscall.clone(),
                caller: caller.clone(),
                stack: rest.to_vec(),
                helpers: plumbing.to_vec(),
                own_cred,
                noaudit,
                result,
                count: 0,
                comms: Vec::new(),
                noise: None,
            });
        entry.count += count;
        let len = key
            .comm
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(key.comm.len());
        let comm = String::from_utf8_lossy(&key.comm[..len]).into_owned();
        if !comm.is_empty() {
            let mut comms: BTreeSet<String> = entry.comms.drain(..).collect();
            comms.insert(comm);
            entry.comms = comms.into_iter().collect();
        }
    }
    merged.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BPF program loaded after /proc/kallsyms was read has no name there: its frame, at the
    /// top of every stack, must not become the caller.
    #[test]
    fn unnamed_tracing_frames_above_cap_capable_are_skipped() {
        let symbols = [
            (0x1000, "cap_capable"),
            (0x2000, "security_capable"),
            (0x3000, "ns_capable"),
            (0x4000, "__inet_bind"),
            (0x5000, "inet_bind_sk"),
            (0x6000, "_einittext"),
        ];
        let mut names = String::new();
        let mut index = Vec::new();
        for (addr, name) in symbols {
            let start = names.len() as u32;
            names.push_str(name);
            index.push((addr, start, names.len() as u32));
        }
        let symbols = Symbols { names, index };
        let mut key = CapKey {
            cap: 10,
            granted: 1,
            nr: NO_SYSCALL,
            own_cred: 1,
            depth: 6,
            ..CapKey::default()
        };
        key.stack[..6].copy_from_slice(&[0x6100, 0x1010, 0x2010, 0x3010, 0x4010, 0x5010]);
        let checks = build(&[(key, 1)], &symbols);
        assert_eq!(checks.len(), 1);
        assert_eq!(checks[0].caller, "__inet_bind");
        assert_eq!(checks[0].stack, ["__inet_bind", "inet_bind_sk"]);
        assert_eq!(
            checks[0].helpers,
            ["cap_capable", "security_capable", "ns_capable"]
        );
        assert_eq!(checks[0].result, None, "outside a syscall");
    }
}
