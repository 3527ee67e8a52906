//! The probe's own run time, as the kernel measures it: with BPF run-time statistics on
//! (BPF_ENABLE_STATS; off again when the bench closes the descriptor), each program's
//! `run_time_ns / run_cnt` while the getppid loop runs; for cinch, its sys_enter and sys_exit
//! programs together per syscall (both run for every syscall on the machine). The figure includes the statistics'
//! own clock reads, which an empty program (the floor) shows; cinch's program minus the empty
//! one is the cost of its body, untraced (the filter says "not a target") and traced (filter,
//! architecture, count), and traced with 1 and with many `--new-containers` targets (scale).
//! This is far steadier than timing a loop on a busy machine.
//!
//! While this section runs, every BPF program on the machine is timed, which costs each run a
//! few tens of nanoseconds: it runs last but for enforcement, and lasts a few seconds.

use std::io::Write as _;
use std::os::fd::{FromRawFd as _, OwnedFd};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use super::Bench;
use super::proc::{Running, wait_for_text};
use super::stats::Samples;
use super::tracers::{Floor, Untraced};
use crate::util::output;

/// BPF_ENABLE_STATS (include/uapi/linux/bpf.h, enum bpf_cmd).
const BPF_ENABLE_STATS: libc::c_long = 32;
const LIMIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Default)]
pub(super) struct ProbeTime {
    /// ns per run of each program.
    pub floor: Samples,
    pub untraced: Samples,
    /// Untraced while `cinch agent` runs (watch mode: what every process on a node pays).
    pub untraced_agent: Samples,
    pub traced: Samples,
    /// Traced, the loop as the only `--new-containers` target.
    pub traced_one: Samples,
    /// Traced, with `targets` `--new-containers` targets.
    pub traced_many: Samples,
    pub targets: usize,
}

impl ProbeTime {
    pub(super) fn body(&self, s: &Samples) -> Option<f64> {
        Some(s.median()? - self.floor.median()?)
    }

    /// The program's run time with many targets over with one (medians).
    pub(super) fn scale_ratio(&self) -> Option<f64> {
        Some(self.traced_many.median()? / self.traced_one.median()?)
    }

    pub(super) fn to_json(&self) -> Value {
        json!({
            "unit": "ns per syscall of the programs on sys_enter and sys_exit (kernel BPF statistics, incl. their clock reads)",
            "empty_program_floor": self.floor.to_json(),
            "cinch_untraced_process": self.untraced.to_json(),
            "cinch_agent_untraced_process": self.untraced_agent.to_json(),
            "cinch_traced_process": self.traced.to_json(),
            "untraced_body_over_empty_median": self.body(&self.untraced).map(super::stats::round2),
            "agent_untraced_body_over_empty_median": self.body(&self.untraced_agent).map(super::stats::round2),
            "traced_body_over_empty_median": self.body(&self.traced).map(super::stats::round2),
            "new_containers_1_target": self.traced_one.to_json(),
            "new_containers_many_targets": self.traced_many.to_json(),
            "new_containers_targets": self.targets,
            "ratio_many_over_one_median": self.scale_ratio().map(super::stats::round2),
        })
    }
}

/// Statistics stay on while this lives.
struct StatsOn(#[expect(dead_code, reason = "held only to keep statistics on")] OwnedFd);

fn stats_on() -> anyhow::Result<StatsOn> {
    // union bpf_attr, enable_stats: { __u32 type; } with BPF_STATS_RUN_TIME = 0.
    let attr = [0u32; 4];
    // SAFETY: a valid pointer to 16 zeroed bytes, the size passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_ENABLE_STATS,
            attr.as_ptr(),
            size_of_val(&attr),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("enabling BPF run-time statistics");
    }
    // SAFETY: the kernel just returned this descriptor to us.
    Ok(StatsOn(unsafe { OwnedFd::from_raw_fd(fd as i32) }))
}

/// The ids of the programs `pid` holds on sys_enter and sys_exit, sys_enter's first: each
/// runs once per syscall, so together they are what a syscall pays. Err until one is on
/// sys_enter.
fn syscall_progs(pid: u32) -> anyhow::Result<Vec<u64>> {
    let out = output(Command::new("bpftool").args(["-j", "perf", "list"]))?;
    let entries: Value = serde_json::from_slice(&out.stdout).context("parsing bpftool output")?;
    let held = |tracepoint: &str| -> Vec<u64> {
        entries
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| {
                e["pid"].as_u64() == Some(u64::from(pid))
                    && e["tracepoint"].as_str() == Some(tracepoint)
            })
            .filter_map(|e| e["prog_id"].as_u64())
            .collect()
    };
    let mut progs = held("sys_enter");
    if progs.is_empty() {
        bail!("process {pid} holds no sys_enter program");
    }
    progs.extend(held("sys_exit"));
    Ok(progs)
}

/// (run_time_ns summed, run_cnt of the first) of programs that run once per syscall each.
fn run_stats(progs: &[u64]) -> anyhow::Result<(u64, u64)> {
    let mut total = (0, 0);
    for (i, prog) in progs.iter().enumerate() {
        let out =
            output(Command::new("bpftool").args(["-j", "prog", "show", "id", &prog.to_string()]))?;
        let v: Value = serde_json::from_slice(&out.stdout).context("parsing bpftool output")?;
        total.0 += v["run_time_ns"].as_u64().unwrap_or(0);
        if i == 0 {
            total.1 = v["run_cnt"].as_u64().unwrap_or(0);
        }
    }
    Ok(total)
}

fn per_run(before: (u64, u64), after: (u64, u64)) -> anyhow::Result<f64> {
    let runs = after.1.saturating_sub(before.1);
    if runs == 0 {
        bail!("the program did not run (are BPF statistics on?)");
    }
    Ok(after.0.saturating_sub(before.0) as f64 / runs as f64)
}

fn run_loop(b: &Bench, n: u64, tag: &str) -> anyhow::Result<()> {
    let mut cmd = Command::new(&b.loops);
    cmd.args(["getppid", &n.to_string()]);
    Running::spawn_logged(
        &mut cmd,
        &b.tmp.join(format!("{tag}.out")),
        &b.tmp.join(format!("{tag}.err")),
    )?
    .wait_ok(LIMIT)?;
    Ok(())
}

/// `idle`: idle targets next to the measured one for the many-targets case (as in the scale
/// section).
pub(super) fn run(b: &mut Bench, idle: usize) -> anyhow::Result<ProbeTime> {
    let n = super::workloads::Workload::Getppid.iterations(false, b.quick);
    let _on = stats_on()?;
    let mut r = ProbeTime {
        targets: idle + 1,
        ..ProbeTime::default()
    };
    for round in 0..b.rounds.min(5) {
        println!(
            "==> bench: probe run time (BPF statistics), round {}/{}",
            round + 1,
            b.rounds.min(5)
        );
        let floor = Floor::attach(b, "probe-time")?;
        let progs = syscall_progs(floor.pid())?;
        let before = run_stats(&progs)?;
        run_loop(b, n, "probe-time-floor")?;
        let f = per_run(before, run_stats(&progs)?)?;
        floor.detach()?;
        r.floor.push(f);

        let untraced = Untraced::attach(b, "probe-time")?;
        let progs = syscall_progs(untraced.pid())?;
        let before = run_stats(&progs)?;
        run_loop(b, n, "probe-time-untraced")?;
        let u = per_run(before, run_stats(&progs)?)?;
        untraced.max_rss_kib()?;
        r.untraced.push(u);

        let a = untraced_under_agent(b, n)?;
        r.untraced_agent.push(a);

        let t = traced(b, &record_command(b), None, n, "probe-time-traced")?;
        r.traced.push(t);
        let one = traced(b, &new_containers_command(b, 0), None, n, "probe-time-one")?;
        r.traced_one.push(one);
        let many = traced(
            b,
            &new_containers_command(b, idle),
            Some((ready_file(b, idle), idle)),
            n,
            "probe-time-many",
        )?;
        r.traced_many.push(many);
        println!(
            "    empty {f:.1}, cinch untraced {u:.1} (+{:.1}), under the agent {a:.1} (+{:.1}), traced {t:.1} (+{:.1}); --new-containers 1 target {one:.1}, {} targets {many:.1} ns per run",
            u - f,
            a - f,
            t - f,
            idle + 1
        );
    }
    Ok(r)
}

/// The loop, untraced, while `cinch agent` runs in its default configuration (watch mode, 128
/// slots): the cost every process on a node pays.
fn untraced_under_agent(b: &Bench, n: u64) -> anyhow::Result<f64> {
    let mut cmd = Command::new(&b.cinch);
    cmd.args([
        "agent",
        "--listen",
        "127.0.0.1:0",
        "--node",
        "bench",
        "--output",
    ])
    .arg(b.tmp.join("probe-time-agent"));
    let mut agent = Running::spawn_logged(
        &mut cmd,
        &b.tmp.join("probe-time-agent.out"),
        &b.tmp.join("probe-time-agent.err"),
    )?;
    let mut progs = None;
    for _ in 0..3000 {
        if let Ok(p) = syscall_progs(agent.pid()) {
            progs = Some(p);
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let progs = progs.context("cinch agent attached no sys_enter program")?;
    std::thread::sleep(Duration::from_millis(200));
    let before = run_stats(&progs)?;
    run_loop(b, n, "probe-time-agent")?;
    let a = per_run(before, run_stats(&progs)?)?;
    agent.signal(libc::SIGTERM);
    agent.wait(LIMIT)?;
    Ok(a)
}

/// `cinch record -- ` (process tree), to be followed by the measured command.
fn record_command(b: &Bench) -> Command {
    let mut cmd = Command::new(&b.cinch);
    cmd.args(["record", "-q", "-o"])
        .arg(b.tmp.join("probe-time-traced.json"))
        .arg("--");
    cmd
}

/// `cinch record --new-containers -- bench/scale.sh IDLE ...`, to be followed by the measured
/// command (run in one more new mount namespace).
fn new_containers_command(b: &Bench, idle: usize) -> Command {
    let mut cmd = Command::new(&b.cinch);
    cmd.args([
        "record",
        "-q",
        "--new-containers",
        "--duration",
        "120s",
        "-o",
    ])
    .arg(b.tmp.join(format!("probe-time-{idle}-recordings")))
    .arg("--")
    .arg(b.assets.join("scale.sh"))
    .arg(idle.to_string())
    .arg(ready_file(b, idle));
    cmd
}

/// Where bench/scale.sh's idle processes say they have started.
fn ready_file(b: &Bench, idle: usize) -> PathBuf {
    b.tmp.join(format!("probe-time-{idle}.ready"))
}

/// `recorder` running a shell that waits, runs the loop, and waits again: the program's
/// statistics are read around the loop, while cinch is still attached. With `ready`, the
/// statistics are first read once that file has that many lines (the idle targets started).
fn traced(
    b: &Bench,
    recorder: &Command,
    ready: Option<(PathBuf, usize)>,
    n: u64,
    tag: &str,
) -> anyhow::Result<f64> {
    let out = b.tmp.join(format!("{tag}.out"));
    let script = format!(
        "read go; {} getppid {n}; read done",
        b.loops.to_string_lossy()
    );
    if let Some((file, _)) = &ready {
        // bench/scale.sh empties it, but a stale one must not look ready before that.
        let _ = std::fs::remove_file(file);
    }
    let mut cmd = Command::new(recorder.get_program());
    cmd.args(recorder.get_args())
        .args(["/bin/sh", "-c", &script])
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(&out)?)
        .stderr(std::fs::File::create(b.tmp.join(format!("{tag}.err")))?);
    let mut running = Running::spawn(&mut cmd)?;
    let mut stdin = running
        .take_stdin()
        .context("no stdin to the recorded shell")?;
    // The program is attached before the shell starts; wait until bpftool lists it.
    let mut progs = None;
    for _ in 0..200 {
        if let Ok(p) = syscall_progs(running.pid()) {
            progs = Some(p);
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let progs = progs.context("cinch record attached no sys_enter program")?;
    if let Some((file, lines)) = ready {
        let deadline = std::time::Instant::now() + LIMIT;
        while std::fs::read_to_string(&file).map_or(0, |t| t.lines().count()) < lines {
            if std::time::Instant::now() > deadline {
                bail!("the {lines} idle targets did not start");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // Let what started settle: the program runs for every syscall on the machine.
    std::thread::sleep(Duration::from_millis(200));
    let before = run_stats(&progs)?;
    stdin.write_all(b"go\n")?;
    wait_for_text(&mut running, &out, "cinch-bench:", LIMIT)?;
    let t = per_run(before, run_stats(&progs)?)?;
    stdin.write_all(b"done\n")?;
    drop(stdin);
    running.wait_ok(LIMIT)?;
    Ok(t)
}
