//! Loading cinch's eBPF object, attaching it, and reading what it aggregated.
//!
//! The object is built by `build.rs` and embedded; the load-time globals carry what the kernel
//! side cannot learn itself (our own tgid, syscall numbers of execve, struct offsets from the
//! running kernel's BTF). Dropping [`Probe`] detaches every program.

use std::collections::BTreeMap;

use anyhow::Context as _;
use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, HashMap, MapData, PerCpuArray, Queue, RingBuf},
    programs::{BtfTracePoint, FExit, RawTracePoint, TracePoint},
};
use cinch_common::{
    ARCH_COMPAT, ARCH_NATIVE, ARCH_TABLES, ARG_MASKS_LEN, ARG_SPEC_LEN, ArgKey, CELLS_PER_TARGET,
    CapKey, Event, MAX_ARGS, MAX_SYSCALLS, MAX_TARGETS, NO_OFFSET, STAT_COUNT, TARGET_ACTIVE,
    TRACK_ATTACHED, TRACK_CAPS_PENDING, TRACK_PENDING_EXEC, TRACK_PENDING_SECCOMP, TRACK_SLOT_MASK,
    TargetCounts, TargetState, arg_spec, counter, names,
};
use profile_gen::{Arch, arguments};

use crate::btf::Btf;
use crate::error::kernel;

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/cinch"));

/// Which program serves `raw_syscalls:sys_enter`, in order of preference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyscallAttach {
    TpBtf,
    RawTp,
    Tracepoint,
}

impl SyscallAttach {
    pub fn as_str(self) -> &'static str {
        match self {
            SyscallAttach::TpBtf => "tp_btf",
            SyscallAttach::RawTp => "raw_tp",
            SyscallAttach::Tracepoint => "tracepoint",
        }
    }
}

/// Counters from the kernel side that say whether a recording is complete.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub syscall_out_of_range: u64,
    pub counter_miss: u64,
    pub track_miss: u64,
    pub ring_drop: u64,
    pub read_failed: u64,
    pub cap_miss: u64,
    pub stack_miss: u64,
    pub slots_exhausted: u64,
    pub arg_miss: u64,
}

/// The values recorded for one argument-sensitive syscall of a target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArgValues {
    /// Masked value → calls.
    pub values: BTreeMap<u64, u64>,
    /// Masked value → the processes (comm) that used it first, as far as the ring buffer told.
    pub comms: BTreeMap<u64, std::collections::BTreeSet<String>>,
    /// Some values could not be stored.
    pub lost: bool,
}

/// Where capability checks come from on this kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CapabilitySource {
    /// `capability:cap_capable` (Linux 6.14+), through tp_btf.
    Tracepoint,
    /// fexit on `cap_capable()`, for kernels without the tracepoint (BPF trampolines, 5.5+).
    Fexit,
    /// Nothing worked; the reason says why. Syscalls are still recorded.
    None(String),
}

impl CapabilitySource {
    pub fn as_str(&self) -> &'static str {
        match self {
            CapabilitySource::Tracepoint => "tracepoint",
            CapabilitySource::Fexit => "fexit",
            CapabilitySource::None(_) => "none",
        }
    }
}

pub struct Probe {
    // Owns the programs and their links: dropping it detaches everything.
    _ebpf: Ebpf,
    pub syscall_attach: SyscallAttach,
    pub capability_source: CapabilitySource,
    cap_checks: HashMap<MapData, CapKey, u64>,
    mntns_slot: HashMap<MapData, u32, u32>,
    /// Processes registered when attaching, per slot (see [`TRACK_ATTACHED`]).
    attached: std::collections::BTreeMap<u32, std::collections::BTreeSet<u32>>,
    /// Who used each argument value first: (slot, arch table, nr, value) → comms, from
    /// `FirstArg` events.
    arg_comms: BTreeMap<(u32, u32, u32, u64), std::collections::BTreeSet<String>>,
    /// Per slot, the last process found still tracked there (see [`Probe::target_alive`]).
    witness: std::collections::BTreeMap<u32, u32>,
    task_target: Array<MapData, u32>,
    targets: Array<MapData, TargetState>,
    counts: PerCpuArray<MapData, TargetCounts>,
    arg_values: HashMap<MapData, ArgKey, u64>,
    arg_lost: Array<MapData, u64>,
    stats: PerCpuArray<MapData, u64>,
    events: RingBuf<MapData>,
    slots: u32,
    pid_max: u32,
}

/// Kernel facts the probes need, read before loading.
#[derive(Debug)]
struct KernelLayout {
    off_task_pid: u32,
    off_task_tgid: u32,
    off_compat_status: u32,
    compat_flag: u32,
    off_regs_syscall_nr: u32,
    off_task_signal: u32,
    off_signal_live: u32,
    off_task_cred: u32,
    off_task_nsproxy: u32,
    off_nsproxy_mnt_ns: u32,
    off_mnt_ns_inum: u32,
    off_task_seccomp_mode: u32,
    /// Offsets in `struct pt_regs` of the syscall arguments, native table then compat.
    off_regs_args: [u32; 2 * MAX_ARGS as usize],
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

/// The architecture a counter table holds on this machine.
pub fn table_arch(native: Arch, table: u32) -> Option<Arch> {
    if table == ARCH_COMPAT {
        native.compat()
    } else {
        Some(native)
    }
}

/// What to load the probes for.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Target slots to size the counters for (1..=MAX_TARGETS).
    pub slots: u32,
    /// Slots below this are handed out by the tracer; the rest by the kernel side, to new
    /// containers.
    pub reserved_slots: u32,
    /// `MNTNS_OFF`, `MNTNS_TARGETS` or `MNTNS_WATCH_NEW`.
    pub mntns_mode: u32,
    /// Mount namespaces that are not new containers (watch mode).
    pub known_mntns: std::collections::BTreeSet<u32>,
}

impl Config {
    /// One process tree.
    pub fn process_tree() -> Config {
        Config {
            slots: 1,
            reserved_slots: 1,
            ..Config::default()
        }
    }
}

fn kernel_layout() -> anyhow::Result<KernelLayout> {
    let btf = Btf::from_sys_fs().map_err(|e| {
        kernel(format!(
            "{e}; cinch needs a kernel built with BTF (CONFIG_DEBUG_INFO_BTF=y, Linux 5.8 or later)"
        ))
    })?;
    let off = |s: &str, m: &str| {
        btf.member_offset(s, m)
            .map_err(|e| kernel(format!("reading the kernel's BTF: {e}")))
    };
    // Linux 6.16+ says which thread's exit ends the process (group_dead); before that the
    // probe reads signal_struct.live itself.
    // CINCH_EXIT_VIA_SIGNAL_LIVE=1 takes the older kernels' path here too, so it is tested.
    let force_fallback = std::env::var_os("CINCH_EXIT_VIA_SIGNAL_LIVE").is_some_and(|v| v == "1");
    let (off_task_signal, off_signal_live) =
        if !force_fallback && btf.has_member("trace_event_raw_sched_process_exit", "group_dead") {
            (NO_OFFSET, NO_OFFSET)
        } else {
            (off("task_struct", "signal")?, off("signal_struct", "live")?)
        };
    #[cfg(target_arch = "x86_64")]
    let (off_compat_status, compat_flag) = (off("task_struct", "thread_info.status")?, 0x0002);
    #[cfg(not(target_arch = "x86_64"))]
    let (off_compat_status, compat_flag) = (NO_OFFSET, 0);
    // The syscall number as saved on kernel entry: -1 (or the number) survives in orig_ax.
    #[cfg(target_arch = "x86_64")]
    let off_regs_syscall_nr = btf.member_offset("pt_regs", "orig_ax").unwrap_or(NO_OFFSET);
    #[cfg(target_arch = "aarch64")]
    let off_regs_syscall_nr = btf
        .member_offset("pt_regs", "syscallno")
        .unwrap_or(NO_OFFSET);
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    let off_regs_syscall_nr = NO_OFFSET;
    // The syscall ABI's argument registers (arch/x86/entry/entry_64.S and
    // entry_64_compat.S; arch/arm64/kernel/syscall.c).
    let mut off_regs_args = [NO_OFFSET; 2 * MAX_ARGS as usize];
    #[cfg(target_arch = "x86_64")]
    for (i, reg) in [
        "di", "si", "dx", "r10", "r8", "r9", "bx", "cx", "dx", "si", "di", "bp",
    ]
    .into_iter()
    .enumerate()
    {
        off_regs_args[i] = btf.member_offset("pt_regs", reg).unwrap_or(NO_OFFSET);
    }
    #[cfg(target_arch = "aarch64")]
    if let Ok(regs) = btf.member_offset("pt_regs", "regs") {
        for i in 0..MAX_ARGS as usize {
            off_regs_args[i] = regs + 8 * i as u32;
            off_regs_args[MAX_ARGS as usize + i] = regs + 8 * i as u32;
        }
    }
    Ok(KernelLayout {
        off_task_cred: off("task_struct", "real_cred")?,
        off_task_signal,
        off_signal_live,
        off_regs_syscall_nr,
        off_task_nsproxy: off("task_struct", "nsproxy")?,
        off_nsproxy_mnt_ns: off("nsproxy", "mnt_ns")?,
        off_mnt_ns_inum: off("mnt_namespace", "ns.inum")?,
        off_task_seccomp_mode: off("task_struct", "seccomp.mode")?,
        off_task_pid: off("task_struct", "pid")?,
        off_task_tgid: off("task_struct", "tgid")?,
        off_compat_status,
        compat_flag,
        off_regs_args,
    })
}

pub fn pid_max() -> anyhow::Result<u32> {
    let s = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .context("reading /proc/sys/kernel/pid_max")?;
    s.trim()
        .parse()
        .with_context(|| format!("parsing /proc/sys/kernel/pid_max ({:?})", s.trim()))
}

/// Whether this build carries a real eBPF object (not the AYA_BUILD_SKIP stub).
pub fn object_present() -> bool {
    !OBJECT.is_empty()
}

fn explain_load_error(what: &str, e: impl Into<anyhow::Error>) -> anyhow::Error {
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
    use caps::{CapSet, Capability};
    let missing: Vec<&str> = [
        (Capability::CAP_BPF, "CAP_BPF"),
        (Capability::CAP_PERFMON, "CAP_PERFMON"),
    ]
    .into_iter()
    .filter(|(cap, _)| !caps::has_cap(None, CapSet::Effective, *cap).unwrap_or(false))
    .map(|(_, name)| name)
    .collect();
    let has_sys_admin =
        caps::has_cap(None, CapSet::Effective, Capability::CAP_SYS_ADMIN).unwrap_or(false);
    if missing.is_empty() || has_sys_admin {
        "; this process has the capabilities eBPF needs, so a security module or kernel lockdown refuses it".to_owned()
    } else {
        format!(
            "; loading eBPF needs root, or CAP_BPF and CAP_PERFMON, and this process lacks {} (run with sudo)",
            missing.join(" and ")
        )
    }
}

impl Probe {
    /// Loads and attaches the probes, with room for `slots` targets.
    pub fn load(config: &Config) -> anyhow::Result<Probe> {
        let slots = config.slots;
        if !object_present() {
            return Err(kernel(
                "this cinch was built without its eBPF object (AYA_BUILD_SKIP); run `cargo xtask setup` and rebuild",
            ));
        }
        assert!(
            (1..=MAX_TARGETS).contains(&slots),
            "slot count out of range"
        );
        // Capability checks are named from /proc/kallsyms when the recording is written; the
        // kernel takes about 100 ms to produce it, so it is read now, on another core, while
        // the programs load. (Our own programs are not in it yet: cap_checks::build knows.)
        crate::cap_checks::read_symbols_in_background();
        let layout = kernel_layout()?;
        tracing::debug!(?layout, "kernel struct offsets from BTF");
        let pid_max = pid_max()?;
        let tracer_tgid = std::process::id();
        let (nr_execve, nr_execveat) = (libc::SYS_execve as u32, libc::SYS_execveat as u32);
        let arg_table = ArgTable::build(Arch::native(), &layout.off_regs_args);
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
            .override_global(
                names::G_OFF_TASK_SECCOMP_MODE,
                &layout.off_task_seccomp_mode,
                true,
            )
            .override_global(names::G_MNTNS_MODE, &config.mntns_mode, true)
            .override_global(names::G_OFF_TASK_SIGNAL, &layout.off_task_signal, true)
            .override_global(names::G_OFF_TASK_CRED, &layout.off_task_cred, true)
            .override_global(names::G_OFF_SIGNAL_LIVE, &layout.off_signal_live, true)
            .override_global(names::G_ARG_SPEC, &arg_table.spec, true)
            .override_global(names::G_ARG_MASKS, &arg_table.masks, true)
            .override_global(names::G_OFF_REGS_ARGS, &layout.off_regs_args, true)
            .load(OBJECT)
            .map_err(|e| explain_load_error("loading the eBPF object", e))?;

        // The maps the kernel side consults on its own are filled before anything is attached:
        // in watch mode an empty KNOWN_MNTNS would make every fork on the host a "container".
        {
            let mut known: HashMap<_, u32, u32> = HashMap::try_from(
                ebpf.map_mut(names::KNOWN_MNTNS)
                    .context("no KNOWN_MNTNS map")?,
            )?;
            for inum in &config.known_mntns {
                known
                    .insert(inum, 1, 0)
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
        }

        // Lifecycle first, so a fork between attaching sys_enter and registering is followed.
        for (prog, tp) in [
            (names::FORK, "sched_process_fork"),
            (names::EXIT, "sched_process_exit"),
            (names::EXEC, "sched_process_exec"),
        ] {
            let p: &mut RawTracePoint = program(&mut ebpf, prog)?;
            p.load()
                .map_err(|e| explain_load_error(&format!("loading {prog}"), e))?;
            p.attach(tp)
                .map_err(|e| explain_load_error(&format!("attaching to {tp}"), e))?;
        }
        // The kernel's BTF is parsed three times: by our reader for the struct offsets
        // (above), by aya's loader, which keeps its copy private, and here, once for both
        // tp_btf programs. One after the other, so that only one copy is in memory at a time.
        let btf = aya::Btf::from_sys_fs().ok();
        let capability_source = attach_cap_capable(&mut ebpf, btf.as_ref());
        let syscall_attach = attach_sys_enter(&mut ebpf, btf.as_ref())?;
        drop(btf);
        tracing::info!(
            syscalls = syscall_attach.as_str(),
            capabilities = capability_source.as_str(),
            slots,
            pid_max,
            known_mount_namespaces = config.known_mntns.len(),
            "probe loaded and attached"
        );

        let mut take = |name: &str| {
            ebpf.take_map(name)
                .with_context(|| format!("the eBPF object has no map {name}"))
        };
        let task_target = Array::try_from(take(names::TASK_TARGET)?)?;
        let targets = Array::try_from(take(names::TARGETS)?)?;
        let counts = PerCpuArray::try_from(take(names::COUNTS)?)?;
        let stats = PerCpuArray::try_from(take(names::STATS)?)?;
        let events = RingBuf::try_from(take(names::EVENTS)?)?;
        let cap_checks = HashMap::try_from(take(names::CAP_CHECKS)?)?;
        let mntns_slot = HashMap::try_from(take(names::MNTNS_SLOT)?)?;
        let arg_values = HashMap::try_from(take(names::ARG_VALUES)?)?;
        let arg_lost = Array::try_from(take(names::ARG_LOST)?)?;
        Ok(Probe {
            arg_values,
            arg_lost,
            arg_comms: BTreeMap::new(),
            mntns_slot,
            attached: Default::default(),
            witness: Default::default(),
            _ebpf: ebpf,
            syscall_attach,
            capability_source,
            cap_checks,
            task_target,
            targets,
            counts,
            stats,
            events,
            slots,
            pid_max,
        })
    }

    /// Starts target `slot` with its first thread group. `pending_exec`: count nothing until
    /// the process calls execve (a child we forked and hold until it is registered).
    pub fn start_target(&mut self, slot: u32, tgid: u32, pending_exec: bool) -> anyhow::Result<()> {
        anyhow::ensure!(
            slot < self.slots,
            "target slot {slot} beyond {}",
            self.slots
        );
        self.targets
            .set(
                slot,
                TargetState {
                    live: 1,
                    flags: TARGET_ACTIVE,
                    processes_seen: 1,
                    mntns: 0,
                    first_tgid: tgid,
                },
                0,
            )
            .context("initialising the target")?;
        self.track(slot, tgid, pending_exec)
    }

    /// Starts target `slot` for a container's mount namespace: every process that enters it
    /// from now on is followed. Running processes are added with [`Probe::attach_process`].
    pub fn start_container_target(
        &mut self,
        slot: u32,
        mntns: u32,
        first_tgid: u32,
    ) -> anyhow::Result<()> {
        self.start_attached_target(slot, mntns, first_tgid)?;
        self.mntns_slot
            .insert(mntns, slot, 0)
            .context("registering the container's mount namespace")
    }

    /// Starts an attach-mode target (`--pid`, `--container`): `live` starts at 0 and counts
    /// only processes the kernel side sees forked; running processes are added with
    /// [`Probe::attach_process`] and watched here.
    pub fn start_attached_target(
        &mut self,
        slot: u32,
        mntns: u32,
        first_tgid: u32,
    ) -> anyhow::Result<()> {
        anyhow::ensure!(
            slot < self.slots,
            "target slot {slot} beyond {}",
            self.slots
        );
        let state = TargetState {
            live: 0,
            flags: TARGET_ACTIVE,
            processes_seen: 0,
            mntns,
            first_tgid,
        };
        self.targets
            .set(slot, state, 0)
            .context("initialising the target")
    }

    /// Adds a running thread group to an attach-mode target. Only the kernel side writes
    /// `live`, so there is no read-modify-write race with its fork and exit probes. A process
    /// the kernel side tracks already (forked by a tracked parent while the tracer was
    /// enumerating) is left as it is: marking it attached would hide its exit from `live` and
    /// drop its pending start-up flags.
    pub fn attach_process(&mut self, slot: u32, tgid: u32) -> anyhow::Result<()> {
        self.attach_with(slot, tgid, 0)
    }

    /// [`Probe::attach_process`] for a process that is entering a container (a runtime between
    /// `setns` and its seccomp install): counted from its seccomp install or its next execve,
    /// as the kernel side does for such a process it sees forked.
    pub fn attach_entering_process(&mut self, slot: u32, tgid: u32) -> anyhow::Result<()> {
        self.attach_with(slot, tgid, TRACK_PENDING_SECCOMP | TRACK_CAPS_PENDING)
    }

    fn attach_with(&mut self, slot: u32, tgid: u32, flags: u32) -> anyhow::Result<()> {
        anyhow::ensure!(
            tgid < self.pid_max,
            "pid {tgid} beyond pid_max {}",
            self.pid_max
        );
        if self.tracked_slot(tgid)?.is_some() {
            return Ok(());
        }
        self.task_target
            .set(tgid, (slot + 1) | TRACK_ATTACHED | flags, 0)
            .with_context(|| format!("tracking pid {tgid}"))?;
        if !crate::procfs::running(tgid) {
            // It exited since it was listed, and the kernel side clears a cell only at exit:
            // left set, the cell would claim whatever process gets the pid next.
            return self
                .task_target
                .set(tgid, 0, 0)
                .with_context(|| format!("untracking pid {tgid}"));
        }
        self.attached.entry(slot).or_default().insert(tgid);
        Ok(())
    }

    /// The slot a thread group is tracked in, if any.
    fn tracked_slot(&self, tgid: u32) -> anyhow::Result<Option<u32>> {
        let track = self
            .task_target
            .get(&tgid, 0)
            .with_context(|| format!("reading the tracking of pid {tgid}"))?;
        Ok((track & TRACK_SLOT_MASK).checked_sub(1))
    }

    /// Whether the target still has a process: an attached one that has not exited (a zombie
    /// has), or one the kernel side followed.
    ///
    /// `live` can overstate, never understate: a child forked between the lookup and the write
    /// in [`Probe::attach_process`] is counted by the kernel side and then marked attached, so
    /// its exit is not subtracted. A non-zero `live` is therefore confirmed: some running
    /// process must still be tracked in the slot (the kernel side clears a process's cell when
    /// its thread group dies). The last process found is asked first, so a long-lived target
    /// costs two lookups a tick, not a scan of /proc.
    pub fn target_alive(&mut self, slot: u32) -> anyhow::Result<bool> {
        let running = crate::procfs::running;
        if self
            .attached
            .get(&slot)
            .is_some_and(|pids| pids.iter().any(|&p| running(p)))
        {
            return Ok(true);
        }
        if self.target(slot)?.live == 0 {
            return Ok(false);
        }
        let in_slot = |probe: &Probe, pid: u32| -> anyhow::Result<bool> {
            Ok(probe.tracked_slot(pid)? == Some(slot) && running(pid))
        };
        if let Some(&pid) = self.witness.get(&slot)
            && in_slot(self, pid)?
        {
            return Ok(true);
        }
        for pid in crate::procfs::pids().filter(|&p| p < self.pid_max) {
            if in_slot(self, pid)? {
                self.witness.insert(slot, pid);
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Thread groups seen in a target: those the kernel side followed plus the attached ones.
    pub fn processes_seen(&self, slot: u32) -> anyhow::Result<u64> {
        let attached = self.attached.get(&slot).map_or(0, |s| s.len() as u64);
        Ok(self.target(slot)?.processes_seen + attached)
    }

    fn track(&mut self, slot: u32, tgid: u32, pending_exec: bool) -> anyhow::Result<()> {
        anyhow::ensure!(
            tgid < self.pid_max,
            "pid {tgid} beyond pid_max {}",
            self.pid_max
        );
        let mut value = slot + 1;
        if pending_exec {
            value |= TRACK_PENDING_EXEC;
        }
        self.task_target
            .set(tgid, value, 0)
            .with_context(|| format!("tracking pid {tgid}"))
    }

    pub fn target(&self, slot: u32) -> anyhow::Result<TargetState> {
        self.targets
            .get(&slot, 0)
            .context("reading the target state")
    }

    /// Summed syscall counts of a target: (architecture table, number) → count.
    pub fn counts(&self, slot: u32) -> anyhow::Result<BTreeMap<(u32, u32), u64>> {
        let per_cpu = self
            .counts
            .get(&slot, 0)
            .context("reading syscall counts")?;
        let mut out = BTreeMap::new();
        for arch in 0..ARCH_TABLES {
            for nr in 0..MAX_SYSCALLS {
                let i = counter(arch, nr) as usize;
                let total: u64 = per_cpu.iter().map(|c| c.counts[i]).sum();
                if total > 0 {
                    out.insert((arch, nr), total);
                }
            }
        }
        Ok(out)
    }

    pub fn stats(&self) -> anyhow::Result<Stats> {
        let mut v = [0u64; STAT_COUNT as usize];
        for (i, slot) in v.iter_mut().enumerate() {
            *slot = self
                .stats
                .get(&(i as u32), 0)
                .context("reading stats")?
                .iter()
                .sum();
        }
        Ok(Stats {
            syscall_out_of_range: v[0],
            counter_miss: v[1],
            track_miss: v[2],
            ring_drop: v[3],
            read_failed: v[4],
            cap_miss: v[5],
            stack_miss: v[6],
            slots_exhausted: v[7],
            arg_miss: v[8],
        })
    }

    /// Recorded argument values of a target: (architecture table, number) → values.
    pub fn arg_values(&self, slot: u32) -> anyhow::Result<BTreeMap<(u32, u32), ArgValues>> {
        let mut out: BTreeMap<(u32, u32), ArgValues> = BTreeMap::new();
        for item in self.arg_values.iter() {
            let (key, count) = item.context("reading argument values")?;
            if key.slot != slot {
                continue;
            }
            let cell = (key.cell / MAX_SYSCALLS, key.cell % MAX_SYSCALLS);
            let entry = out.entry(cell).or_default();
            *entry.values.entry(key.value).or_default() += count;
            if let Some(comms) = self.arg_comms.get(&(slot, cell.0, cell.1, key.value)) {
                entry
                    .comms
                    .entry(key.value)
                    .or_default()
                    .extend(comms.iter().cloned());
            }
        }
        let first = slot * CELLS_PER_TARGET;
        for word in 0..CELLS_PER_TARGET / 64 {
            let bits = self
                .arg_lost
                .get(&(first / 64 + word), 0)
                .context("reading lost argument values")?;
            for bit in 0..64 {
                if bits & (1 << bit) != 0 {
                    let cell = word * 64 + bit;
                    out.entry((cell / MAX_SYSCALLS, cell % MAX_SYSCALLS))
                        .or_default()
                        .lost = true;
                }
            }
        }
        Ok(out)
    }

    /// The keys of every capability check so far, of all targets (for the live status).
    pub fn all_cap_checks(&self) -> anyhow::Result<Vec<CapKey>> {
        self.cap_checks
            .keys()
            .map(|k| k.context("reading capability checks"))
            .collect()
    }

    /// Capability checks of a target with their counts.
    pub fn cap_checks(&self, slot: u32) -> anyhow::Result<Vec<(CapKey, u64)>> {
        let mut out = Vec::new();
        for item in self.cap_checks.iter() {
            let (key, count) = item.context("reading capability checks")?;
            if key.slot == slot {
                out.push((key, count));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Rare events waiting in the ring buffer (never blocks). `FirstArg` events are kept here,
    /// for [`Probe::arg_values`], and passed on like the others.
    pub fn drain_events(&mut self, mut f: impl FnMut(Event)) {
        while let Some(item) = self.events.next() {
            if item.len() < size_of::<Event>() {
                continue;
            }
            // SAFETY: the kernel side writes whole `Event`s; read unaligned to be safe.
            let event = unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<Event>()) };
            drop(item);
            if event.kind == cinch_common::EventKind::FirstArg as u32 {
                let len = event.comm.iter().position(|&b| b == 0).unwrap_or(16);
                let comm = String::from_utf8_lossy(&event.comm[..len]).into_owned();
                self.arg_comms
                    .entry((event.slot, event.arch, event.nr, event.value))
                    .or_default()
                    .insert(comm);
            }
            f(event);
        }
    }
}

fn program<'a, T>(ebpf: &'a mut Ebpf, name: &str) -> anyhow::Result<&'a mut T>
where
    &'a mut T: TryFrom<&'a mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    let prog = ebpf
        .program_mut(name)
        .with_context(|| format!("the eBPF object has no program {name}"))?;
    Ok(prog.try_into()?)
}

/// The capability source: the tracepoint, else fexit on cap_capable() (docs/DESIGN.md). Its
/// absence is reported, not fatal (syscalls are still recorded). kprobes are not tried: a
/// kprobe sees neither the result nor, portably, the audit flag, and a kretprobe would have to
/// pair entries with returns.
///
/// `CINCH_CAPABILITY_SOURCE=fexit` skips the tracepoint, so the fallback is exercised on
/// kernels that have both.
fn attach_cap_capable(ebpf: &mut Ebpf, btf: Option<&aya::Btf>) -> CapabilitySource {
    let Some(btf) = btf else {
        return CapabilitySource::None("the kernel's BTF could not be read".to_owned());
    };
    let force_fexit = std::env::var_os("CINCH_CAPABILITY_SOURCE").is_some_and(|v| v == "fexit");
    let mut errors = Vec::new();
    if force_fexit {
        errors.push(
            "the capability:cap_capable tracepoint: skipped (CINCH_CAPABILITY_SOURCE=fexit)"
                .to_owned(),
        );
    } else {
        let tracepoint = (|| -> anyhow::Result<()> {
            let p: &mut BtfTracePoint = program(ebpf, names::CAP_CAPABLE_TP_BTF)?;
            p.load("cap_capable", btf)?;
            p.attach()?;
            Ok(())
        })();
        match tracepoint {
            Ok(()) => return CapabilitySource::Tracepoint,
            Err(e) => errors.push(format!(
                "the capability:cap_capable tracepoint (Linux 6.14+) could not be attached: {e:#}"
            )),
        }
    }
    let fexit = (|| -> anyhow::Result<()> {
        let p: &mut FExit = program(ebpf, names::CAP_CAPABLE_FEXIT)?;
        p.load("cap_capable", btf)?;
        p.attach()?;
        Ok(())
    })();
    match fexit {
        Ok(()) => CapabilitySource::Fexit,
        Err(e) => {
            errors.push(format!("fexit on cap_capable could not be attached: {e:#}"));
            CapabilitySource::None(errors.join("; "))
        }
    }
}

/// tp_btf, then raw_tp, then the classic tracepoint (docs/DESIGN.md): the first that loads wins.
fn attach_sys_enter(ebpf: &mut Ebpf, btf: Option<&aya::Btf>) -> anyhow::Result<SyscallAttach> {
    let mut errors = Vec::new();
    match btf {
        Some(btf) => {
            let p: &mut BtfTracePoint = program(ebpf, names::SYS_ENTER_TP_BTF)?;
            match p.load("sys_enter", btf).and_then(|()| p.attach().map(drop)) {
                Ok(()) => return Ok(SyscallAttach::TpBtf),
                Err(e) => errors.push(format!("tp_btf: {e}")),
            }
        }
        None => errors.push("tp_btf: the kernel's BTF could not be read".to_owned()),
    }
    let p: &mut RawTracePoint = program(ebpf, names::SYS_ENTER_RAW_TP)?;
    match p.load().and_then(|()| p.attach("sys_enter").map(drop)) {
        Ok(()) => return Ok(SyscallAttach::RawTp),
        Err(e) => errors.push(format!("raw_tp: {e}")),
    }
    crate::tracefs::ensure_mounted()?;
    let p: &mut TracePoint = program(ebpf, names::SYS_ENTER_TRACEPOINT)?;
    match p
        .load()
        .and_then(|()| p.attach("raw_syscalls", "sys_enter").map(drop))
    {
        Ok(()) => Ok(SyscallAttach::Tracepoint),
        Err(e) => {
            errors.push(format!("tracepoint: {e}"));
            Err(explain_load_error(
                "no way to attach to raw_syscalls:sys_enter worked",
                anyhow::Error::msg(errors.join("; ")),
            ))
        }
    }
}

/// Loads the object and attaches only the empty `sys_enter` program (the benchmark floor).
/// Dropping the returned value detaches it.
pub fn attach_floor() -> anyhow::Result<Ebpf> {
    if !object_present() {
        return Err(kernel(
            "this cinch was built without its eBPF object (AYA_BUILD_SKIP)",
        ));
    }
    let mut ebpf = EbpfLoader::new()
        .load(OBJECT)
        .map_err(|e| explain_load_error("loading the eBPF object", e))?;
    let btf =
        aya::Btf::from_sys_fs().map_err(|e| kernel(format!("reading the kernel's BTF: {e}")))?;
    let p: &mut BtfTracePoint = program(&mut ebpf, names::FLOOR)?;
    p.load("sys_enter", &btf)
        .map_err(|e| explain_load_error("loading the floor program", e))?;
    p.attach()
        .map_err(|e| explain_load_error("attaching the floor program", e))?;
    Ok(ebpf)
}
