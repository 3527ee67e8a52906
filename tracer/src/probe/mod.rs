//! Loading cinch's eBPF object, attaching it, and reading what it aggregated.
//!
//! The object is built by `build.rs` and embedded once ([`OBJECT`]); `record`, `doctor` and
//! `bench-floor` load the same bytes. By concern:
//!
//! - `btf`, `layout`: the struct offsets of the running kernel, from its BTF (Rust eBPF has no
//!   CO-RE relocations);
//! - `loader`: the load-time globals and the maps filled before anything is attached;
//! - `attach`, `outcome`, `ladders`: the attach ladders as data, the walker that `record`
//!   climbs and `doctor` surveys, and how a failed attempt is classified;
//! - `results`: the syscall exit events that give a capability check its syscall's result;
//! - `targets`: the tracer's side of target slots;
//! - `maps`: reading counts, argument values, capability checks, loss counters and events.
//!
//! Dropping [`Probe`] detaches every program.

pub(crate) mod attach;
mod btf;
mod ladders;
mod layout;
mod loader;
mod maps;
pub(crate) mod outcome;
mod paths;
mod results;
mod targets;

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context as _;
use aya::{
    Ebpf,
    maps::{Array, HashMap, MapData, PerCpuArray, Queue, RingBuf},
};
use cinch_common::{
    ArgKey, CapKey, MAX_TARGETS, PendingChecks, PrivExecKey, ReadKey, TargetCounts, TargetState,
    names,
};

pub(crate) use btf::{Btf, VMLINUX};
pub(crate) use ladders::{
    CAP_CAPABLE, CAP_CAPABLE_OTHERS, CapabilitySource, LSM_PROBE, PROCESS_EVENTS, SYS_ENTER,
    SYS_EXIT, SyscallAttach, attach_floor,
};
pub(crate) use layout::{ExitDetection, exit_detection};
pub(crate) use loader::{OBJECT, Privileges, load_for_trial, object_present, pid_max, table_arch};
pub(crate) use maps::{ArgValues, Stats, TargetUsage};

use crate::error::kernel;

pub(crate) struct Probe {
    // Owns the programs and their links: dropping it detaches everything.
    _ebpf: Ebpf,
    pub syscall_attach: SyscallAttach,
    pub capability_source: CapabilitySource,
    /// How many syscalls report their result to capability checks, or why none do.
    pub results: Result<usize, String>,
    /// Their attachments, detached together (from parallel threads) when the probe is dropped.
    _result_links: results::Links,
    cap_checks: HashMap<MapData, CapKey, u64>,
    pending_checks: HashMap<MapData, u32, PendingChecks>,
    mntns_slot: HashMap<MapData, u32, u32>,
    /// Mount namespaces whose targets were given up ([`Probe::give_up`]).
    dropped_mntns: HashMap<MapData, u64, u32>,
    /// Each slot's generation, bumped when its target is given up.
    slot_gen: Array<MapData, u32>,
    /// Processes registered when attaching, per slot (see [`cinch_common::TRACK_ATTACHED`]).
    attached: BTreeMap<u32, BTreeSet<u32>>,
    /// Who used each argument value first: (slot, arch table, nr, value) → comms, from
    /// `FirstArg` events.
    arg_comms: BTreeMap<(u32, u32, u32, u64), BTreeSet<String>>,
    /// Per slot, the last process found still tracked there (see [`Probe::target_alive`]).
    witness: BTreeMap<u32, u32>,
    task_target: Array<MapData, u32>,
    /// The tracer's tracking epoch, and the value last written to it: bumped after each process
    /// registered, so that no CPU goes on taking it for untracked.
    track_epoch: Array<MapData, u64>,
    tracer_epoch: u64,
    targets: Array<MapData, TargetState>,
    counts: PerCpuArray<MapData, TargetCounts>,
    /// The "first seen" bits of every counter cell, cleared with a released slot.
    seen: Array<MapData, u64>,
    /// The reads already sent, cleared with a released slot.
    read_seen: HashMap<MapData, ReadKey, u8>,
    /// Slots the kernel side hands to new containers; a released slot goes back.
    free_slots: Queue<MapData, u32>,
    arg_values: HashMap<MapData, ArgKey, u64>,
    arg_lost: Array<MapData, u64>,
    stats: PerCpuArray<MapData, u64>,
    events: RingBuf<MapData>,
    paths: RingBuf<MapData>,
    /// The filesystem writes drained from `paths` so far, per target.
    files: paths::Files,
    slots: u32,
    pid_max: u32,
    priv_execs: HashMap<MapData, PrivExecKey, u64>,
    creds: HashMap<MapData, cinch_common::CredKey, u64>,
    nets: HashMap<MapData, cinch_common::NetKey, u64>,
    /// Whether the kernel side can tell a privilege-gaining exec (`linux_binprm.secureexec` is
    /// in the kernel's BTF).
    sees_privileged_execs: bool,
    /// Whether the exit probe reads what tasks used (the `usage` offsets are in the BTF).
    sees_usage: bool,
}

/// What to load the probes for.
#[derive(Debug, Clone, Default)]
pub(crate) struct Config {
    /// Target slots to size the counters for (1..=MAX_TARGETS).
    pub slots: u32,
    /// Slots below this are handed out by the tracer; the rest by the kernel side, to new
    /// containers.
    pub reserved_slots: u32,
    /// `MNTNS_OFF`, `MNTNS_TARGETS` or `MNTNS_WATCH_NEW`.
    pub mntns_mode: u32,
    /// Mount namespaces that are not new containers (watch mode): inode → unique id (0: unknown).
    pub known_mntns: BTreeMap<u32, u64>,
}

impl Config {
    /// One process tree.
    pub(crate) fn process_tree() -> Config {
        Config {
            slots: 1,
            reserved_slots: 1,
            ..Config::default()
        }
    }
}

impl Probe {
    /// Loads and attaches the probes, with room for `config.slots` targets.
    pub(crate) fn load(config: &Config) -> anyhow::Result<Probe> {
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
        let layout = layout::kernel_layout()?;
        tracing::debug!(?layout, "kernel struct offsets from BTF");
        let pid_max = pid_max()?;
        let mut ebpf = loader::load(config, &layout, pid_max)?;
        let attached = ladders::attach_recorder(&mut ebpf)?;
        tracing::info!(
            syscalls = attached.syscalls.as_str(),
            capabilities = attached.capabilities.as_str(),
            results = ?attached.results.as_ref().map(results::Links::len),
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
        let track_epoch = Array::try_from(take(names::TRACK_EPOCH_TRACER)?)?;
        let targets = Array::try_from(take(names::TARGETS)?)?;
        let counts = PerCpuArray::try_from(take(names::COUNTS)?)?;
        let stats = PerCpuArray::try_from(take(names::STATS)?)?;
        let events = RingBuf::try_from(take(names::EVENTS)?)?;
        let paths = RingBuf::try_from(take(names::PATHS)?)?;
        let cap_checks = HashMap::try_from(take(names::CAP_CHECKS)?)?;
        let pending_checks = HashMap::try_from(take(names::PENDING_CHECKS)?)?;
        let mntns_slot = HashMap::try_from(take(names::MNTNS_SLOT)?)?;
        let dropped_mntns = HashMap::try_from(take(names::DROPPED_MNTNS)?)?;
        let slot_gen = Array::try_from(take(names::SLOT_GEN)?)?;
        let arg_values = HashMap::try_from(take(names::ARG_VALUES)?)?;
        let arg_lost = Array::try_from(take(names::ARG_LOST)?)?;
        let priv_execs = HashMap::try_from(take(names::PRIV_EXECS)?)?;
        let creds = HashMap::try_from(take(names::CREDS)?)?;
        let nets = HashMap::try_from(take(names::NETS)?)?;
        let seen = Array::try_from(take(names::SEEN)?)?;
        let read_seen = HashMap::try_from(take(names::READ_SEEN)?)?;
        let free_slots = Queue::try_from(take(names::FREE_SLOTS)?)?;
        Ok(Probe {
            seen,
            read_seen,
            free_slots,
            arg_values,
            arg_lost,
            arg_comms: BTreeMap::new(),
            mntns_slot,
            dropped_mntns,
            slot_gen,
            attached: BTreeMap::new(),
            witness: BTreeMap::new(),
            _ebpf: ebpf,
            syscall_attach: attached.syscalls,
            capability_source: attached.capabilities,
            results: attached
                .results
                .as_ref()
                .map(results::Links::len)
                .map_err(Clone::clone),
            _result_links: attached.results.unwrap_or_default(),
            cap_checks,
            pending_checks,
            task_target,
            track_epoch,
            tracer_epoch: 0,
            targets,
            counts,
            stats,
            events,
            paths,
            files: paths::Files::default(),
            slots,
            pid_max,
            priv_execs,
            creds,
            nets,
            sees_privileged_execs: layout.off_bprm_secureexec != cinch_common::NO_OFFSET,
            sees_usage: !layout.off_usage.contains(&cinch_common::NO_OFFSET),
        })
    }
}
