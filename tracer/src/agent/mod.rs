//! `cinch agent`: the node agent. It watches for new containers as `record --new-containers`
//! does ([`crate::capture::Watcher`]), keeps the pods' containers the selection wants, writes
//! each container run's recording when it exits, and keeps one SPO `SeccompProfile` (and a
//! ConfigMap of capability settings) per owner and container, merged from every run
//! ([`store`]). Slots are given back as containers exit, so the agent records any number of
//! containers over its life, and as many at once as it has slots.
//!
//! SIGTERM (or SIGINT) ends it cleanly: the containers still running are recorded up to that
//! moment, everything is written, and it exits 0.

mod metrics;
mod store;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use profile_gen::Recording;

use crate::capture::{Finished, Flow, Status, Watcher, poll, watch_config};
use crate::containers::Container;
use crate::kubernetes::{PodContainer, Selector};
use crate::probe::{Probe, Stats};
use crate::signals;

pub(crate) use metrics::{Ignored, Metrics};
use store::{Group, Store};

/// A profile is written again at most this often while its containers come and go.
const REGENERATE_EVERY: Duration = Duration::from_secs(2);
/// How often the shared counters are refreshed from the kernel side.
const METRICS_EVERY: Duration = Duration::from_secs(1);

/// How the agent runs.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub output: std::path::PathBuf,
    pub selector: Selector,
    pub listen: std::net::SocketAddr,
    pub node: String,
    pub slots: u32,
}

/// What the loop keeps between ticks.
struct Agent {
    store: Store,
    selector: Selector,
    node: String,
    /// Profiles to write again, and when profiles were last written.
    dirty: BTreeSet<Group>,
    written: Option<Instant>,
    profiles: BTreeSet<Group>,
    shared: metrics::Handle,
}

/// Runs until SIGTERM or SIGINT.
pub(crate) fn run(opts: Options) -> anyhow::Result<()> {
    signals::install().context("installing signal handlers")?;
    // In this order, so that a refusal leaves nothing behind: the address, the probe, then
    // the directory.
    let listener = metrics::bind(opts.listen)?;
    let mut config = watch_config();
    config.slots = opts.slots;
    let mut probe = Probe::load(&config)?;
    profile_gen::files::create_dir_all_for_user(&opts.output).map_err(|e| {
        crate::error::input(format!(
            "cannot create {}: {}",
            opts.output.display(),
            profile_gen::files::io_message(&e)
        ))
    })?;
    let shared = Arc::new(Mutex::new(metrics::Shared {
        metrics: Metrics {
            slots: u64::from(opts.slots),
            ..Metrics::default()
        },
        alive: Instant::now(),
    }));
    let addr = metrics::serve(listener, Arc::clone(&shared))?;
    let store = Store::new(opts.output.clone(), opts.node.clone());
    let profiles = store.groups();
    tracing::warn!(
        node = %opts.node,
        output = %opts.output.display(),
        %addr,
        slots = opts.slots,
        profiles = profiles.len(),
        "agent recording new pod containers"
    );
    let mut agent = Agent {
        store,
        selector: opts.selector,
        node: opts.node,
        dirty: BTreeSet::new(),
        written: None,
        profiles,
        shared,
    };
    crate::ready::signal();
    let selector = agent.selector.clone();
    let mut watcher = Watcher::new(move |c| ignored(&selector, c).is_none());
    let mut status = Status::new(true);
    let mut refreshed: Option<Instant> = None;
    poll(&mut probe, &mut status, |probe, events| {
        watcher.started(probe, events)?;
        for f in watcher.reap(probe)? {
            agent.take(f);
        }
        if agent
            .written
            .is_none_or(|t| t.elapsed() >= REGENERATE_EVERY)
        {
            agent.write_profiles();
        }
        if refreshed.is_none_or(|t| t.elapsed() >= METRICS_EVERY) {
            refreshed = Some(Instant::now());
            agent.refresh(watcher.active(), &probe.stats()?);
        }
        Ok(if signals::received().is_some() {
            Flow::Stop
        } else {
            Flow::Continue
        })
    })?;
    let running = watcher.finish_all(&mut probe)?;
    tracing::warn!(
        running = running.len(),
        "stopping: recording the containers still running up to now"
    );
    for f in running {
        agent.take(f);
    }
    agent.write_profiles();
    agent.refresh(0, &probe.stats()?);
    Ok(())
}

/// Why the agent does not record a container, if it does not: it is no pod's (or it is a
/// pod's sandbox), or its pod is not selected.
fn ignored(selector: &Selector, container: &Container) -> Option<Ignored> {
    let Some(pod) = PodContainer::from_labels(&container.labels) else {
        return Some(Ignored::NotKubernetes);
    };
    (!selector.matches(&pod, &container.labels, &container.pod_annotations))
        .then_some(Ignored::NotSelected)
}

impl Agent {
    fn metrics(&self) -> std::sync::MutexGuard<'_, metrics::Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn ignore(&self, why: Ignored) {
        *self.metrics().metrics.ignored.entry(why).or_default() += 1;
    }

    /// Keeps a finished container's recording if its pod is selected.
    fn take(&mut self, finished: Finished) {
        match finished {
            Finished::Recorded(container, recording) => self.keep(&container, *recording),
            Finished::NeverStarted(_) => self.ignore(Ignored::NeverStarted),
            Finished::NotContainer => self.ignore(Ignored::NotContainer),
            Finished::GivenUp(container) => {
                self.ignore(ignored(&self.selector, &container).unwrap_or(Ignored::NotSelected));
            }
        }
    }

    fn keep(&mut self, container: &Container, mut recording: Recording) {
        if let Some(why) = ignored(&self.selector, container) {
            return self.ignore(why);
        }
        let Some(pod) = PodContainer::from_labels(&container.labels) else {
            return self.ignore(Ignored::NotKubernetes);
        };
        if recording.syscall_entries() == 0 {
            return self.ignore(Ignored::Empty);
        }
        recording.host.node = Some(self.node.clone());
        let group = Group::of(&pod);
        match self.store.save(&group, &container.id, &recording) {
            Ok(path) => {
                tracing::info!(
                    namespace = %pod.namespace,
                    pod = %pod.pod,
                    container = %pod.container,
                    owner_kind = pod.owner_kind,
                    owner = %pod.owner,
                    recording = %path.display(),
                    "recorded"
                );
                let mut shared = self.metrics();
                let m = &mut shared.metrics;
                m.recordings += 1;
                m.processes += recording.processes_seen;
                m.syscalls += recording
                    .syscalls
                    .values()
                    .flatten()
                    .map(|s| s.count)
                    .sum::<u64>();
                drop(shared);
                self.dirty.insert(group);
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), container = %container.id, "cannot write the recording");
                self.metrics().metrics.errors += 1;
            }
        }
    }

    /// Writes the profiles of the groups that got recordings.
    fn write_profiles(&mut self) {
        self.written = Some(Instant::now());
        for group in std::mem::take(&mut self.dirty) {
            match self.store.write_profile(&group) {
                Ok(path) => {
                    tracing::info!(profile = %path.display(), "profile written");
                    self.profiles.insert(group);
                }
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), profile = %group.profile_name(), "cannot write the profile");
                    self.metrics().metrics.errors += 1;
                }
            }
        }
    }

    /// Refreshes the gauges and the kernel side's counters, and says the loop is alive.
    fn refresh(&self, targets: usize, stats: &Stats) {
        let profiles = self.profiles.len() as u64;
        let mut shared = self.metrics();
        shared.alive = Instant::now();
        let m = &mut shared.metrics;
        m.targets = targets as u64;
        m.profiles = profiles;
        m.slots_exhausted = stats.slots_exhausted;
        m.lost = [
            ("syscalls", stats.syscall_out_of_range + stats.counter_miss),
            ("processes", stats.track_miss),
            ("events", stats.ring_drop),
            ("capability_checks", stats.cap_miss),
            ("arguments", stats.arg_miss),
            ("writes", stats.path_drop),
            ("reads", stats.read_drop),
            ("credentials", stats.cred_miss),
            ("addresses", stats.net_miss),
        ]
        .into_iter()
        .collect();
    }
}
