//! Loading the embedded eBPF object: the load-time globals (what the kernel side cannot learn
//! itself: our own tgid, syscall numbers of execve, struct offsets, which arguments to record),
//! the maps sized at load time, and the maps the kernel side consults on its own, filled before
//! anything is attached. Also what a refused load is explained with.

use anyhow::Context as _;
use aya::{
    Ebpf, EbpfError, EbpfLoader,
    maps::{HashMap, Queue},
};
use cinch_common::{
    ARCH_COMPAT, ARCH_NATIVE, ARG_MASKS_LEN, ARG_SPEC_LEN, MAX_ARGS, MAX_SYSCALLS, NO_OFFSET,
    arg_spec, counter, names,
};
use profile_gen::{Arch, arguments};

use super::Config;
use super::layout::KernelLayout;
use crate::error::kernel;

/// The eBPF object `build.rs` built (empty when built with AYA_BUILD_SKIP=1). `record`,
/// `doctor` and `bench-floor` all load these bytes.
pub(crate) static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/cinch"));

/// Whether this build carries a real eBPF object (not the AYA_BUILD_SKIP stub).
pub(crate) fn object_present() -> bool {
    !OBJECT.is_empty()
}

pub(crate) fn pid_max() -> anyhow::Result<u32> {
    let s = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .context("reading /proc/sys/kernel/pid_max")?;
    s.trim()
        .parse()
        .with_context(|| format!("parsing /proc/sys/kernel/pid_max ({:?})", s.trim()))
}

/// Loads the object for a recording: globals set, maps sized for `config.slots` targets and
/// `pid_max` processes, `KNOWN_MNTNS` and `FREE_SLOTS` filled. Nothing is attached yet.
pub(super) fn load(config: &Config, layout: &KernelLayout, pid_max: u32) -> anyhow::Result<Ebpf> {
    let slots = config.slots;
    let tracer_tgid = std::process::id();
    let (nr_execve, nr_execveat) = (libc::SYS_execve as u32, libc::SYS_execveat as u32);
    let arg_table = ArgTable::build(Arch::native(), &layout.off_regs_args);
    let path_table = super::paths::path_table(Arch::native());
    let cred_table = cred_table(Arch::native());
    let net_table = net_table(Arch::native());
    let mut ebpf = EbpfLoader::new()
        .map_max_entries(names::TASK_TARGET, pid_max)
        .map_max_entries(names::COUNTS, slots)
        .override_global(names::G_TRACER_TGID, &tracer_tgid, true)
        .override_global(names::G_NR_EXECVE, &nr_execve, true)
        .override_global(names::G_NR_EXECVEAT, &nr_execveat, true)
        .override_global(names::G_OFF_COMPAT_STATUS, &layout.off_compat_status, true)
        .override_global(names::G_COMPAT_FLAG, &layout.compat_flag, true)
        .override_global(names::G_OFF_TASK_PID, &layout.off_task_pid, true)
        .override_global(names::G_OFF_TASK_TGID, &layout.off_task_tgid, true)
        .override_global(
            names::G_OFF_REGS_SYSCALL_NR,
            &layout.off_regs_syscall_nr,
            true,
        )
        .override_global(names::G_OFF_TASK_NSPROXY, &layout.off_task_nsproxy, true)
        .override_global(
            names::G_OFF_NSPROXY_MNT_NS,
            &layout.off_nsproxy_mnt_ns,
            true,
        )
        .override_global(names::G_OFF_MNT_NS_INUM, &layout.off_mnt_ns_inum, true)
        .override_global(names::G_OFF_MNT_NS_ID, &layout.off_mnt_ns_id, true)
        .override_global(
            names::G_OFF_TASK_SECCOMP_MODE,
            &layout.off_task_seccomp_mode,
            true,
        )
        .override_global(names::G_MNTNS_MODE, &config.mntns_mode, true)
        .override_global(names::G_OFF_TASK_SIGNAL, &layout.off_task_signal, true)
        .override_global(names::G_OFF_TASK_CRED, &layout.off_task_cred, true)
        .override_global(
            names::G_OFF_BPRM_SECUREEXEC,
            &layout.off_bprm_secureexec,
            true,
        )
        .override_global(names::G_OFF_SIGNAL_LIVE, &layout.off_signal_live, true)
        .override_global(names::G_ARG_SPEC, &arg_table.spec, true)
        .override_global(names::G_ARG_MASKS, &arg_table.masks, true)
        .override_global(names::G_PATH_SPEC, &path_table, true)
        .override_global(names::G_OFF_PATH_WALK, &layout.off_path_walk, true)
        .override_global(names::G_CRED_SPEC, &cred_table, true)
        .override_global(names::G_NET_SPEC, &net_table, true)
        .override_global(names::G_OFF_CRED_IDS, &layout.off_cred_ids, true)
        .override_global(names::G_OFF_USAGE, &layout.off_usage, true)
        .override_global(names::G_OFF_REGS_ARGS, &layout.off_regs_args, true)
        .load(OBJECT)
        .map_err(|e| explain_load_error("loading the eBPF object", e))?;

    // The maps the kernel side consults on its own are filled before anything is attached:
    // in watch mode an empty KNOWN_MNTNS would make every fork on the host a "container".
    let mut known: HashMap<_, u32, u64> = HashMap::try_from(
        ebpf.map_mut(names::KNOWN_MNTNS)
            .context("no KNOWN_MNTNS map")?,
    )?;
    for (inum, id) in &config.known_mntns {
        known
            .insert(inum, id, 0)
            .context("filling the known mount namespaces")?;
    }
    let mut free: Queue<_, u32> = Queue::try_from(
        ebpf.map_mut(names::FREE_SLOTS)
            .context("no FREE_SLOTS map")?,
    )?;
    for slot in config.reserved_slots..slots {
        free.push(slot, 0)
            .context("filling the free target slots")?;
    }
    Ok(ebpf)
}

/// Loads the object with its globals left as built, for trying attach points
/// (`cinch doctor`): the one map sized by pid_max is shrunk, since nothing is tracked.
pub(crate) fn load_for_trial() -> Result<Ebpf, EbpfError> {
    EbpfLoader::new()
        .map_max_entries(names::TASK_TARGET, 1)
        .load(OBJECT)
}

/// Loads the object as built (the benchmark floor).
pub(super) fn load_as_built() -> anyhow::Result<Ebpf> {
    EbpfLoader::new()
        .load(OBJECT)
        .map_err(|e| explain_load_error("loading the eBPF object", e))
}

/// Which syscalls' arguments the kernel side records (`ARG_SPEC`) and with which masks, from
/// the generator's table ([`profile_gen::arguments`]).
struct ArgTable {
    spec: [u8; ARG_SPEC_LEN],
    masks: [u64; ARG_MASKS_LEN],
}

impl ArgTable {
    fn build(native: Arch, off_regs_args: &[u32; 2 * MAX_ARGS as usize]) -> ArgTable {
        let mut masks = [0u64; ARG_MASKS_LEN];
        for (slot, mask) in arguments::masks()
            .into_iter()
            .enumerate()
            .take(ARG_MASKS_LEN)
        {
            masks[slot] = mask;
        }
        let mut spec = [0u8; ARG_SPEC_LEN];
        for table in [ARCH_NATIVE, ARCH_COMPAT] {
            let Some(arch) = table_arch(native, table) else {
                continue;
            };
            let offsets = &off_regs_args[(table * MAX_ARGS) as usize..][..MAX_ARGS as usize];
            for entry in arguments::ARG_SYSCALLS {
                if arguments::lookup(arch, entry.name).is_none()
                    || offsets[entry.index as usize] == NO_OFFSET
                {
                    continue;
                }
                let (Some(nr), Some(mask)) = (
                    profile_gen::naming::syscall_number(arch, entry.name),
                    arguments::mask_slot(entry.mask),
                ) else {
                    continue;
                };
                if nr < MAX_SYSCALLS {
                    spec[counter(table, nr) as usize] = arg_spec(entry.index, mask);
                }
            }
        }
        ArgTable { spec, masks }
    }
}

/// The syscalls that set ids: the ids a process runs with are recorded at its next syscall.
const CRED_SYSCALLS: &[&str] = &[
    "setuid",
    "setgid",
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "setfsuid",
    "setfsgid",
    "setuid32",
    "setgid32",
    "setreuid32",
    "setregid32",
    "setresuid32",
    "setresgid32",
    "setfsuid32",
    "setfsgid32",
];

/// `CRED_SPEC`: 1 per (architecture table, number) of an id-setting syscall.
fn cred_table(native: Arch) -> [u8; ARG_SPEC_LEN] {
    let mut table = [0u8; ARG_SPEC_LEN];
    for t in [ARCH_NATIVE, ARCH_COMPAT] {
        let Some(arch) = table_arch(native, t) else {
            continue;
        };
        for name in CRED_SYSCALLS {
            if let Some(nr) = profile_gen::naming::syscall_number(arch, name)
                && nr < MAX_SYSCALLS
            {
                table[counter(t, nr) as usize] = 1;
            }
        }
    }
    table
}

/// `NET_SPEC`: the socket calls whose address is recorded, per (architecture table, number).
/// Not `socketcall` (i386 programs before Linux 4.3's direct calls): its arguments are behind
/// a pointer; not the compat `sendmsg`, whose `msghdr` has 32-bit pointers; not `sendmmsg`
/// (glibc's resolver, its main user, connects its socket first).
fn net_table(native: Arch) -> [u8; ARG_SPEC_LEN] {
    let mut table = [0u8; ARG_SPEC_LEN];
    for t in [ARCH_NATIVE, ARCH_COMPAT] {
        let Some(arch) = table_arch(native, t) else {
            continue;
        };
        for (name, kind) in [
            ("bind", cinch_common::NET_BIND),
            ("listen", cinch_common::NET_LISTEN),
            ("connect", cinch_common::NET_CONNECT),
            ("sendto", cinch_common::NET_SENDTO),
            ("sendmsg", cinch_common::NET_SENDMSG),
        ] {
            if t == ARCH_COMPAT && kind == cinch_common::NET_SENDMSG {
                continue;
            }
            if let Some(nr) = profile_gen::naming::syscall_number(arch, name)
                && nr < MAX_SYSCALLS
            {
                table[counter(t, nr) as usize] = kind;
            }
        }
    }
    table
}

/// The architecture a counter table holds on this machine.
pub(crate) fn table_arch(native: Arch, table: u32) -> Option<Arch> {
    if table == ARCH_COMPAT {
        native.compat()
    } else {
        Some(native)
    }
}

/// A load or attach failure as one sentence, with what to do when the kernel said EPERM.
pub(super) fn explain_load_error(what: &str, e: impl Into<anyhow::Error>) -> anyhow::Error {
    // The cause (EPERM...) is a source of aya's error, not part of its own message; aya also
    // repeats an inner message in the outer one, so a cause already said is left out.
    let e: anyhow::Error = e.into();
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !parts.last().is_some_and(|last| last.contains(&s)) {
            parts.push(s);
        }
    }
    let msg = parts.join(": ");
    let hint = if msg.contains("Operation not permitted") || msg.contains("EPERM") {
        missing_privileges_hint()
    } else {
        String::new()
    };
    kernel(format!("{what}: {msg}{hint}"))
}

/// Which of the capabilities loading needs this process lacks, as the end of a sentence.
fn missing_privileges_hint() -> String {
    // An unreadable set is taken as empty: the hint then names both.
    let privileges = Privileges::of_this_process().unwrap_or_default();
    if privileges.suffice() {
        "; this process has the capabilities eBPF needs, so a security module or kernel lockdown refuses it".to_owned()
    } else {
        format!(
            "; loading eBPF needs root, or CAP_BPF and CAP_PERFMON, and this process lacks {} (run with sudo)",
            privileges.missing().join(" and ")
        )
    }
}

/// The capabilities that loading and attaching tracing programs takes, as this process has
/// them in its effective set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Privileges {
    pub bpf: bool,
    pub perfmon: bool,
    pub sys_admin: bool,
}

impl Privileges {
    pub(crate) fn of_this_process() -> Result<Privileges, caps::errors::CapsError> {
        use caps::{CapSet, Capability};
        let effective = caps::read(None, CapSet::Effective)?;
        Ok(Privileges {
            bpf: effective.contains(&Capability::CAP_BPF),
            perfmon: effective.contains(&Capability::CAP_PERFMON),
            sys_admin: effective.contains(&Capability::CAP_SYS_ADMIN),
        })
    }

    /// CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN (which covers both).
    pub(crate) fn suffice(&self) -> bool {
        (self.bpf && self.perfmon) || self.sys_admin
    }

    /// Of CAP_BPF and CAP_PERFMON, the ones missing.
    pub(crate) fn missing(&self) -> Vec<&'static str> {
        [(self.bpf, "CAP_BPF"), (self.perfmon, "CAP_PERFMON")]
            .into_iter()
            .filter(|(has, _)| !has)
            .map(|(_, name)| name)
            .collect()
    }
}
