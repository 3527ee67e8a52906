//! Per-syscall cost: each workload under each tracer, interleaved round by round (the order of
//! the tracers rotates each round so that none always runs first or last), the workload timing
//! only its own loop.

use std::ffi::OsString;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::foreign::sys_enter_holders;
use super::proc::Running;
use super::recording::RecordingCheck;
use super::stats::Samples;
use super::tracers::{Floor, Mode, Untraced, wrap};
use super::workloads::{self, LoopReport, Workload};
use super::{Bench, RssSample};

/// One sample may take this long (strace on fork+exec is the slowest).
const SAMPLE_LIMIT: Duration = Duration::from_secs(180);
/// Rounds of the fork+exec and fork workloads (each run takes seconds).
const FORK_ROUNDS: usize = 3;

/// Which time a figure is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Metric {
    Wall,
    Cpu,
}

impl Metric {
    /// CPU time for in-kernel costs (a BPF program, like a seccomp filter, runs in the calling
    /// thread, so it is in that thread's CPU time, and time spent preempted by other processes
    /// is not); wall time for strace, whose cost is mostly the thread waiting while stopped.
    pub(super) fn primary(mode: Mode) -> Metric {
        if mode == Mode::Strace {
            Metric::Wall
        } else {
            Metric::Cpu
        }
    }

    pub(super) fn key(self) -> &'static str {
        match self {
            Metric::Wall => "wall",
            Metric::Cpu => "cpu",
        }
    }
}

/// One run: ns per operation, wall and CPU, and whether another sys_enter program was
/// attached around it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Run {
    pub wall: f64,
    pub cpu: f64,
    pub clean: bool,
}

/// The runs of one workload under one mode.
#[derive(Debug, Clone)]
pub(super) struct ModeResult {
    pub mode: Mode,
    pub runs: Vec<Run>,
    /// Other sys_enter programs seen around runs, by holder.
    pub foreign: Vec<String>,
}

impl ModeResult {
    /// Figures of `metric`: only the clean runs' when `clean_only`.
    pub(super) fn samples(&self, metric: Metric, clean_only: bool) -> Samples {
        let mut s = Samples::default();
        for r in self.runs.iter().filter(|r| r.clean || !clean_only) {
            s.push(match metric {
                Metric::Wall => r.wall,
                Metric::Cpu => r.cpu,
            });
        }
        s
    }

    pub(super) fn clean_runs(&self) -> usize {
        self.runs.iter().filter(|r| r.clean).count()
    }
}

#[derive(Debug, Clone)]
pub(super) struct WorkloadResult {
    pub workload: Workload,
    pub modes: Vec<ModeResult>,
}

impl WorkloadResult {
    pub(super) fn get(&self, mode: Mode) -> Option<&ModeResult> {
        self.modes.iter().find(|m| m.mode == mode)
    }

    /// Whether runs taken while another sys_enter program was attached are set aside: only
    /// when every mode keeps at least two clean runs (or all its runs), so that all modes are
    /// compared on the same footing.
    pub(super) fn clean_only(&self) -> bool {
        self.modes
            .iter()
            .all(|m| m.clean_runs() >= 2.min(m.runs.len()))
    }

    /// The figures `mode` is judged on (its primary metric, runs chosen by `clean_only`).
    pub(super) fn samples(&self, mode: Mode) -> Option<Samples> {
        self.samples_of(mode, Metric::primary(mode))
    }

    fn samples_of(&self, mode: Mode, metric: Metric) -> Option<Samples> {
        Some(self.get(mode)?.samples(metric, self.clean_only()))
    }

    pub(super) fn median(&self, mode: Mode) -> Option<f64> {
        self.samples(mode)?.median()
    }

    /// Median cost over the untraced baseline, in the mode's own metric.
    pub(super) fn added(&self, mode: Mode) -> Option<f64> {
        let metric = Metric::primary(mode);
        Some(
            self.samples_of(mode, metric)?.median()?
                - self.samples_of(Mode::None, metric)?.median()?,
        )
    }

    /// Same, from the minima (the least disturbed run of each).
    pub(super) fn added_min(&self, mode: Mode) -> Option<f64> {
        let metric = Metric::primary(mode);
        Some(self.samples_of(mode, metric)?.min()? - self.samples_of(Mode::None, metric)?.min()?)
    }

    /// Runs set aside under `mode`.
    pub(super) fn set_aside(&self, mode: Mode) -> usize {
        match self.get(mode) {
            Some(m) if self.clean_only() => m.runs.len() - m.clean_runs(),
            _ => 0,
        }
    }
}

fn modes(w: Workload) -> &'static [Mode] {
    match w {
        Workload::Getppid | Workload::Write | Workload::Ioctl => &[
            Mode::None,
            Mode::Floor,
            Mode::Cinch,
            Mode::Untraced,
            Mode::Bpftrace,
            Mode::Strace,
        ],
        Workload::Storm | Workload::ForkExec | Workload::Fork => &[
            Mode::None,
            Mode::Floor,
            Mode::Cinch,
            Mode::Bpftrace,
            Mode::Strace,
        ],
    }
}

/// bpftrace counts for the one process of a loop, and for the process tree of fork+exec.
fn bpftrace_script(w: Workload) -> &'static str {
    match w {
        Workload::ForkExec | Workload::Fork => "count-tree.bt",
        _ => "count-pid.bt",
    }
}

pub(super) fn run(b: &mut Bench) -> anyhow::Result<Vec<WorkloadResult>> {
    let mut results: Vec<WorkloadResult> = Workload::ALL
        .iter()
        .map(|&w| WorkloadResult {
            workload: w,
            modes: modes(w)
                .iter()
                .map(|&mode| ModeResult {
                    mode,
                    runs: Vec::new(),
                    foreign: Vec::new(),
                })
                .collect(),
        })
        .collect();
    for round in 0..b.rounds {
        println!(
            "==> bench: per-syscall cost, round {}/{}",
            round + 1,
            b.rounds
        );
        for result in &mut results {
            let w = result.workload;
            if matches!(w, Workload::ForkExec | Workload::Fork) && round >= FORK_ROUNDS {
                continue;
            }
            let n = result.modes.len();
            for i in 0..n {
                let m = &mut result.modes[(i + round) % n];
                b.wait_quiet();
                let before = sys_enter_holders(&[]);
                let report = sample(b, w, m.mode, round)?;
                let after = sys_enter_holders(&[]);
                let clean = before.is_empty() && after.is_empty();
                m.runs.push(Run {
                    wall: report.ns_per_op(),
                    cpu: report.cpu_ns_per_op(),
                    clean,
                });
                m.foreign.extend(before.into_iter().chain(after));
                m.foreign.sort();
                m.foreign.dedup();
                println!(
                    "    {:<9} {:<10} {:>12.1} {} (wall {:.1}){}",
                    w.key(),
                    m.mode.label(),
                    report.cpu_ns_per_op(),
                    w.unit(),
                    report.ns_per_op(),
                    if clean {
                        ""
                    } else {
                        " [another sys_enter program was attached]"
                    }
                );
            }
        }
    }
    Ok(results)
}

/// One run of `w` under `mode`.
fn sample(b: &mut Bench, w: Workload, mode: Mode, round: usize) -> anyhow::Result<LoopReport> {
    let n = w.iterations(mode == Mode::Strace, b.quick);
    let argv: Vec<OsString> = vec![
        b.loops.clone().into_os_string(),
        w.key().into(),
        n.to_string().into(),
    ];
    let tag = format!("{}-{}", w.key(), mode.key());
    let recording = b
        .tmp
        .join(format!("rec-{}-round{}.json", w.key(), round + 1));
    let out = b.tmp.join(format!("{tag}.out"));
    let err = b.tmp.join(format!("{tag}.err"));
    let floor = match mode {
        Mode::Floor => Some(Floor::attach(b, &tag)?),
        _ => None,
    };
    let untraced = match mode {
        Mode::Untraced => Some(Untraced::attach(b, &tag)?),
        _ => None,
    };
    let mut cmd = wrap(b, mode, &argv, &recording, bpftrace_script(w))?;
    let mut running = Running::spawn_logged(&mut cmd, &out, &err)?;
    let exit = running.wait_ok(SAMPLE_LIMIT)?;
    let report = workloads::parse(&std::fs::read_to_string(&out).unwrap_or_default(), w)?;
    if let Some(floor) = floor {
        floor.detach()?;
    }
    if let Some(untraced) = untraced {
        let kib = untraced.max_rss_kib()?;
        b.rss.push(RssSample {
            what: format!("cinch record of an idle shell (round {})", round + 1),
            kib,
        });
    }
    if mode == Mode::Cinch {
        b.rss.push(RssSample {
            what: format!("cinch record -- {} (round {})", w.describe(), round + 1),
            kib: exit.max_rss_kib,
        });
        b.checks.push(RecordingCheck::read(
            format!("{} under cinch record, round {}", w.describe(), round + 1),
            &recording,
            w.counted_syscall(),
            report.calls,
            w.processes(n),
        )?);
    }
    Ok(report)
}

pub(super) fn to_json(results: &[WorkloadResult], quick: bool) -> Value {
    let mut out = Map::new();
    for r in results {
        let mut modes = Map::new();
        for m in &r.modes {
            let metric = Metric::primary(m.mode);
            let clean_only = r.clean_only();
            let v = json!({
                "judged_on": metric.key(),
                "cpu": m.samples(Metric::Cpu, clean_only).to_json(),
                "wall": m.samples(Metric::Wall, clean_only).to_json(),
                "runs": m.runs.len(),
                "clean_runs": m.clean_runs(),
                "set_aside_foreign_sys_enter": r.set_aside(m.mode),
                "foreign_sys_enter_holders": m.foreign,
                "added_over_none_median": r.added(m.mode).map(super::stats::round2),
                "added_over_none_min": r.added_min(m.mode).map(super::stats::round2),
            });
            modes.insert(m.mode.key().to_owned(), v);
        }
        out.insert(
            r.workload.key().to_owned(),
            json!({
                "workload": r.workload.describe(),
                "unit": r.workload.unit(),
                "iterations": r.workload.iterations(false, quick),
                "iterations_under_strace": r.workload.iterations(true, quick),
                "modes": modes,
            }),
        );
    }
    Value::Object(out)
}
