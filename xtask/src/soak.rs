//! `cargo xtask soak --minutes N`: `cinch record --container` attached for N minutes to a busy
//! container (a tight `dd bs=1` loop making hundreds of thousands of read/write syscalls a
//! second, plus a shell loop starting short-lived processes), with the tracer watched from
//! outside every few seconds:
//!
//! - its resident memory (VmRSS) must stay flat once warmed up: after the first minute (a third
//!   of the run when shorter), no sample may exceed the warm-up level by more than noise;
//! - its tracking map (`TASK_TARGET`, an array indexed by pid) must hold about as many entries as
//!   the container has processes: exited processes must leave it, or recycled pids would be
//!   attributed to the container and the map would fill;
//! - the recording must be complete: nothing lost, the syscalls the workload makes present, and
//!   a rate of at least 100,000 syscalls a second.
//!
//! The container uses the harness's test image (`cinch-test/busybox:latest`, imported from
//! Debian's busybox-static when missing, exactly as the test harness does), `--pull never`,
//! `--network none`, and the permissive recording profile. A dockerd is started when none
//! answers (`--iptables=false --bridge=none`) and stopped again at the end.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::Value;

use crate::util::{build_cinch, is_root, on_path, output, show, target_dir, workspace_root};

/// How often the tracer is sampled.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// Growth of VmRSS over the warm-up level that counts as noise.
const RSS_NOISE_KIB: u64 = 2048;
const RSS_NOISE_RATIO: f64 = 0.10;
/// Entries in the tracking map beyond the container's live processes that are tolerated
/// (processes forked or exiting between the two readings).
const TRACKED_SLACK: u64 = 64;
const MIN_RATE: f64 = 100_000.0;

/// The container's work: a syscall loop and a process churn loop, both endless.
const WORKLOAD: &str = "\
while :; do dd if=/dev/zero of=/dev/null bs=1 count=500000 2>/dev/null; done &
while :; do for i in 1 2 3 4 5 6 7 8 9 10; do /bin/true; done; /bin/sh -c 'ls / >/dev/null'; sleep 0.02; done &
wait";

#[derive(Debug, clap::Args)]
pub(crate) struct Options {
    /// How long cinch records the container.
    #[arg(long, default_value_t = 10)]
    pub minutes: u64,
    /// Soak `cinch agent` under container churn instead (`crate::soak_agent`).
    #[arg(long)]
    pub agent: bool,
}

/// One look at the tracer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    pub at: Duration,
    pub rss_kib: u64,
    pub tracked: u64,
    pub live: u64,
}

pub(crate) fn run(options: &Options) -> anyhow::Result<ExitCode> {
    if options.minutes == 0 {
        bail!("--minutes must be at least 1");
    }
    let cinch = build_cinch(true)?;
    let duration = Duration::from_secs(options.minutes * 60);
    let report = if options.agent {
        crate::soak_agent::soak_agent(&cinch, duration)?
    } else {
        soak(&cinch, duration)?
    };
    println!("{report}");
    Ok(if report.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// What a soak found; `failures` empty means it passed.
#[derive(Debug)]
pub(crate) struct Report {
    pub duration: Duration,
    pub lines: Vec<String>,
    pub failures: Vec<String>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "==> soak summary ({} s)", self.duration.as_secs())?;
        for l in &self.lines {
            writeln!(f, "    {l}")?;
        }
        for l in &self.failures {
            writeln!(f, "    FAIL {l}")?;
        }
        write!(
            f,
            "soak: {}",
            if self.failures.is_empty() {
                "passed"
            } else {
                "FAILED"
            }
        )
    }
}

/// Runs one soak of `duration` with the cinch binary `cinch`. Err when it could not run at all
/// (no root, no Docker); a run that found problems is Ok with `failures`.
pub(crate) fn soak(cinch: &Path, duration: Duration) -> anyhow::Result<Report> {
    if !is_root() {
        bail!("the soak loads BPF programs and runs containers: run it as root");
    }
    for tool in ["docker", "bpftool"] {
        if !on_path(tool) {
            bail!("{tool} is not installed (cargo xtask setup installs it)");
        }
    }
    // The test harness's daemon (started when none answers, stopped when this process exits)
    // and its busybox image.
    cinch_tests::docker::Docker::try_ensure().map_err(anyhow::Error::msg)?;
    cinch_tests::docker::try_busybox_image().map_err(anyhow::Error::msg)?;

    let out_dir = target_dir()?.join("soak");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let recording = out_dir.join("recording.json");
    let _ = std::fs::remove_file(&recording);
    let recording_profile = workspace_root().join("profiles/recording-profile.json");
    let name = format!("cinch-soak-{}", std::process::id());
    let container = Container::start(&name, &recording_profile)?;
    let init = container.init_pid()?;
    let mntns = mntns_of(init).context("reading the container's mount namespace")?;

    let mut cmd = Command::new(cinch);
    cmd.args(["record", "-q", "--container", &name, "--duration"])
        .arg(format!("{}s", duration.as_secs()))
        .arg("-o")
        .arg(&recording)
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    println!("==> {}", show(&cmd));
    let started = Instant::now();
    let mut tracer = Guarded(
        cmd.spawn()
            .with_context(|| format!("could not start `{}`", show(&cmd)))?,
    );
    let pid = tracer.0.id();

    let mut failures = Vec::new();
    let task_target = wait_for_task_target(pid, &mut tracer.0)?;
    let mut samples = Vec::new();
    let status = loop {
        if let Some(status) = tracer.0.try_wait().context("waiting for cinch")? {
            break status;
        }
        if let (Some(rss_kib), Ok(tracked)) = (vm_rss_kib(pid), count_tracked(task_target)) {
            let s = Sample {
                at: started.elapsed(),
                rss_kib,
                tracked,
                live: pids_in_mntns(mntns).len() as u64,
            };
            println!(
                "soak {:>4}s  cinch VmRSS {:>6} KiB  tracked tasks {:>4}  container processes {:>3}",
                s.at.as_secs(),
                s.rss_kib,
                s.tracked,
                s.live
            );
            samples.push(s);
        }
        if started.elapsed() > duration + Duration::from_secs(120) {
            failures.push("cinch did not stop within 2 minutes of --duration".to_owned());
            let _ = tracer.0.kill();
            break tracer.0.wait().context("waiting for cinch")?;
        }
        std::thread::sleep(SAMPLE_EVERY.min(duration / 4));
    };
    let elapsed = started.elapsed();
    drop(container);

    let mut lines = Vec::new();
    if !status.success() {
        failures.push(format!("cinch record exited with {status}"));
    }
    check_memory(duration, &samples, &mut lines, &mut failures);
    check_tracking(&samples, &mut lines, &mut failures);
    check_recording(&recording, elapsed, &mut lines, &mut failures);
    Ok(Report {
        duration,
        lines,
        failures,
    })
}

pub(crate) fn check_memory(
    duration: Duration,
    samples: &[Sample],
    lines: &mut Vec<String>,
    failures: &mut Vec<String>,
) {
    let warm_up = Duration::from_secs(60).min(duration / 3);
    let Some(first) = samples.first() else {
        failures.push("no sample of the tracer was taken".to_owned());
        return;
    };
    let Some(base) = samples.iter().find(|s| s.at >= warm_up) else {
        failures.push(format!(
            "no sample after the {} s warm-up",
            warm_up.as_secs()
        ));
        return;
    };
    let last = samples.last().unwrap_or(base);
    let after: Vec<&Sample> = samples.iter().filter(|s| s.at >= base.at).collect();
    let max = after
        .iter()
        .map(|s| s.rss_kib)
        .max()
        .unwrap_or(base.rss_kib);
    let limit = base.rss_kib + RSS_NOISE_KIB.max((base.rss_kib as f64 * RSS_NOISE_RATIO) as u64);
    lines.push(format!(
        "cinch VmRSS: {} KiB at {} s, {} KiB at {} s (warm), {} KiB at the end ({} s), max after warm-up {} KiB (limit {} KiB)",
        first.rss_kib,
        first.at.as_secs(),
        base.rss_kib,
        base.at.as_secs(),
        last.rss_kib,
        last.at.as_secs(),
        max,
        limit
    ));
    if max > limit {
        failures.push(format!(
            "cinch's memory grew after warming up: {} KiB at {} s, up to {max} KiB later",
            base.rss_kib,
            base.at.as_secs()
        ));
    }
}

fn check_tracking(samples: &[Sample], lines: &mut Vec<String>, failures: &mut Vec<String>) {
    let max_tracked = samples.iter().map(|s| s.tracked).max().unwrap_or(0);
    let max_live = samples.iter().map(|s| s.live).max().unwrap_or(0);
    lines.push(format!(
        "tracked tasks: max {max_tracked} (container processes: max {max_live}) over {} samples",
        samples.len()
    ));
    for s in samples {
        if s.tracked > s.live + TRACKED_SLACK {
            failures.push(format!(
                "at {} s the tracking map held {} entries for {} container processes: exited processes are kept",
                s.at.as_secs(),
                s.tracked,
                s.live
            ));
            break;
        }
    }
}

fn check_recording(
    path: &Path,
    elapsed: Duration,
    lines: &mut Vec<String>,
    failures: &mut Vec<String>,
) {
    let rec: Value = match std::fs::read(path)
        .map_err(anyhow::Error::from)
        .and_then(|b| serde_json::from_slice(&b).map_err(anyhow::Error::from))
    {
        Ok(v) => v,
        Err(e) => {
            failures.push(format!("no readable recording at {}: {e}", path.display()));
            return;
        }
    };
    let mut names = BTreeSet::new();
    let mut total: u64 = 0;
    for calls in rec["syscalls"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
    {
        for c in calls.as_array().into_iter().flatten() {
            total += c["count"].as_u64().unwrap_or(0);
            if let Some(n) = c["name"].as_str() {
                names.insert(n.to_owned());
            }
        }
    }
    let rate = total as f64 / elapsed.as_secs_f64();
    let processes = rec["processes_seen"].as_u64().unwrap_or(0);
    let lost = &rec["lost"];
    lines.push(format!(
        "recording: {total} syscalls ({rate:.0}/s), {} distinct, {processes} processes, lost {lost}",
        names.len()
    ));
    for field in ["syscalls", "map_full"] {
        if lost[field].as_u64() != Some(0) {
            failures.push(format!("lost.{field} is {} (must be 0)", lost[field]));
        }
    }
    if rate < MIN_RATE {
        failures.push(format!(
            "the container made {rate:.0} syscalls/s, below the {MIN_RATE:.0}/s the soak needs"
        ));
    }
    for needed in [
        "read",
        "write",
        "execve",
        "wait4",
        "exit_group",
        "getdents64",
    ] {
        if !names.contains(needed) {
            failures.push(format!("{needed} is missing from the recording"));
        }
    }
    if !["fork", "vfork", "clone", "clone3"]
        .iter()
        .any(|n| names.contains(*n))
    {
        failures.push("no fork/vfork/clone in the recording".to_owned());
    }
    let minimum = (elapsed.as_secs() * 50).max(100);
    if processes < minimum {
        failures.push(format!(
            "only {processes} processes seen; the churn loop should start at least {minimum}"
        ));
    }
}

/// Kills and reaps cinch if the soak stops early.
pub(crate) struct Guarded(pub Child);

impl Drop for Guarded {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The id of cinch's `TASK_TARGET` map, once cinch has loaded its programs.
fn wait_for_task_target(pid: u32, tracer: &mut Child) -> anyhow::Result<u32> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = tracer.try_wait()? {
            bail!("cinch record exited ({status}) before it loaded its programs");
        }
        for id in map_ids_of(pid) {
            let out =
                output(Command::new("bpftool").args(["-j", "map", "show", "id", &id.to_string()]))?;
            let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
            if v["name"].as_str() == Some("TASK_TARGET") {
                return Ok(id);
            }
        }
        if Instant::now() > deadline {
            bail!("cinch (pid {pid}) has no TASK_TARGET map after 30 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// BPF maps a process holds, from the `map_id:` lines of its file descriptors' fdinfo.
fn map_ids_of(pid: u32) -> BTreeSet<u32> {
    let dir = format!("/proc/{pid}/fdinfo");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return BTreeSet::new();
    };
    entries
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("map_id:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .collect()
}

/// Non-zero entries of the tracking map: processes cinch follows.
fn count_tracked(map_id: u32) -> anyhow::Result<u64> {
    let out =
        output(Command::new("bpftool").args(["-j", "map", "dump", "id", &map_id.to_string()]))?;
    if !out.status.success() {
        bail!("bpftool map dump id {map_id} failed");
    }
    let v: Value = serde_json::from_slice(&out.stdout).context("parsing bpftool's map dump")?;
    let entries = v.as_array().context("bpftool's map dump is not a list")?;
    Ok(entries.iter().filter(|e| non_zero(&e["value"])).count() as u64)
}

/// A map value as bpftool prints it: a number (with BTF) or a list of hex bytes (without).
fn non_zero(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.as_u64() != Some(0),
        Value::Array(bytes) => bytes.iter().any(|b| match b {
            Value::String(s) => u8::from_str_radix(s.trim_start_matches("0x"), 16) != Ok(0),
            other => non_zero(other),
        }),
        Value::Object(m) => m.values().any(non_zero),
        _ => false,
    }
}

pub(crate) fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn mntns_of(pid: u32) -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt as _;
    Ok(std::fs::metadata(format!("/proc/{pid}/ns/mnt"))?.ino())
}

fn pids_in_mntns(inum: u64) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .filter(|&p| mntns_of(p).ok() == Some(inum))
        .collect()
}

/// The soak's container, removed on drop.
struct Container {
    name: String,
}

impl Container {
    fn start(name: &str, seccomp: &Path) -> anyhow::Result<Container> {
        let mut cmd = Command::new("docker");
        cmd.args(["run", "-d", "--rm", "--pull", "never", "--network", "none"])
            .arg("--security-opt")
            .arg(format!("seccomp={}", seccomp.display()))
            .args([
                "--name",
                name,
                cinch_tests::docker::BUSYBOX_IMAGE,
                "sh",
                "-c",
                WORKLOAD,
            ]);
        let out = output(&mut cmd)?;
        if !out.status.success() {
            bail!(
                "`{}` failed: {}",
                show(&cmd),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(Container {
            name: name.to_owned(),
        })
    }

    fn init_pid(&self) -> anyhow::Result<u32> {
        let out = output(Command::new("docker").args([
            "inspect",
            "--format",
            "{{.State.Pid}}",
            &self.name,
        ]))?;
        let text = String::from_utf8_lossy(&out.stdout);
        match text.trim().parse::<u32>() {
            Ok(p) if p > 0 => Ok(p),
            _ => bail!("container {} is not running ({})", self.name, text.trim()),
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_values_in_both_bpftool_shapes() {
        let btf: Value =
            serde_json::from_str(r#"[{"key":0,"value":0},{"key":1,"value":3}]"#).expect("json");
        let n = btf
            .as_array()
            .expect("list")
            .iter()
            .filter(|e| non_zero(&e["value"]))
            .count();
        assert_eq!(n, 1);
        let raw: Value = serde_json::from_str(
            r#"[{"key":["0x00"],"value":["0x00","0x00","0x00","0x00"]},{"key":["0x01"],"value":["0x01","0x00","0x00","0x80"]}]"#,
        )
        .expect("json");
        let n = raw
            .as_array()
            .expect("list")
            .iter()
            .filter(|e| non_zero(&e["value"]))
            .count();
        assert_eq!(n, 1);
    }
}
