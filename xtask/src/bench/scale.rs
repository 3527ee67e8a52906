//! Scale: does a traced syscall cost more when cinch records many targets? Under `cinch record
//! --new-containers`, `bench/scale.sh` starts idle processes, each forking once in a new mount
//! namespace (one target each), then runs the getppid loop in one more; compared with the loop
//! as the only target, and with `cinch record -- loop` (process-tree mode).
//!
//! Figures are the loop's CPU time per call (see bench/loops.c).
//!
//! A new mount namespace that is not a container gets a target like any other but no
//! recording file; cinch logs how many there were (`not_containers=N`, at -v), which is how
//! the bench checks that the targets existed, the measured loop's included.

use std::ffi::OsString;
use std::process::Command;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::{Value, json};

use super::proc::Running;
use super::recording::RecordingCheck;
use super::stats::Samples;
use super::workloads::{self, Workload};
use super::{Bench, RssSample};

/// What the issue asks for.
const WANTED_TARGETS: usize = 100;
/// Idle targets when WANTED_TARGETS do not fit: cinch's `--new-containers` holds 128 targets
/// (`SLOTS` in tracer/src/cmd/record_containers.rs), so this is only taken when other programs
/// on the machine created many mount namespaces meanwhile.
const FALLBACK_IDLE: usize = 60;
const LIMIT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Default)]
pub(super) struct ScaleResult {
    /// Targets in the "many" runs (idle ones + the measured loop).
    pub targets: usize,
    /// Why that is not WANTED_TARGETS, if it is not.
    pub limit_note: Option<String>,
    /// ns per getppid, the loop as the only `--new-containers` target.
    pub one: Samples,
    /// ns per getppid with `targets` targets.
    pub many: Samples,
    /// ns per getppid under `cinch record -- loop`.
    pub tree: Samples,
    /// Targets cinch reported per run: (targets expected, targets reported).
    pub reported: Vec<(usize, usize)>,
    /// Runs set aside because fewer targets than expected were created.
    pub set_aside: usize,
}

impl ScaleResult {
    /// Median cost with many targets over the median with one.
    pub(super) fn ratio(&self) -> Option<f64> {
        Some(self.many.median()? / self.one.median()?)
    }

    pub(super) fn to_json(&self) -> Value {
        json!({
            "unit": "ns per getppid",
            "targets_wanted": WANTED_TARGETS,
            "targets_measured": self.targets,
            "limit_note": self.limit_note,
            "one_target_new_containers": self.one.to_json(),
            "many_targets_new_containers": self.many.to_json(),
            "one_target_process_tree": self.tree.to_json(),
            "ratio_many_over_one_median": self.ratio().map(super::stats::round2),
            "targets_reported_by_cinch": self.reported.iter().map(|(want, got)| json!({"expected": want, "reported": got})).collect::<Vec<_>>(),
            "runs_set_aside": self.set_aside,
            "note": "a mount namespace that is not a container gets no recording file, so lost counts are checked on the process-tree runs only",
        })
    }
}

pub(super) fn run(b: &mut Bench) -> anyhow::Result<ScaleResult> {
    let n = Workload::Getppid.iterations(false, b.quick);
    let mut r = ScaleResult::default();
    println!("==> bench: scale, can {WANTED_TARGETS} targets be created?");
    // The probe's own loop is too short to be named (it exits before its cgroup is read, and
    // is then recorded as an unidentified container, not counted here): only the idle targets
    // are, and they must all fit.
    let (_, created, _) = new_containers(b, WANTED_TARGETS, 1000, "scale-probe")?;
    let idle = if created >= WANTED_TARGETS {
        WANTED_TARGETS
    } else {
        r.limit_note = Some(format!(
            "only {created} of {WANTED_TARGETS} idle mount namespaces became targets (cinch record --new-containers holds 128); measured with {FALLBACK_IDLE} idle targets + the measured loop"
        ));
        FALLBACK_IDLE
    };
    r.targets = idle + 1;
    let rounds = b.rounds;
    for round in 0..rounds {
        println!(
            "==> bench: scale, 1 vs {} targets, round {}/{rounds}",
            idle + 1,
            round + 1
        );
        for i in 0..3 {
            b.wait_quiet();
            match (i + round) % 3 {
                0 => {
                    let (v, got, kib) = new_containers(b, 0, n, "scale-one")?;
                    if accept(&mut r, 1, got) {
                        r.one.push(v);
                    }
                    b.rss.push(RssSample {
                        what: format!(
                            "cinch record --new-containers, 1 target (round {})",
                            round + 1
                        ),
                        kib,
                    });
                    println!("    getppid   1 target   {v:>12.1} ns per call ({got} reported)");
                }
                1 => {
                    let (v, got, kib) = new_containers(b, idle, n, "scale-many")?;
                    if accept(&mut r, idle + 1, got) {
                        r.many.push(v);
                    }
                    b.rss.push(RssSample {
                        what: format!(
                            "cinch record --new-containers, {} targets (round {})",
                            idle + 1,
                            round + 1
                        ),
                        kib,
                    });
                    println!(
                        "    getppid   {} targets {v:>12.1} ns per call ({got} reported)",
                        idle + 1
                    );
                }
                _ => {
                    let v = process_tree(b, n, round)?;
                    r.tree.push(v);
                    println!("    getppid   record --  {v:>12.1} ns per call");
                }
            }
        }
    }
    Ok(r)
}

/// Keeps a run only when cinch created every target it should have (else the measured loop
/// may not have been one).
fn accept(r: &mut ScaleResult, expected: usize, got: usize) -> bool {
    r.reported.push((expected, got));
    if got < expected {
        println!("    (set aside: cinch reported {got} targets, expected {expected})");
        r.set_aside += 1;
    }
    got >= expected
}

/// Runs the getppid loop (n calls) after `idle` idle targets under `cinch record
/// --new-containers`; returns ns per call, the targets cinch reported, and its peak RSS.
fn new_containers(b: &Bench, idle: usize, n: u64, tag: &str) -> anyhow::Result<(f64, usize, u64)> {
    let out = b.tmp.join(format!("{tag}.out"));
    let err = b.tmp.join(format!("{tag}.err"));
    let dir = b.tmp.join(format!("{tag}-recordings"));
    let mut cmd = Command::new(&b.cinch);
    cmd.args([
        "record",
        "-v",
        "--new-containers",
        "--duration",
        "120s",
        "-o",
    ])
    .arg(&dir)
    .arg("--")
    .arg(b.assets.join("scale.sh"))
    .arg(idle.to_string())
    .arg(b.tmp.join(format!("{tag}.ready")))
    .arg(&b.loops)
    .args(["getppid", &n.to_string()]);
    let exit = Running::spawn_logged(&mut cmd, &out, &err)?.wait_ok(LIMIT)?;
    let report = workloads::parse(
        &std::fs::read_to_string(&out).unwrap_or_default(),
        Workload::Getppid,
    )?;
    let log = std::fs::read_to_string(&err).unwrap_or_default();
    let targets = not_containers(&log)
        .with_context(|| format!("cinch did not say how many targets it created:\n{log}"))?;
    Ok((report.cpu_ns_per_op(), targets, exit.max_rss_kib))
}

fn process_tree(b: &mut Bench, n: u64, round: usize) -> anyhow::Result<f64> {
    let recording = b
        .tmp
        .join(format!("rec-scale-tree-round{}.json", round + 1));
    let argv: Vec<OsString> = vec![
        b.loops.clone().into_os_string(),
        "getppid".into(),
        n.to_string().into(),
    ];
    let mut cmd = Command::new(&b.cinch);
    cmd.args(["record", "-q", "-o"])
        .arg(&recording)
        .arg("--")
        .args(&argv);
    let out = b.tmp.join("scale-tree.out");
    let exit =
        Running::spawn_logged(&mut cmd, &out, &b.tmp.join("scale-tree.err"))?.wait_ok(LIMIT)?;
    let report = workloads::parse(
        &std::fs::read_to_string(&out).unwrap_or_default(),
        Workload::Getppid,
    )?;
    b.rss.push(RssSample {
        what: format!(
            "cinch record -- getppid loop, scale section (round {})",
            round + 1
        ),
        kib: exit.max_rss_kib,
    });
    b.checks.push(RecordingCheck::read(
        format!(
            "getppid loop under cinch record, scale section, round {}",
            round + 1
        ),
        &recording,
        "getppid",
        report.calls,
        1,
    )?);
    Ok(report.cpu_ns_per_op())
}

/// `not_containers=N` in cinch's -v log (colours stripped); 0 when the line is absent but the
/// run said no container started (then the count was not logged because it was 0).
fn not_containers(log: &str) -> Option<usize> {
    let plain = strip_ansi(log);
    if let Some(rest) = plain.split("not_containers=").nth(1) {
        return rest
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .ok();
    }
    plain.contains("no container started").then_some(0)
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-byte
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_target_count_through_colours() {
        let log = "cinch: no container started while recording\n\u{1b}[32m INFO\u{1b}[0m new mount namespaces that were not containers were ignored \u{1b}[3mnot_containers\u{1b}[0m\u{1b}[2m=\u{1b}[0m61\n";
        assert_eq!(super::not_containers(log), Some(61));
        assert_eq!(
            super::not_containers("cinch: no container started while recording\n"),
            Some(0)
        );
        assert_eq!(super::not_containers("error\n"), None);
    }
}
