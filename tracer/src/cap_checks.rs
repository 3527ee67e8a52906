//! Turning the kernel's raw capability checks into the Recording's `capabilities`: symbolized
//! stacks, the kernel function that asked, and whether the check is noise for an allowlist.
//!
//! The `capability:cap_capable` tracepoint fires for every check, including the non-audited
//! probes the kernel makes to choose a behaviour (not to decide whether an operation may
//! proceed). Those must stay out of `cap_add`: keeping CAP_SYS_ADMIN because glibc's malloc
//! made the overcommit heuristic ask for it would undo the point of the allowlist. The rules are
//! in [`NOISE_RULES`], each naming the kernel function it matches.

use std::collections::{BTreeMap, BTreeSet};

use cinch_common::{ARCH_COMPAT, CapKey, NO_SYSCALL};
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

/// Syscalls whose ptrace-mode access check is the operation itself.
const PTRACE_SYSCALLS: &[&str] = &[
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "pidfd_getfd",
    "process_madvise",
];

/// A noise rule: when it matches, the check is recorded (marked) but never enters `cap_add`.
struct NoiseRule {
    /// What the rule says about the check, stored in the recording.
    reason: &'static str,
    matches: fn(&Check<'_>) -> bool,
}

struct Check<'a> {
    cap: u32,
    /// The kernel checked the task's own credentials (not ones borrowed with override_creds).
    own_cred: bool,
    /// The kernel said it was not auditing the check (CAP_OPT_NOAUDIT); only the fexit
    /// source sees this flag, the tracepoint leaves the plumbing frames to tell.
    noaudit: bool,
    /// Plumbing frames between the tracepoint and the caller.
    plumbing: &'a [String],
    caller: &'a str,
    /// The caller and the frames below it.
    context: &'a [String],
    syscall: Option<&'a str>,
}

const CAP_SYS_ADMIN: u32 = 21;
const CAP_SYS_PTRACE: u32 = 19;

const NOISE_RULES: &[NoiseRule] = &[
    // include/linux/security.h, CAP_OPT_NOAUDIT: passed by every *_noaudit helper and by
    // cap_vm_enough_memory(): the kernel asks to choose a behaviour, not to allow an operation.
    NoiseRule {
        reason: "non-audited capability probe (CAP_OPT_NOAUDIT): the kernel asks to choose a behaviour, not to allow the operation",
        matches: |c| c.noaudit,
    },
    // include/linux/cred.h, override_creds(): overlayfs (reading its trusted.overlay.* xattrs as
    // the mounter), cachefiles and others check capabilities against credentials they
    // borrowed, not the task's: dropping the capability from the task changes nothing. Not
    // access(2)/faccessat(2) (fs/open.c, do_faccessat -> access_override_creds): those
    // credentials are the task's own with its real ids, and its capabilities decide the answer.
    NoiseRule {
        reason: "checked against credentials the kernel borrowed (override_creds, e.g. overlayfs as its mounter), not the task's",
        matches: |c| !c.own_cred && !c.context.iter().any(|f| f == "do_faccessat"),
    },
    // security/commoncap.c, cap_vm_enough_memory(): asks for CAP_SYS_ADMIN with
    // CAP_OPT_NOAUDIT on every mmap/brk/exec to decide how much memory to reserve for root;
    // the allocation succeeds either way.
    NoiseRule {
        reason: "overcommit heuristic (cap_vm_enough_memory): asked on every allocation, never required",
        matches: |c| {
            c.cap == CAP_SYS_ADMIN
                && (c.caller == "cap_vm_enough_memory"
                    || c.caller == "security_vm_enough_memory_mm"
                    || c.caller == "__vm_enough_memory")
        },
    },
    // kernel/ptrace.c, ptrace_may_access(): __ptrace_may_access() -> ptrace_has_cap() and
    // security/commoncap.c cap_ptrace_access_check(). Called with PTRACE_MODE_NOAUDIT by fs/proc
    // (do_task_stat, proc_pid_status, ...) only to decide how much of another process's
    // /proc entry to show; the read works without CAP_SYS_PTRACE. From ptrace(2) and
    // process_vm_readv(2) it is the operation itself.
    NoiseRule {
        reason: "ptrace-mode access check while reading /proc (ptrace_may_access): /proc reads work without it",
        matches: |c| {
            c.cap == CAP_SYS_PTRACE
                && c.context
                    .iter()
                    .any(|f| f == "ptrace_may_access" || f == "__ptrace_may_access")
                && !c.syscall.is_some_and(|s| PTRACE_SYSCALLS.contains(&s))
        },
    },
    // include/linux/capability.h: ns_capable_noaudit(), has_ns_capability_noaudit(),
    // has_capability_noaudit(): the kernel's own marker for "asking, not requiring".
    NoiseRule {
        reason: "non-audited capability probe (*_noaudit): the kernel asks to choose a behaviour, not to allow the operation",
        matches: |c| c.plumbing.iter().any(|f| f.ends_with("_noaudit")),
    },
];

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

    fn name(&self, addr: u64) -> String {
        let i = self.index.partition_point(|&(a, _, _)| a <= addr);
        match i.checked_sub(1).and_then(|i| self.index.get(i)) {
            Some(&(a, start, end)) if a != 0 => self.names[start as usize..end as usize].to_owned(),
            _ => format!("{addr:#x}"),
        }
    }
}

/// (capability, granted, syscall in progress, caller): what one recording entry stands for.
type MergeKey = (u32, bool, Option<(Arch, u32)>, String);

/// Raw checks → recording entries, merged by (capability, result, syscall, caller).
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
        let check = Check {
            cap: key.cap,
            own_cred: key.own_cred == 1,
            noaudit: key.noaudit == 1,
            plumbing,
            caller: &caller,
            context: rest,
            syscall: syscall.as_ref().and_then(|s| s.name.as_deref()),
        };
        let noise = NOISE_RULES
            .iter()
            .find(|r| (r.matches)(&check))
            .map(|r| r.reason.to_owned());
        let granted = key.granted == 1;
        let entry = merged
            .entry((
                key.cap,
                granted,
                syscall.as_ref().map(|s| (s.arch, s.nr)),
                caller.clone(),
            ))
            .or_insert_with(|| CapabilityCheck {
                cap: key.cap,
                name: Capability::from_number(key.cap).map(|c| c.docker_name().to_owned()),
                granted,
                syscall: syscall.clone(),
                caller: caller.clone(),
                stack: rest.iter().take(6).cloned().collect(),
                count: 0,
                comms: Vec::new(),
                noise: noise.clone(),
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

    fn classify(cap: u32, stack: &[&str], syscall: Option<&str>) -> Option<&'static str> {
        classify_with(cap, stack, syscall, true)
    }

    fn classify_with(
        cap: u32,
        stack: &[&str],
        syscall: Option<&str>,
        own_cred: bool,
    ) -> Option<&'static str> {
        let frames: Vec<String> = stack.iter().map(|s| (*s).to_owned()).collect();
        let split = frames
            .iter()
            .position(|f| !PLUMBING.contains(&f.as_str()))
            .unwrap_or(frames.len());
        let check = Check {
            cap,
            own_cred,
            noaudit: false,
            plumbing: &frames[..split],
            caller: &frames[split],
            context: &frames[split..],
            syscall,
        };
        NOISE_RULES
            .iter()
            .find(|r| (r.matches)(&check))
            .map(|r| r.reason)
    }

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
        assert_eq!(checks[0].noise, None);
    }

    #[test]
    fn overcommit_probe_is_noise() {
        let stack = [
            "cap_capable",
            "cap_vm_enough_memory",
            "security_vm_enough_memory_mm",
            "do_brk_flags",
        ];
        assert!(classify(CAP_SYS_ADMIN, &stack, Some("brk")).is_some());
    }

    #[test]
    fn proc_reads_are_noise_but_ptrace_is_not() {
        let stack = [
            "cap_capable",
            "security_capable",
            "has_ns_capability",
            "__ptrace_may_access",
            "ptrace_may_access",
        ];
        assert!(classify(CAP_SYS_PTRACE, &stack, Some("openat")).is_some());
        assert!(classify(CAP_SYS_PTRACE, &stack, Some("ptrace")).is_none());
        let lsm = [
            "cap_capable",
            "cap_ptrace_access_check",
            "security_ptrace_access_check",
            "ptrace_may_access",
            "do_task_stat",
        ];
        assert!(classify(CAP_SYS_PTRACE, &lsm, Some("read")).is_some());
    }

    #[test]
    fn real_needs_are_not_noise() {
        let chown = [
            "cap_capable",
            "security_capable",
            "ns_capable",
            "capable_wrt_inode_uidgid",
            "chown_ok",
            "notify_change",
        ];
        assert_eq!(classify(0, &chown, Some("fchownat")), None);
        let bind = [
            "cap_capable",
            "security_capable",
            "ns_capable",
            "inet_bind_common",
        ];
        assert_eq!(classify(10, &bind, Some("bind")), None);
    }

    #[test]
    fn borrowed_credentials_are_noise_except_for_access() {
        let ovl = [
            "cap_capable",
            "security_capable",
            "ns_capable",
            "xattr_permission",
            "vfs_getxattr",
            "ovl_path_check_origin_xattr",
        ];
        assert!(classify_with(CAP_SYS_ADMIN, &ovl, Some("newfstatat"), false).is_some());
        assert_eq!(
            classify_with(CAP_SYS_ADMIN, &ovl, Some("newfstatat"), true),
            None
        );
        let access = [
            "cap_capable",
            "security_capable",
            "ns_capable",
            "capable_wrt_inode_uidgid",
            "generic_permission",
            "inode_permission",
            "do_faccessat",
        ];
        assert_eq!(classify_with(1, &access, Some("faccessat2"), false), None);
    }

    #[test]
    fn noaudit_plumbing_is_noise() {
        let stack = [
            "cap_capable",
            "security_capable",
            "ns_capable_noaudit",
            "some_caller",
        ];
        assert!(classify(CAP_SYS_ADMIN, &stack, Some("openat")).is_some());
    }
}
