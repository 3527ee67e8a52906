//! `cargo xtask soak --agent --minutes N`: `cinch agent` on a node where pod containers come and
//! go for N minutes ([`crate::node`]), with the agent watched from outside every few seconds:
//!
//! - its resident memory (VmRSS) must stay flat once warmed up, as for `cinch record` (the same
//!   rule: [`crate::soak::check_memory`]);
//! - nothing is lost: every pod container started is exactly one recording on disk, counted in
//!   `/metrics`; every container outside a pod is counted as ignored; no slot was ever missing
//!   (`--slots` is small, so slots must be given back), no error, no kernel-side loss;
//! - every profile says how many recordings it was merged from, and that is the number on disk.
//!
//! SIGTERM ends the agent, which must exit 0.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::node::{self, Node, POD_NAMESPACE};
use crate::soak::{Guarded, Report, Sample, check_memory, vm_rss_kib};
use crate::util::{show, target_dir};

const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// Few slots, so that a slot not given back shows within seconds.
const SLOTS: &str = "4";

/// Runs the agent soak for `duration` with the cinch binary `cinch`. Err when it could not run
/// at all; a run that found problems is Ok with `failures`.
pub(crate) fn soak_agent(cinch: &Path, duration: Duration) -> anyhow::Result<Report> {
    let dir = target_dir()?.join("soak-agent");
    let mut node = Node::start(&dir)?;
    let out = dir.join("out");
    let _ = std::fs::remove_dir_all(&out);

    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut cmd = Command::new(cinch);
    cmd.args(["agent", "--output"])
        .arg(&out)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--node", "soak"])
        .args(["--slots", SLOTS])
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    println!("==> {}", show(&cmd));
    let mut agent = Guarded(
        cmd.spawn()
            .with_context(|| format!("starting `{}`", show(&cmd)))?,
    );
    let pid = agent.0.id();
    let ready_by = Instant::now() + Duration::from_secs(60);
    while node::metrics(port).is_err() {
        if Instant::now() > ready_by || agent.0.try_wait()?.is_some() {
            bail!("the agent did not answer on 127.0.0.1:{port}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    // As many long containers of no pod as the agent has slots, started after it: each must be
    // given up (its slot handed on) while it runs, or no pod container would find a slot.
    let busy = SLOTS.parse::<usize>()?;
    node.start_busy(busy)?;

    let started = Instant::now();
    let mut samples = Vec::new();
    let mut next_sample = Duration::ZERO;
    let (mut pod_runs, mut other_runs, mut failed_runs) = (BTreeMap::new(), 0u64, 0u64);
    let mut failures = Vec::new();
    let mut i = 0usize;
    while started.elapsed() < duration {
        if started.elapsed() >= next_sample {
            next_sample += SAMPLE_EVERY;
            if let Some(rss_kib) = vm_rss_kib(pid) {
                let s = Sample {
                    at: started.elapsed(),
                    rss_kib,
                    tracked: 0,
                    live: 0,
                };
                println!(
                    "soak-agent {:>4}s  agent VmRSS {:>6} KiB  pod containers {:>5}",
                    s.at.as_secs(),
                    s.rss_kib,
                    pod_runs.values().sum::<u64>()
                );
                samples.push(s);
            }
        }
        if agent.0.try_wait()?.is_some() {
            failures.push("the agent exited during the soak".to_owned());
            break;
        }
        i += 1;
        // Every fifth container is no pod's: the agent must ignore it, and count it.
        let ran = if i.is_multiple_of(5) {
            let ok = node.run_other();
            other_runs += u64::from(ok);
            ok
        } else {
            let pod = i % node.pods.len();
            let ok = node.run_pod(pod);
            if ok {
                let p = &node.pods[pod];
                *pod_runs.entry((p.owner, p.container)).or_insert(0u64) += 1;
            }
            ok
        };
        failed_runs += u64::from(!ran);
    }
    // The last containers reaped, then SIGTERM.
    std::thread::sleep(Duration::from_secs(3));
    let seen = node::metrics(port).unwrap_or_default();
    // SAFETY: kill(2) on the agent, our child, which has not been reaped yet.
    let _ = unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let stop_by = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = agent.0.try_wait()? {
            break Some(st);
        }
        if Instant::now() > stop_by {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    drop(node);

    let mut lines = Vec::new();
    match status {
        Some(st) if st.success() => {}
        Some(st) => failures.push(format!("the agent exited with {st} on SIGTERM")),
        None => failures.push("the agent did not stop within 60 s of SIGTERM".to_owned()),
    }
    check_memory(duration, &samples, &mut lines, &mut failures);
    let pods_total: u64 = pod_runs.values().sum();
    lines.push(format!(
        "containers: {pods_total} of pods, {other_runs} of none, {failed_runs} that ctr could not run; {} s",
        started.elapsed().as_secs()
    ));
    if failed_runs * 100 > pods_total + other_runs {
        failures.push(format!("ctr could not run {failed_runs} containers"));
    }
    let metric = |k: &str| seen.get(k).copied().unwrap_or(0);
    let expect = [
        ("cinch_agent_recordings_total", pods_total),
        (
            "cinch_agent_containers_ignored_total{reason=\"not_kubernetes\"}",
            other_runs + busy as u64,
        ),
        ("cinch_agent_slots_exhausted_total", 0),
        ("cinch_agent_errors_total", 0),
        ("cinch_agent_targets", 0),
    ];
    for (k, want) in expect {
        lines.push(format!("{k} = {} (expected {want})", metric(k)));
        if metric(k) != want {
            failures.push(format!("{k} is {}, expected {want}", metric(k)));
        }
    }
    for (k, v) in seen
        .iter()
        .filter(|(k, _)| k.starts_with("cinch_agent_containers_ignored_total"))
    {
        lines.push(format!("{k} = {v}"));
    }
    for (k, v) in seen
        .iter()
        .filter(|(k, _)| k.starts_with("cinch_agent_lost_total"))
    {
        if *v != 0 {
            failures.push(format!("{k} is {v}"));
        }
    }
    // What the given-up containers went on doing is in no recording.
    let leaked = recordings_with(&out.join("recordings"), "\"sysinfo\"");
    if !leaked.is_empty() {
        failures.push(format!(
            "{} recordings have the long containers' sysinfo: {}",
            leaked.len(),
            leaked[0].display()
        ));
    }
    for ((owner, container), runs) in &pod_runs {
        let recs = out.join(format!("recordings/{POD_NAMESPACE}/{owner}/{container}"));
        let on_disk = std::fs::read_dir(&recs).map_or(0, |d| d.count() as u64);
        let profile = out.join(format!("profiles/{POD_NAMESPACE}/{owner}-{container}.yaml"));
        let said = std::fs::read_to_string(&profile)
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.trim().strip_prefix("cinch/recordings: "))
                    .map(|v| v.trim_matches('\'').to_owned())
            })
            .unwrap_or_default();
        lines.push(format!(
            "{owner}/{container}: {runs} runs, {on_disk} recordings, the profile says {said}"
        ));
        if on_disk != *runs || said != runs.to_string() {
            failures.push(format!(
                "{owner}/{container}: {runs} runs but {on_disk} recordings and a profile of {said}"
            ));
        }
    }
    Ok(Report {
        duration,
        lines,
        failures,
    })
}

/// The recordings under `dir` whose text has `needle`.
fn recordings_with(dir: &Path, needle: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if std::fs::read_to_string(&path).is_ok_and(|t| t.contains(needle)) {
                found.push(path);
            }
        }
    }
    found
}
