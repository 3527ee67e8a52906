//! `cargo xtask bench`: cinch's overhead, measured side by side with the floor (an empty program
//! on `raw_syscalls:sys_enter`), bpftrace and strace in one run, interleaved, and judged against
//! docs/DESIGN.md's "Performance targets". This machine is shared and noisy: absolute figures move
//! from run to run, ratios within one run hold.
//!
//! Sections, in order: per-syscall cost of small C loops (`bench/loops.c`); nginx under wrk on
//! loopback; start-up of `cinch record -- /bin/true`; scale (1 vs many targets); the probe's
//! own run time (kernel BPF statistics); enforcement (the generated profile vs Docker's
//! default). Then a table on stdout,
//! `target/bench/results.json` (every figure, every recording check, every target), and
//! `target/bench/results.md` (the tables as Markdown, for the README).

mod enforce;
mod foreign;
mod probe_time;
mod proc;
mod recording;
mod report;
mod scale;
mod server;
mod startup;
mod stats;
mod syscall_cost;
mod table;
mod tracers;
mod workloads;

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;
use serde_json::json;

use crate::util::{build_cinch, is_root, on_path, output, target_dir, workspace_root};

#[derive(Debug, Args)]
pub(crate) struct Options {
    /// Interleaved repetitions of each measurement (nginx: at most 5; fork+exec and fork: at
    /// most 3).
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u16).range(1..=50))]
    pub rounds: u16,
    /// A tenth of the iterations and one round: checks that the bench works, measures nothing
    /// worth publishing.
    #[arg(long)]
    pub quick: bool,
}

/// Tools the bench runs (`cargo xtask setup` installs them).
const TOOLS: &[&str] = &[
    "gcc", "bpftrace", "strace", "nginx", "wrk", "bpftool", "unshare",
];

/// What every section needs.
pub(crate) struct Bench {
    pub cinch: PathBuf,
    pub loops: PathBuf,
    /// `<workspace>/bench`: the C source, bpftrace scripts, nginx configuration, scale script.
    pub assets: PathBuf,
    /// Logs, recordings and profiles of this run.
    pub tmp: PathBuf,
    pub rounds: usize,
    pub quick: bool,
    /// Every recording made, checked.
    pub checks: Vec<recording::RecordingCheck>,
    /// Peak RSS of every cinch process.
    pub rss: Vec<RssSample>,
    /// How much longer the bench may wait, in all, for other programs to leave sys_enter.
    pub quiet_budget: Duration,
}

/// Waiting for other programs on sys_enter to go: at most this long before one sample, and
/// QUIET_BUDGET in all (another session's long recording must not hold the bench forever).
const QUIET_WAIT: Duration = Duration::from_secs(30);
const QUIET_BUDGET: Duration = Duration::from_secs(180);

impl Bench {
    /// Before a sample: waits (within the budget) until no other process holds a program on
    /// sys_enter, since every syscall on the machine pays for it while it is there.
    pub(crate) fn wait_quiet(&mut self) {
        let start = Instant::now();
        let limit = QUIET_WAIT.min(self.quiet_budget);
        let mut said = false;
        loop {
            let holders = foreign::sys_enter_holders(&[]);
            if holders.is_empty() || start.elapsed() >= limit {
                break;
            }
            if !said {
                println!(
                    "    (waiting up to {} s for {} to leave sys_enter)",
                    limit.as_secs(),
                    holders.join(", ")
                );
                said = true;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        self.quiet_budget = self.quiet_budget.saturating_sub(start.elapsed());
    }
}

#[derive(Debug, Clone)]
pub(crate) struct RssSample {
    pub what: String,
    pub kib: u64,
}

pub(crate) fn run(options: &Options) -> anyhow::Result<ExitCode> {
    if !is_root() {
        bail!(
            "cargo xtask bench needs root: cinch, bpftrace and the floor attach BPF programs; run it as root (sudo -E cargo xtask bench)"
        );
    }
    crate::setup::run()?;
    let missing: Vec<&str> = TOOLS.iter().copied().filter(|t| !on_path(t)).collect();
    if !missing.is_empty() {
        bail!(
            "missing: {} (cargo xtask setup installs them on Debian)",
            missing.join(", ")
        );
    }
    let cinch = build_cinch(true)?;
    let out = target_dir()?.join("bench");
    let tmp = out.join("tmp");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).with_context(|| format!("removing {}", tmp.display()))?;
    }
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let assets = workspace_root().join("bench");
    let loops = workloads::build(&assets, &out)?;
    let mut b = Bench {
        cinch,
        loops,
        assets,
        tmp,
        rounds: if options.quick {
            1
        } else {
            usize::from(options.rounds)
        },
        quick: options.quick,
        checks: Vec::new(),
        rss: Vec::new(),
        quiet_budget: QUIET_BUDGET,
    };

    let started = Instant::now();
    let date = now_utc();
    let load_before = loadavg();
    let cost = syscall_cost::run(&mut b)?;
    let server = Some(server::run(&mut b)?);
    let startup = startup::run(&mut b)?;
    let scale = scale::run(&mut b)?;
    let probe = probe_time::run(&mut b, scale.targets - 1)?;
    let enforce = if enforce::available(&b) {
        Ok(enforce::run(&mut b)?)
    } else {
        Err("this cinch has no `run` command yet: enforcement not measured".to_owned())
    };
    let load_after = loadavg();
    let results = report::Results {
        cost,
        server,
        startup,
        scale,
        probe,
        enforce,
        checks: std::mem::take(&mut b.checks),
        rss: std::mem::take(&mut b.rss),
    };

    let targets = results.targets();
    let tables = results.tables(b.rounds);
    let targets_table = report::Results::targets_table(&targets);
    println!();
    for t in tables.iter().chain([&targets_table]) {
        println!("{}", t.text());
    }
    let notes = results.notes();
    for n in &notes {
        println!("note: {n}");
    }
    for c in results.checks.iter().filter(|c| !c.complete()) {
        println!(
            "incomplete recording: {} ({}): lost {}, map_full {}, {} counted {} of at least {}, processes {} of {}",
            c.what,
            c.path.display(),
            c.lost_syscalls,
            c.map_full,
            c.syscall,
            c.counted,
            c.expected_at_least,
            c.processes_seen,
            c.expected_processes
        );
    }

    let mut doc = results.to_json(&b, &targets);
    doc["schema_version"] = json!(1);
    doc["date"] = json!(date);
    doc["duration_seconds"] = json!(started.elapsed().as_secs());
    doc["options"] = json!({"rounds": b.rounds, "quick": b.quick});
    doc["waited_for_other_sys_enter_programs_seconds"] =
        json!((QUIET_BUDGET - b.quiet_budget).as_secs());
    doc["host"] = json!({
        "kernel": first_line(Command::new("uname").arg("-r")),
        "cpus": std::thread::available_parallelism().map(usize::from).ok(),
        "loadavg_before": load_before,
        "loadavg_after": load_after,
    });
    doc["tools"] = json!({
        "cinch": b.cinch.display().to_string(),
        "bpftrace": first_line(Command::new("bpftrace").arg("--version")),
        "strace": first_line(Command::new("strace").arg("-V")),
        "nginx": first_line(Command::new("nginx").arg("-v")),
        "wrk": first_line(Command::new("wrk").arg("-v")),
    });
    let json_path = out.join("results.json");
    let mut text = serde_json::to_string_pretty(&doc).context("serializing the results")?;
    text.push('\n');
    std::fs::write(&json_path, text).with_context(|| format!("writing {}", json_path.display()))?;
    let md_path = out.join("results.md");
    let mut md = format!(
        "Measured {date} ({} rounds, {} s, load average {} before and {} after).\n\n",
        b.rounds,
        started.elapsed().as_secs(),
        load_before,
        load_after
    );
    for t in tables.iter().chain([&targets_table]) {
        md.push_str(&t.markdown());
        md.push('\n');
    }
    for n in &notes {
        md.push_str(&format!("- {n}\n"));
    }
    std::fs::write(&md_path, md).with_context(|| format!("writing {}", md_path.display()))?;
    let met = targets.iter().filter(|t| t.met() == Some(true)).count();
    println!(
        "==> bench: {met} of {} targets met, in {} s; {} and {}",
        targets.len(),
        started.elapsed().as_secs(),
        json_path.display(),
        md_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn now_utc() -> String {
    first_line(Command::new("date").args(["-u", "+%Y-%m-%dT%H:%M:%SZ"]))
}

/// The 1, 5 and 15 minute load averages.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The first line a command prints (stdout, else stderr: `nginx -v` writes there).
fn first_line(cmd: &mut Command) -> String {
    let Ok(out) = output(cmd) else {
        return String::new();
    };
    let text = if out.stdout.is_empty() {
        out.stderr
    } else {
        out.stdout
    };
    String::from_utf8_lossy(&text)
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned()
}
