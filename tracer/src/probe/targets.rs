//! The tracer's side of targets: starting a slot, registering the processes it begins with,
//! and telling whether a target still has a process. The kernel side follows forks, execs and
//! exits from there.

use anyhow::Context as _;
use cinch_common::{
    TARGET_ACTIVE, TRACK_ATTACHED, TRACK_CAPS_PENDING, TRACK_CRED_PENDING, TRACK_GEN_MASK,
    TRACK_PENDING_EXEC, TRACK_PENDING_SECCOMP, TRACK_SLOT_MASK, TargetCounts, TargetState,
    dropped_key,
};

use super::Probe;

impl Probe {
    /// Starts target `slot` with its first thread group. `pending_exec`: count nothing until
    /// the process calls execve (a child we forked and hold until it is registered).
    pub(crate) fn start_target(
        &mut self,
        slot: u32,
        tgid: u32,
        pending_exec: bool,
    ) -> anyhow::Result<()> {
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
                    first_tgid: tgid,
                    threads: 1,
                    threads_peak: 1,
                    live_peak: 1,
                    ..TargetState::default()
                },
                0,
            )
            .context("initialising the target")?;
        self.track(slot, tgid, pending_exec)
    }

    /// Starts target `slot` for a container's mount namespace: every process that enters it
    /// from now on is followed. Running processes are added with [`Probe::attach_process`].
    pub(crate) fn start_container_target(
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
    pub(crate) fn start_attached_target(
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
            flags: TARGET_ACTIVE,
            mntns,
            first_tgid,
            ..TargetState::default()
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
    pub(crate) fn attach_process(&mut self, slot: u32, tgid: u32) -> anyhow::Result<()> {
        self.attach_with(slot, tgid, 0)
    }

    /// [`Probe::attach_process`] for a process that is entering a container (a runtime between
    /// `setns` and its seccomp install): counted from its seccomp install or its next execve,
    /// as the kernel side does for such a process it sees forked.
    pub(crate) fn attach_entering_process(&mut self, slot: u32, tgid: u32) -> anyhow::Result<()> {
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
        self.set_tracking(
            tgid,
            (slot + 1) | TRACK_ATTACHED | TRACK_CRED_PENDING | flags,
        )?;
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
    pub(crate) fn target_alive(&mut self, slot: u32) -> anyhow::Result<bool> {
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
    pub(crate) fn processes_seen(&self, slot: u32) -> anyhow::Result<u64> {
        let attached = self.attached.get(&slot).map_or(0, |s| s.len() as u64);
        Ok(self.target(slot)?.processes_seen + attached)
    }

    fn track(&mut self, slot: u32, tgid: u32, pending_exec: bool) -> anyhow::Result<()> {
        anyhow::ensure!(
            tgid < self.pid_max,
            "pid {tgid} beyond pid_max {}",
            self.pid_max
        );
        // Its ids are recorded at its first counted syscall; a command not yet exec'd gets
        // them at its execve (the kernel side's exec sets the flag), not as cinch's child.
        let mut value = slot + 1;
        if pending_exec {
            value |= TRACK_PENDING_EXEC;
        } else {
            value |= TRACK_CRED_PENDING;
        }
        self.set_tracking(tgid, value)
    }

    /// Tracks a thread group, then bumps the tracer's epoch: a CPU that remembers one of its
    /// threads as untracked (`UNTRACKED` on the kernel side) asks again at its next syscall.
    fn set_tracking(&mut self, tgid: u32, value: u32) -> anyhow::Result<()> {
        self.task_target
            .set(tgid, value, 0)
            .with_context(|| format!("tracking pid {tgid}"))?;
        self.tracer_epoch += 1;
        self.track_epoch
            .set(0, self.tracer_epoch, 0)
            .context("bumping the tracking epoch")
    }
}

impl Probe {
    /// Gives a finished watch-mode target's slot back to the kernel side, cleared, so that the
    /// next new container can have it: its mount namespace is forgotten, and its counters, the
    /// keys it holds in every shared map and what userspace kept for it are dropped. Only for
    /// a target with no process left (`live == 0`) whose data was already read: a process still
    /// counted in the slot would mix into the next container's recording.
    pub(crate) fn release(&mut self, slot: u32) -> anyhow::Result<()> {
        anyhow::ensure!(
            slot < self.slots,
            "target slot {slot} beyond {}",
            self.slots
        );
        let state = self.target(slot)?;
        anyhow::ensure!(
            state.live == 0,
            "target slot {slot} still has {} processes",
            state.live
        );
        self.clear(slot, &state)
    }

    /// Gives up a watch-mode target whose processes may still run (a pod's sandbox, a
    /// container the agent does not record, a namespace that is no container) and gives its
    /// slot back, cleared, as [`Probe::release`] does. Its mount namespace starts no target
    /// again (`DROPPED_MNTNS`), then no longer names the slot, then the slot's generation is
    /// bumped (`SLOT_GEN`): the kernel side reads its processes' cells as untracked from then
    /// on, and their exits as none of the next target's. In that order, so that no process of
    /// the namespace joins the slot under its next generation.
    pub(crate) fn give_up(&mut self, slot: u32) -> anyhow::Result<()> {
        anyhow::ensure!(
            slot < self.slots,
            "target slot {slot} beyond {}",
            self.slots
        );
        let state = self.target(slot)?;
        if state.mntns != 0 {
            self.dropped_mntns
                .insert(dropped_key(state.mntns, state.mntns_id), 1, 0)
                .context("marking the mount namespace given up")?;
            if self.mntns_slot.get(&state.mntns, 0).ok() == Some(slot) {
                let _ = self.mntns_slot.remove(&state.mntns);
            }
        }
        let generation = self
            .slot_gen
            .get(&slot, 0)
            .context("reading the slot's generation")?;
        self.slot_gen
            .set(slot, generation.wrapping_add(1) & TRACK_GEN_MASK, 0)
            .context("bumping the slot's generation")?;
        self.clear(slot, &state)
    }

    /// Clears slot `slot` (whose target was `state`) and gives it back to the kernel side.
    fn clear(&mut self, slot: u32, state: &TargetState) -> anyhow::Result<()> {
        // The kernel side forgets the namespace when the last process exits (its number may
        // already name a new container's namespace and slot): only a leftover of this slot's.
        if state.mntns != 0 && self.mntns_slot.get(&state.mntns, 0).ok() == Some(slot) {
            let _ = self.mntns_slot.remove(&state.mntns);
        }
        self.targets
            .set(slot, TargetState::default(), 0)
            .context("clearing the target")?;
        let zero = TargetCounts {
            counts: [0; cinch_common::CELLS_PER_TARGET as usize],
        };
        let cpus = aya::util::nr_cpus().map_err(|(_, e)| e)?;
        self.counts
            .set(
                slot,
                aya::maps::PerCpuValues::try_from(vec![zero; cpus])?,
                0,
            )
            .context("clearing the syscall counts")?;
        let words = cinch_common::CELLS_PER_TARGET / 64;
        for word in slot * words..(slot + 1) * words {
            self.seen
                .set(word, 0, 0)
                .context("clearing the seen bits")?;
            self.arg_lost
                .set(word, 0, 0)
                .context("clearing the lost-argument bits")?;
        }
        remove_slot_keys(&mut self.arg_values, slot, |k| k.slot)?;
        remove_slot_keys(&mut self.cap_checks, slot, |k| k.slot)?;
        remove_slot_keys(&mut self.priv_execs, slot, |k| k.slot)?;
        remove_slot_keys(&mut self.creds, slot, |k| k.slot)?;
        remove_slot_keys(&mut self.nets, slot, |k| k.slot)?;
        remove_slot_keys(&mut self.read_seen, slot, |k| k.slot)?;
        self.attached.remove(&slot);
        self.witness.remove(&slot);
        self.arg_comms.retain(|&(s, ..), _| s != slot);
        self.files.forget(slot);
        self.free_slots
            .push(slot, 0)
            .context("giving the target slot back")
    }
}

/// Deletes every key of `map` that belongs to `slot`. Keys are collected first: deleting while
/// iterating a BPF hash restarts the walk.
fn remove_slot_keys<K: aya::Pod, V: aya::Pod>(
    map: &mut aya::maps::HashMap<aya::maps::MapData, K, V>,
    slot: u32,
    slot_of: impl Fn(&K) -> u32,
) -> anyhow::Result<()> {
    let keys: Vec<K> = map
        .keys()
        .filter_map(Result::ok)
        .filter(|k| slot_of(k) == slot)
        .collect();
    for key in keys {
        // A key the kernel dropped meanwhile (an LRU map) is gone either way.
        let _ = map.remove(&key);
    }
    Ok(())
}
