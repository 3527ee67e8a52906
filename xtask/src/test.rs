//! `cargo xtask test`: set-up, the cinch binary, then the tiers (docs/DESIGN.md, "Tests"):
//!
//! - unit: `cargo test --workspace --exclude cinch-tests`, plus the harness's own unit tests;
//! - privileged: every `tests/tests/*.rs` not named `e2e_*`, one test at a time;
//! - e2e: `tests/tests/e2e_*.rs`, one test at a time;
//! - soak: `cinch record --container` on a busy container for one minute (`crate::soak`), and
//!   `cinch agent` under ten minutes of pod container churn (`crate::soak_agent`);
//! - profiles: the drift gate on our own `profiles/`: each workload regenerated into a scratch
//!   directory and put to `cinch diff` against the committed profile (`crate::profiles`), one
//!   test per workload;
//! - dist: the Debian package built and installed on a clean Debian 12, where the installed cinch
//!   records `/bin/true` (`crate::dist`), counted as one test.
//!
//! Counting: libtest's `test result:` lines give passed/failed/ignored per test binary; a test
//! that skipped (a missing prerequisite outside CI) passed in libtest's eyes but printed
//! `SKIPPED: <test>: <reason>`, which `--show-output` shows, so it is moved from passed to
//! skipped. Ignored tests count as skipped. A test binary that started (`Running ...`) but never
//! printed its result crashed, and counts as one failure; so does a cargo that failed without
//! any failing test (a build error).

use std::io::{BufRead as _, BufReader, Read};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;

use anyhow::Context as _;

use crate::util::{build_cinch, cargo, show, workspace_root};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    passed: u64,
    failed: u64,
    skipped: u64,
}

impl Counts {
    fn add(&mut self, o: Counts) {
        self.passed += o.passed;
        self.failed += o.failed;
        self.skipped += o.skipped;
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} passed, {} failed", self.passed, self.failed)?;
        if self.skipped > 0 {
            write!(f, ", {} skipped", self.skipped)?;
        }
        Ok(())
    }
}

pub(crate) fn run() -> anyhow::Result<ExitCode> {
    crate::setup::run()?;
    let cinch = build_cinch(false)?;
    println!("==> CINCH_BIN={}", cinch.display());

    let (privileged, e2e) = integration_tests(&workspace_root().join("tests").join("tests"))?;
    let mut tiers: Vec<(&str, Counts, Vec<String>)> = Vec::new();

    let mut unit = Counts::default();
    let mut notes = Vec::new();
    for args in [
        vec!["--workspace", "--exclude", "cinch-tests"],
        vec!["-p", "cinch-tests", "--lib"],
    ] {
        let (c, n) = run_cargo_test(&args, &[], &cinch)?;
        unit.add(c);
        notes.extend(n);
    }
    tiers.push(("unit", unit, notes));

    for (tier, files) in [("privileged", privileged), ("e2e", e2e)] {
        if files.is_empty() {
            tiers.push((tier, Counts::default(), vec!["no test files".to_owned()]));
            continue;
        }
        let mut args = vec!["-p".to_owned(), "cinch-tests".to_owned()];
        for f in &files {
            args.push("--test".to_owned());
            args.push(f.clone());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (c, n) = run_cargo_test(&args, &["--test-threads=1"], &cinch)?;
        tiers.push((tier, c, n));
    }

    tiers.push(soak_tier(&cinch));
    tiers.push(profiles_tier(&cinch));
    tiers.push(dist_tier());

    println!();
    println!("==> test summary");
    let mut total = Counts::default();
    for (tier, counts, notes) in &tiers {
        println!("tier {tier}: {counts}");
        for n in notes {
            println!("    {n}");
        }
        total.add(*counts);
    }
    println!("{total}");
    Ok(if total.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The soaks, each counted as one test: `cinch record --container` for one minute, and
/// `cinch agent` under ten minutes of pod container churn. Skipped (outside CI) when they cannot
/// run here, failed under `CI=true`.
fn soak_tier(cinch: &Path) -> (&'static str, Counts, Vec<String>) {
    const RECORD_MINUTES: u64 = 1;
    const AGENT_MINUTES: u64 = 10;
    let ci = std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
    let mut counts = Counts::default();
    let mut notes = Vec::new();
    println!("==> soak: cinch record --container for {RECORD_MINUTES} minute(s)");
    let record = crate::soak::soak(cinch, std::time::Duration::from_secs(RECORD_MINUTES * 60));
    println!("==> soak: cinch agent under container churn for {AGENT_MINUTES} minute(s)");
    let agent =
        crate::soak_agent::soak_agent(cinch, std::time::Duration::from_secs(AGENT_MINUTES * 60));
    for (name, result) in [("record", record), ("agent", agent)] {
        match result {
            Ok(report) => {
                println!("{report}");
                let passed = report.failures.is_empty();
                counts.add(Counts {
                    passed: u64::from(passed),
                    failed: u64::from(!passed),
                    skipped: 0,
                });
                notes.extend(report.failures.iter().map(|f| format!("{name}: {f}")));
            }
            Err(e) if ci => {
                counts.add(Counts {
                    failed: 1,
                    ..Counts::default()
                });
                notes.push(format!("{name}: could not run under CI=true: {e:#}"));
            }
            Err(e) => {
                println!("SKIPPED: soak {name}: {e:#}");
                counts.add(Counts {
                    skipped: 1,
                    ..Counts::default()
                });
                notes.push(format!("{name}: skipped: {e:#}"));
            }
        }
    }
    ("soak", counts, notes)
}

/// The drift gate on `profiles/`, one test per workload: failed on drift or when the workload
/// could not be regenerated; skipped (outside CI) when the workloads cannot be recorded here,
/// failed under `CI=true`.
fn profiles_tier(cinch: &Path) -> (&'static str, Counts, Vec<String>) {
    println!("==> profiles: regenerate profiles/ and cinch diff against the committed ones");
    let ci = std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
    let started = std::time::Instant::now();
    match crate::profiles::drift(cinch) {
        Ok(gates) => {
            let mut counts = Counts::default();
            let mut notes = Vec::new();
            for g in gates {
                if !g.note.is_empty() {
                    notes.push(g.note);
                }
                match g.failure {
                    None => counts.passed += 1,
                    Some(why) => {
                        counts.failed += 1;
                        println!("FAILED: profiles/{}: {why}", g.workload);
                        notes.push(why);
                    }
                }
            }
            notes.push(format!(
                "regenerated and compared in {:.0} s",
                started.elapsed().as_secs_f64()
            ));
            ("profiles", counts, notes)
        }
        Err(e) if ci => (
            "profiles",
            Counts {
                failed: 1,
                ..Counts::default()
            },
            vec![format!("could not run under CI=true: {e:#}")],
        ),
        Err(e) => {
            println!("SKIPPED: profiles: {e:#}");
            (
                "profiles",
                Counts {
                    skipped: 1,
                    ..Counts::default()
                },
                vec![format!("skipped: {e:#}")],
            )
        }
    }
}

/// The package built, installed on a clean Debian 12 and recording there, counted as one test:
/// skipped (outside CI) when it cannot run here, failed under `CI=true`.
fn dist_tier() -> (&'static str, Counts, Vec<String>) {
    println!("==> dist: build the Debian package, install it on a clean Debian 12, record with it");
    let ci = std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
    let started = std::time::Instant::now();
    match crate::dist::check() {
        Ok(report) => {
            println!("{report}");
            let passed = report.failures.is_empty();
            let counts = Counts {
                passed: u64::from(passed),
                failed: u64::from(!passed),
                skipped: 0,
            };
            let mut notes = report.failures;
            notes.push(format!(
                "built, installed and recorded in {:.0} s",
                started.elapsed().as_secs_f64()
            ));
            ("dist", counts, notes)
        }
        Err(e) if ci => (
            "dist",
            Counts {
                failed: 1,
                ..Counts::default()
            },
            vec![format!("could not run under CI=true: {e:#}")],
        ),
        Err(e) => {
            println!("SKIPPED: dist: {e:#}");
            (
                "dist",
                Counts {
                    skipped: 1,
                    ..Counts::default()
                },
                vec![format!("skipped: {e:#}")],
            )
        }
    }
}

/// The integration test targets of `cinch-tests`, split into (privileged, e2e), sorted.
fn integration_tests(dir: &Path) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let path = e.path();
            (path.extension()? == "rs").then_some(())?;
            Some(path.file_stem()?.to_string_lossy().into_owned())
        })
        .collect();
    names.sort();
    Ok(names.into_iter().partition(|n| !n.starts_with("e2e_")))
}

/// What libtest and cargo printed that matters for counting.
#[derive(Debug, Default)]
struct Tally {
    counts: Counts,
    /// Test binaries started (`Running ...`, `Doc-tests ...` on cargo's stderr).
    started: u64,
    /// `test result:` lines seen.
    results: u64,
    /// `SKIPPED:` lines seen.
    skips: u64,
}

impl Tally {
    fn stdout_line(&mut self, line: &str) {
        let line = line.trim_start();
        if let Some(rest) = line.strip_prefix("test result: ") {
            self.results += 1;
            self.counts.passed += field(rest, "passed");
            self.counts.failed += field(rest, "failed");
            self.counts.skipped += field(rest, "ignored");
        } else if line.starts_with("SKIPPED: ") {
            self.skips += 1;
        }
    }

    /// Cargo's `     Running tests/x.rs (target/debug/deps/x-hash)` and `   Doc-tests crate`;
    /// matched strictly, because processes the tests start share this stderr.
    fn stderr_line(&mut self, line: &str) {
        let line = line.trim();
        let running =
            line.starts_with("Running ") && line.ends_with(')') && line.contains("/deps/");
        let doc_tests = line
            .strip_prefix("Doc-tests ")
            .is_some_and(|krate| !krate.is_empty() && !krate.contains(char::is_whitespace));
        if running || doc_tests {
            self.started += 1;
        }
    }

    /// Final counts, given cargo's exit status; notes say what was inferred.
    fn finish(mut self, cargo_ok: bool) -> (Counts, Vec<String>) {
        let mut notes = Vec::new();
        let skips = self.skips.min(self.counts.passed);
        self.counts.passed -= skips;
        self.counts.skipped += skips;
        if self.started > self.results {
            let crashed = self.started - self.results;
            self.counts.failed += crashed;
            notes.push(format!(
                "{crashed} test binary(ies) started but printed no result (crashed?): counted as failed"
            ));
        }
        if !cargo_ok && self.counts.failed == 0 {
            self.counts.failed += 1;
            notes.push(
                "cargo test failed without a failing test (build error?): counted as one failure"
                    .to_owned(),
            );
        }
        (self.counts, notes)
    }
}

/// `N passed; M failed; ...` → N for "passed".
fn field(result: &str, name: &str) -> u64 {
    result
        .split([';', '.'])
        .filter_map(|part| {
            let mut words = part.split_whitespace();
            let n = words.next()?.parse::<u64>().ok()?;
            (words.next()? == name).then_some(n)
        })
        .next()
        .unwrap_or(0)
}

enum Line {
    Out(String),
    Err(String),
}

fn pump(reader: impl Read + Send + 'static, tx: mpsc::Sender<Line>, wrap: fn(String) -> Line) {
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            if tx.send(wrap(line)).is_err() {
                break;
            }
        }
    });
}

/// `cargo test ARGS --no-fail-fast -- --show-output TEST_ARGS`, output passed through and
/// tallied.
fn run_cargo_test(
    args: &[&str],
    test_args: &[&str],
    cinch: &Path,
) -> anyhow::Result<(Counts, Vec<String>)> {
    let mut cmd: Command = cargo();
    cmd.arg("test")
        .args(args)
        .arg("--no-fail-fast")
        .arg("--")
        .arg("--show-output")
        .args(test_args)
        .env("CINCH_BIN", cinch)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    println!("==> {}", show(&cmd));
    let mut child = cmd
        .spawn()
        .with_context(|| format!("could not start `{}`", show(&cmd)))?;
    let (tx, rx) = mpsc::channel();
    if let Some(out) = child.stdout.take() {
        pump(out, tx.clone(), Line::Out);
    }
    if let Some(err) = child.stderr.take() {
        pump(err, tx.clone(), Line::Err);
    }
    drop(tx);
    let mut tally = Tally::default();
    for line in rx {
        match line {
            Line::Out(l) => {
                println!("{l}");
                tally.stdout_line(&l);
            }
            Line::Err(l) => {
                eprintln!("{l}");
                tally.stderr_line(&l);
            }
        }
    }
    let status = child.wait().context("waiting for cargo test")?;
    Ok(tally.finish(status.success()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(stdout: &str, stderr: &str, ok: bool) -> (Counts, Vec<String>) {
        let mut t = Tally::default();
        stderr.lines().for_each(|l| t.stderr_line(l));
        stdout.lines().for_each(|l| t.stdout_line(l));
        t.finish(ok)
    }

    #[test]
    fn result_fields() {
        let r = "ok. 3 passed; 1 failed; 2 ignored; 0 measured; 5 filtered out; finished in 0.01s";
        assert_eq!(field(r, "passed"), 3);
        assert_eq!(field(r, "failed"), 1);
        assert_eq!(field(r, "ignored"), 2);
        assert_eq!(field(r, "measured"), 0);
        assert_eq!(field(r, "bogus"), 0);
    }

    #[test]
    fn skipped_tests_move_from_passed_to_skipped() {
        let stderr = "     Running tests/harness_smoke.rs (target/debug/deps/harness_smoke-1)\n";
        let stdout = "\
running 2 tests
test a ... ok
test b ... ok

successes:

---- b stdout ----
SKIPPED: b: needs root

successes:
    a
    b

test result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
";
        let (c, notes) = tally(stdout, stderr, true);
        assert_eq!(
            c,
            Counts {
                passed: 1,
                failed: 0,
                skipped: 1
            }
        );
        assert!(notes.is_empty());
        assert_eq!(c.to_string(), "1 passed, 0 failed, 1 skipped");
    }

    #[test]
    fn a_crashed_binary_and_a_build_error_are_failures() {
        let stderr = "     Running unittests src/lib.rs (target/debug/deps/x-1)\n\
                      Running the workload\n\
                      Running tests/a.rs (target/debug/deps/a-2)\n\
                      Doc-tests the docs\n";
        let stdout = "test result: ok. 4 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out\n";
        let (c, notes) = tally(stdout, stderr, false);
        assert_eq!((c.passed, c.failed, c.skipped), (4, 1, 1));
        assert_eq!(notes.len(), 1);

        let (c, notes) = tally("", "error[E0425]: cannot find value `x`\n", false);
        assert_eq!((c.passed, c.failed), (0, 1));
        assert_eq!(notes.len(), 1);
    }

    #[test]
    fn totals_print_without_skips_when_there_are_none() {
        let c = Counts {
            passed: 7,
            failed: 2,
            skipped: 0,
        };
        assert_eq!(c.to_string(), "7 passed, 2 failed");
    }

    #[test]
    fn tiers_split_on_the_file_name() {
        let dir = std::env::temp_dir().join(format!("xtask-tiers-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        for f in [
            "record.rs",
            "e2e_docker.rs",
            "harness_smoke.rs",
            "README.md",
        ] {
            std::fs::write(dir.join(f), "").expect("write");
        }
        let (privileged, e2e) = integration_tests(&dir).expect("listing");
        std::fs::remove_dir_all(&dir).expect("cleanup");
        assert_eq!(privileged, ["harness_smoke", "record"]);
        assert_eq!(e2e, ["e2e_docker"]);
    }
}
