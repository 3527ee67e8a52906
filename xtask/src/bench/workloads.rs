//! The C workloads (`bench/loops.c`): built with the system's gcc, run with an iteration count,
//! and their one-line report parsed.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::util::run as run_cmd;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Workload {
    Getppid,
    Write,
    Ioctl,
    Storm,
    ForkExec,
    Fork,
}

impl Workload {
    pub(super) const ALL: [Workload; 6] = [
        Workload::Getppid,
        Workload::Write,
        Workload::Ioctl,
        Workload::Storm,
        Workload::ForkExec,
        Workload::Fork,
    ];

    /// The mode argument of `loops`, and the key in results.json.
    pub(super) fn key(self) -> &'static str {
        match self {
            Workload::Getppid => "getppid",
            Workload::Write => "write",
            Workload::Ioctl => "ioctl",
            Workload::Storm => "storm",
            Workload::ForkExec => "forkexec",
            Workload::Fork => "fork",
        }
    }

    pub(super) fn describe(self) -> &'static str {
        match self {
            Workload::Getppid => "getppid() loop",
            Workload::Write => "1-byte write() to /dev/null loop",
            Workload::Ioctl => "ioctl(FIONREAD) on a socket loop (its request is recorded)",
            Workload::Storm => "two threads of getppid() on two cores",
            Workload::ForkExec => "fork + execve(/bin/true) + waitpid",
            Workload::Fork => "fork + getppid and _exit in the child + waitpid (process churn)",
        }
    }

    /// Iterations: about half a second to a second each untraced on this machine (a getppid
    /// costs 100-250 ns here, a fork+exec about 1 ms, a fork+exit about 0.15 ms); strace stops the process twice per
    /// syscall, so it gets far fewer and the result is normalised per operation all the same.
    pub(super) fn iterations(self, under_strace: bool, quick: bool) -> u64 {
        let n = match (self, under_strace) {
            (Workload::Getppid | Workload::Write | Workload::Ioctl, false) => 3_000_000,
            (Workload::Storm, false) => 2_000_000,
            (Workload::ForkExec, false) => 2_000,
            (Workload::Fork, false) => 10_000,
            (Workload::Getppid | Workload::Write | Workload::Ioctl, true) => 20_000,
            (Workload::Storm, true) => 10_000,
            (Workload::ForkExec, true) => 100,
            (Workload::Fork, true) => 200,
        };
        if quick { (n / 10).max(10) } else { n }
    }

    /// The syscall a recording must have counted at least `calls` times.
    pub(super) fn counted_syscall(self) -> &'static str {
        match self {
            Workload::Getppid | Workload::Storm | Workload::Fork => "getppid",
            Workload::Write => "write",
            Workload::Ioctl => "ioctl",
            Workload::ForkExec => "execve",
        }
    }

    /// Processes a recording must have seen (the loop, plus one per fork).
    pub(super) fn processes(self, n: u64) -> u64 {
        match self {
            Workload::ForkExec | Workload::Fork => n + 1,
            _ => 1,
        }
    }

    /// What one operation is, for tables.
    pub(super) fn unit(self) -> &'static str {
        match self {
            Workload::ForkExec => "ns per fork+exec",
            Workload::Fork => "ns per fork+exit",
            Workload::Storm => "ns per call per thread",
            _ => "ns per call",
        }
    }
}

/// What `loops` printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LoopReport {
    pub ops: u64,
    /// Wall time of the loop.
    pub ns: u64,
    /// CPU time of the loop's own work (see bench/loops.c).
    pub cpu_ns: u64,
    /// How many times the counted syscall was made.
    pub calls: u64,
}

impl LoopReport {
    pub(super) fn ns_per_op(&self) -> f64 {
        self.ns as f64 / self.ops as f64
    }

    pub(super) fn cpu_ns_per_op(&self) -> f64 {
        self.cpu_ns as f64 / self.ops as f64
    }
}

/// Builds `bench/loops.c` into `<out>/bin/loops`.
pub(super) fn build(assets: &Path, out: &Path) -> anyhow::Result<PathBuf> {
    let bin_dir = out.join("bin");
    std::fs::create_dir_all(&bin_dir).with_context(|| format!("creating {}", bin_dir.display()))?;
    let bin = bin_dir.join("loops");
    let mut cc = Command::new("gcc");
    cc.args(["-O2", "-Wall", "-Wextra", "-Werror", "-pthread", "-o"])
        .arg(&bin)
        .arg(assets.join("loops.c"));
    println!("==> {}", crate::util::show(&cc));
    run_cmd(&mut cc).context("building the bench workloads (gcc and libc6-dev are needed)")?;
    Ok(bin)
}

/// The `cinch-bench:` line in a workload's output (a tracer may print around it).
pub(super) fn parse(text: &str, workload: Workload) -> anyhow::Result<LoopReport> {
    let Some(line) = text
        .lines()
        .find_map(|l| l.split_once("cinch-bench: ").map(|(_, rest)| rest))
    else {
        bail!(
            "the {} workload printed no result line",
            workload.describe()
        );
    };
    let mut mode = None;
    let (mut ops, mut ns, mut cpu_ns, mut calls) = (None, None, None, None);
    for field in line.split_whitespace() {
        match field.split_once('=') {
            Some(("mode", v)) => mode = Some(v),
            Some(("ops", v)) => ops = v.parse().ok(),
            Some(("ns", v)) => ns = v.parse().ok(),
            Some(("cpu_ns", v)) => cpu_ns = v.parse().ok(),
            Some(("calls", v)) => calls = v.parse().ok(),
            _ => {}
        }
    }
    match (mode, ops, ns, cpu_ns, calls) {
        (Some(m), Some(ops), Some(ns), Some(cpu_ns), Some(calls))
            if m == workload.key() && ops > 0 =>
        {
            Ok(LoopReport {
                ops,
                ns,
                cpu_ns,
                calls,
            })
        }
        _ => bail!("cannot read the workload's result line `{line}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_report_among_tracer_output() {
        let text = "Attaching 1 probe...\ncinch-bench: mode=getppid ops=2000 ns=300000 cpu_ns=200000 calls=12000\n\n@syscalls[110]: 12000\n";
        let r = parse(text, Workload::Getppid).expect("parsed");
        assert_eq!(
            r,
            LoopReport {
                ops: 2000,
                ns: 300_000,
                cpu_ns: 200_000,
                calls: 12_000
            }
        );
        assert!((r.ns_per_op() - 150.0).abs() < 1e-9);
        assert!((r.cpu_ns_per_op() - 100.0).abs() < 1e-9);
        assert!(parse(text, Workload::Write).is_err());
        assert!(parse("nothing\n", Workload::Getppid).is_err());
    }
}
