//! `cargo xtask fuzz --seconds N`: runs each cargo-fuzz target in `fuzz/` (libFuzzer, on the
//! installed nightly) for N seconds, one after the other, and reports executions and crashes per
//! target.
//!
//! The seed corpus in `fuzz/corpus/<target>/` is read but never written: what libFuzzer finds goes
//! into `target/fuzz/corpus/<target>/` (kept between runs, out of the repository), crash inputs
//! into `target/fuzz/artifacts/<target>/`. cargo-fuzz is installed from crates.io when missing.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context as _, bail};

use crate::util::{self, show, target_dir, workspace_root};

/// The targets in `fuzz/Cargo.toml`.
pub(crate) const TARGETS: [&str; 3] = ["recording_reader", "profile_reader", "diff"];

#[derive(Debug, clap::Args)]
pub(crate) struct Options {
    /// Seconds per target.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// Only this target (recording_reader, profile_reader or diff).
    #[arg(long)]
    pub target: Option<String>,
}

/// What one target's run gave.
#[derive(Debug)]
struct Outcome {
    target: String,
    seconds: f64,
    executions: Option<u64>,
    crash: Option<String>,
}

/// A cargo that runs on the nightly toolchain whatever `cargo xtask` runs on: the rustup proxy
/// with RUSTUP_TOOLCHAIN, and without the outer cargo's `CARGO` (cargo-fuzz would call it).
fn nightly_cargo() -> Command {
    let mut cmd = Command::new("cargo");
    cmd.env("RUSTUP_TOOLCHAIN", "nightly")
        .env_remove("CARGO")
        .env_remove("RUSTC")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CARGO_TARGET_DIR");
    cmd
}

fn cargo_fuzz_installed() -> bool {
    nightly_cargo()
        .args(["fuzz", "--version"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn ensure_cargo_fuzz() -> anyhow::Result<()> {
    if cargo_fuzz_installed() {
        return Ok(());
    }
    let mut cmd = Command::new("cargo");
    cmd.args(["install", "cargo-fuzz", "--locked"])
        .env_remove("CARGO")
        .env_remove("RUSTUP_TOOLCHAIN");
    println!("==> {}", show(&cmd));
    util::run(&mut cmd)?;
    if !cargo_fuzz_installed() {
        bail!("cargo-fuzz was installed but `cargo +nightly fuzz --version` still fails");
    }
    Ok(())
}

pub(crate) fn run(options: &Options) -> anyhow::Result<ExitCode> {
    let (seconds, only) = (options.seconds, options.target.as_deref());
    if seconds == 0 {
        bail!("--seconds must be at least 1");
    }
    let targets: Vec<&str> = match only {
        Some(t) if TARGETS.contains(&t) => vec![t],
        Some(t) => bail!(
            "no fuzz target {t:?}; the targets are {}",
            TARGETS.join(", ")
        ),
        None => TARGETS.to_vec(),
    };
    ensure_cargo_fuzz()?;
    let root = workspace_root();
    let fuzz_dir = root.join("fuzz");
    let work = target_dir()?.join("fuzz");

    let mut build = nightly_cargo();
    build.current_dir(&fuzz_dir).args(["fuzz", "build"]);
    println!("==> {}", show(&build));
    util::run(&mut build)?;

    let mut outcomes = Vec::new();
    for target in targets {
        outcomes.push(run_target(&fuzz_dir, &work, target, seconds)?);
    }

    println!();
    println!("==> fuzz summary ({seconds} s per target)");
    let mut failed = 0;
    for o in &outcomes {
        let execs = o
            .executions
            .map_or_else(|| "unknown".to_owned(), |n| n.to_string());
        match &o.crash {
            None => println!(
                "fuzz {}: {execs} executions in {:.0} s, no crash",
                o.target, o.seconds
            ),
            Some(why) => {
                failed += 1;
                println!(
                    "fuzz {}: FAILED after {execs} executions in {:.0} s: {why}",
                    o.target, o.seconds
                );
            }
        }
    }
    println!("{} passed, {failed} failed", outcomes.len() - failed);
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn run_target(fuzz_dir: &Path, work: &Path, target: &str, seconds: u64) -> anyhow::Result<Outcome> {
    let corpus = work.join("corpus").join(target);
    let artifacts = work.join("artifacts").join(target);
    for dir in [&corpus, &artifacts] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let seeds: PathBuf = fuzz_dir.join("corpus").join(target);
    let mut cmd = nightly_cargo();
    cmd.current_dir(fuzz_dir)
        .args(["fuzz", "run", target])
        .arg(&corpus)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        .arg("-print_final_stats=1")
        .arg("-timeout=20")
        .arg("-rss_limit_mb=4096")
        .stdin(Stdio::null())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped());
    println!("==> {}", show(&cmd));
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("could not start `{}`", show(&cmd)))?;
    // libFuzzer reports on stderr; pass it through and keep what the summary needs.
    let mut executions = None;
    let mut crash_lines = Vec::new();
    if let Some(err) = child.stderr.take() {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(err).lines() {
            let Ok(line) = line else { break };
            eprintln!("{line}");
            if let Some(n) = line.strip_prefix("stat::number_of_executed_units:") {
                executions = n.trim().parse().ok();
            }
            if line.contains("ERROR: libFuzzer")
                || line.contains("panicked at")
                || line.starts_with("Test unit written to")
            {
                crash_lines.push(line.trim().to_owned());
            }
        }
    }
    let status = child.wait().context("waiting for cargo fuzz")?;
    let crash = (!status.success()).then(|| {
        if crash_lines.is_empty() {
            format!("cargo fuzz run exited with {status}")
        } else {
            crash_lines.join("; ")
        }
    });
    Ok(Outcome {
        target: target.to_owned(),
        seconds: start.elapsed().as_secs_f64(),
        executions,
        crash,
    })
}
