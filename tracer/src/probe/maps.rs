//! Reading what the kernel side aggregated: per-target syscall counts, argument values and
//! capability checks, the target state, the loss counters, and the rare events of the ring
//! buffer.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context as _;
use cinch_common::{
    ARCH_TABLES, CELLS_PER_TARGET, CapKey, Event, MAX_SYSCALLS, STAT_COUNT, Stat, TargetState,
    counter,
};

use super::Probe;

/// Counters from the kernel side that say whether a recording is complete (`STATS`, one per
/// [`Stat`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Stats {
    pub syscall_out_of_range: u64,
    pub counter_miss: u64,
    pub track_miss: u64,
    pub ring_drop: u64,
    pub read_failed: u64,
    pub cap_miss: u64,
    pub stack_miss: u64,
    pub slots_exhausted: u64,
    pub arg_miss: u64,
    pub pending_miss: u64,
    pub path_drop: u64,
    pub cred_miss: u64,
    pub net_miss: u64,
    pub read_drop: u64,
}

/// Every counter of `STATS`: one more [`Stat`] does not compile until it is listed here and
/// has its field in [`Stats`].
const ALL_STATS: [Stat; STAT_COUNT as usize] = [
    Stat::SyscallOutOfRange,
    Stat::CounterMiss,
    Stat::TrackMiss,
    Stat::RingDrop,
    Stat::ReadFailed,
    Stat::CapMiss,
    Stat::StackMiss,
    Stat::SlotsExhausted,
    Stat::ArgMiss,
    Stat::PendingMiss,
    Stat::PathDrop,
    Stat::CredMiss,
    Stat::NetMiss,
    Stat::ReadDrop,
];

impl Stats {
    /// What was counted since `earlier` (a target's start, when one probe serves many).
    pub(crate) fn since(&self, earlier: &Stats) -> Stats {
        let mut out = *self;
        let mut earlier = *earlier;
        for stat in ALL_STATS {
            let before = *earlier.counter_mut(stat);
            let now = out.counter_mut(stat);
            *now = now.saturating_sub(before);
        }
        out
    }

    fn counter_mut(&mut self, stat: Stat) -> &mut u64 {
        match stat {
            Stat::SyscallOutOfRange => &mut self.syscall_out_of_range,
            Stat::CounterMiss => &mut self.counter_miss,
            Stat::TrackMiss => &mut self.track_miss,
            Stat::RingDrop => &mut self.ring_drop,
            Stat::ReadFailed => &mut self.read_failed,
            Stat::CapMiss => &mut self.cap_miss,
            Stat::StackMiss => &mut self.stack_miss,
            Stat::SlotsExhausted => &mut self.slots_exhausted,
            Stat::ArgMiss => &mut self.arg_miss,
            Stat::PendingMiss => &mut self.pending_miss,
            Stat::PathDrop => &mut self.path_drop,
            Stat::CredMiss => &mut self.cred_miss,
            Stat::NetMiss => &mut self.net_miss,
            Stat::ReadDrop => &mut self.read_drop,
        }
    }
}

/// The values recorded for one argument-sensitive syscall of a target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ArgValues {
    /// Masked value → calls.
    pub values: BTreeMap<u64, u64>,
    /// Masked value → the processes (comm) that used it first, as far as the ring buffer told.
    pub comms: BTreeMap<u64, BTreeSet<String>>,
    /// Some values could not be stored.
    pub lost: bool,
}

impl Probe {
    /// Target slots loaded.
    pub(crate) fn slots(&self) -> u32 {
        self.slots
    }

    pub(crate) fn target(&self, slot: u32) -> anyhow::Result<TargetState> {
        self.targets
            .get(&slot, 0)
            .context("reading the target state")
    }

    /// Summed syscall counts of a target: (architecture table, number) → count.
    pub(crate) fn counts(&self, slot: u32) -> anyhow::Result<BTreeMap<(u32, u32), u64>> {
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

    /// The kernel side's loss and error counters, summed over CPUs.
    pub(crate) fn stats(&self) -> anyhow::Result<Stats> {
        let mut stats = Stats::default();
        for stat in ALL_STATS {
            *stats.counter_mut(stat) = self
                .stats
                .get(&(stat as u32), 0)
                .context("reading stats")?
                .iter()
                .sum();
        }
        Ok(stats)
    }

    /// Recorded argument values of a target: (architecture table, number) → values.
    pub(crate) fn arg_values(&self, slot: u32) -> anyhow::Result<BTreeMap<(u32, u32), ArgValues>> {
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
    pub(crate) fn all_cap_checks(&self) -> anyhow::Result<Vec<CapKey>> {
        self.cap_checks
            .keys()
            .map(|k| k.context("reading capability checks"))
            .collect()
    }

    /// Capability checks of a target with their counts, including those still waiting for
    /// their syscall to return (a thread blocked in it when the recording ends), whose result
    /// is unknown.
    pub(crate) fn cap_checks(&self, slot: u32) -> anyhow::Result<Vec<(CapKey, u64)>> {
        let mut out: BTreeMap<CapKey, u64> = BTreeMap::new();
        for item in self.cap_checks.iter() {
            let (key, count) = item.context("reading capability checks")?;
            if key.slot == slot {
                *out.entry(key).or_default() += count;
            }
        }
        for item in self.pending_checks.iter() {
            let (_, pending) = item.context("reading pending capability checks")?;
            let len = (pending.len as usize).min(pending.keys.len());
            for (key, count) in pending.keys[..len].iter().zip(pending.counts) {
                if key.slot == slot {
                    *out.entry(*key).or_default() += count;
                }
            }
        }
        Ok(out.into_iter().collect())
    }

    /// The programs a target exec'd that gained privileges, with how often; `None` when this
    /// kernel does not say (no `linux_binprm.secureexec` in its BTF).
    pub(crate) fn privileged_execs(
        &self,
        slot: u32,
    ) -> anyhow::Result<Option<BTreeMap<String, u64>>> {
        if !self.sees_privileged_execs {
            return Ok(None);
        }
        let mut out = BTreeMap::new();
        for item in self.priv_execs.iter() {
            let (key, count) = item.context("reading privilege-gaining execs")?;
            if key.slot == slot {
                let len = key
                    .comm
                    .iter()
                    .position(|&b| b == 0)
                    .unwrap_or(key.comm.len());
                *out.entry(String::from_utf8_lossy(&key.comm[..len]).into_owned())
                    .or_default() += count;
            }
        }
        Ok(Some(out))
    }

    /// The Internet addresses the target's sockets named, by call.
    pub(crate) fn endpoints(
        &self,
        slot: u32,
    ) -> anyhow::Result<Vec<profile_gen::network::Endpoint>> {
        use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
        let mut out = BTreeMap::new();
        for item in self.nets.iter() {
            let (key, count) = item.context("reading socket addresses")?;
            if key.slot != slot {
                continue;
            }
            let call = match key.kind {
                cinch_common::NET_BIND => "bind",
                cinch_common::NET_LISTEN => "listen",
                _ => "connect",
            };
            let address = if key.family == 2 {
                IpAddr::V4(Ipv4Addr::new(
                    key.addr[0],
                    key.addr[1],
                    key.addr[2],
                    key.addr[3],
                ))
            } else {
                IpAddr::V6(Ipv6Addr::from(key.addr))
            };
            *out.entry((call, address, key.port)).or_insert(0) += count;
        }
        Ok(out
            .into_iter()
            .map(
                |((call, address, port), count)| profile_gen::network::Endpoint {
                    call: call.to_owned(),
                    address,
                    port,
                    count,
                },
            )
            .collect())
    }

    /// What the target's counted tasks used so far; `None` when the kernel side cannot read it.
    pub(crate) fn usage(&self, slot: u32) -> anyhow::Result<Option<TargetUsage>> {
        if !self.sees_usage {
            return Ok(None);
        }
        let state = self.target(slot)?;
        // SAFETY: sysconf has no preconditions.
        let page = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        Ok(Some(TargetUsage {
            threads_peak: state.threads_peak,
            processes_peak: state.live_peak,
            cpu_ns: state.cpu_ns,
            memory_bytes: state.maxrss_pages.saturating_mul(page),
            live: state.live,
            attached: self.attached.get(&slot).map_or(0, BTreeSet::len),
            // SAFETY: as above.
            host_cpus: u32::try_from(unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) })
                .unwrap_or(1),
        }))
    }

    /// The ids the target's processes ran with, joined by ids across programs.
    pub(crate) fn credentials(
        &self,
        slot: u32,
    ) -> anyhow::Result<Vec<profile_gen::user::Credential>> {
        let mut by_ids: BTreeMap<(u32, u32, u32, u32), profile_gen::user::Credential> =
            BTreeMap::new();
        for item in self.creds.iter() {
            let (key, count) = item.context("reading the ids processes ran with")?;
            if key.slot != slot {
                continue;
            }
            let c = by_ids
                .entry((key.uid, key.gid, key.euid, key.egid))
                .or_insert_with(|| profile_gen::user::Credential {
                    uid: key.uid,
                    gid: key.gid,
                    euid: key.euid,
                    egid: key.egid,
                    ..Default::default()
                });
            let len = key
                .comm
                .iter()
                .position(|&b| b == 0)
                .unwrap_or(key.comm.len());
            c.comms
                .insert(String::from_utf8_lossy(&key.comm[..len]).into_owned());
            c.count += count;
        }
        Ok(by_ids.into_values().collect())
    }

    /// Rare events waiting in the ring buffer (never blocks). `FirstArg` events are kept here,
    /// for [`Probe::arg_values`], and passed on like the others.
    pub(crate) fn drain_events(&mut self, mut f: impl FnMut(Event)) {
        self.drain_paths();
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

impl Probe {
    /// Filesystem writes waiting in their ring buffer, placed while their processes still run.
    fn drain_paths(&mut self) {
        let native = profile_gen::Arch::native();
        while let Some(item) = self.paths.next() {
            if item.len() < size_of::<cinch_common::PathEvent>() {
                continue;
            }
            // SAFETY: the kernel side writes whole `PathEvent`s; read unaligned to be safe.
            let event = unsafe {
                std::ptr::read_unaligned(item.as_ptr().cast::<cinch_common::PathEvent>())
            };
            drop(item);
            self.files.add(native, &event);
        }
        self.files.sample_scratch();
    }

    /// The paths `slot` wrote, after the writes still queued, with `lost` writes the kernel
    /// side could not pass on (they are not told apart by target).
    pub(crate) fn writes(&mut self, slot: u32, lost: u64) -> profile_gen::filesystem::FileWrites {
        self.drain_paths();
        self.files.take_writes(slot, lost)
    }

    /// Whether the tracer was refused the root of `slot`'s processes (their reads are then
    /// unresolved).
    pub(crate) fn root_denied(&self, slot: u32) -> bool {
        self.files.root_denied(slot)
    }

    /// The files `slot` read or executed, after the reads still queued, with `lost` reads the
    /// kernel side could not pass on (they are not told apart by target).
    pub(crate) fn reads(&mut self, slot: u32, lost: u64) -> profile_gen::image::FileReads {
        self.drain_paths();
        self.files.take_reads(slot, lost)
    }
}

/// What a target's tasks used, from `TargetState` (see `cinch_common::TargetState`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TargetUsage {
    pub threads_peak: u32,
    pub processes_peak: u32,
    /// CPU time of the tasks that exited.
    pub cpu_ns: u64,
    /// Peak resident sets of the processes that exited, summed.
    pub memory_bytes: u64,
    /// Processes still alive (their use is not counted yet).
    pub live: u32,
    /// Processes attached to rather than seen starting (not counted).
    pub attached: usize,
    pub host_cpus: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn losses_since_a_target_started() {
        let earlier = Stats {
            read_drop: 4,
            ring_drop: 1,
            ..Stats::default()
        };
        let now = Stats {
            read_drop: 6,
            ring_drop: 1,
            net_miss: 2,
            ..Stats::default()
        };
        let since = now.since(&earlier);
        assert_eq!(since.read_drop, 2);
        assert_eq!(since.ring_drop, 0);
        assert_eq!(since.net_miss, 2);
        assert_eq!(earlier.since(&now).read_drop, 0, "never below zero");
    }

    #[test]
    fn every_stat_is_read_once() {
        let mut indices: Vec<u32> = ALL_STATS.iter().map(|&s| s as u32).collect();
        indices.sort_unstable();
        assert_eq!(indices, (0..STAT_COUNT).collect::<Vec<_>>());
        // Each counter lands in its field: the numbers are the ABI's (common's `Stat`).
        let mut stats = Stats::default();
        for stat in ALL_STATS {
            *stats.counter_mut(stat) = stat as u64 + 1;
        }
        assert_eq!(
            stats,
            Stats {
                syscall_out_of_range: 1,
                counter_miss: 2,
                track_miss: 3,
                ring_drop: 4,
                read_failed: 5,
                cap_miss: 6,
                stack_miss: 7,
                slots_exhausted: 8,
                arg_miss: 9,
                pending_miss: 10,
                path_drop: 11,
                cred_miss: 12,
                net_miss: 13,
                read_drop: 14,
            }
        );
    }
}
