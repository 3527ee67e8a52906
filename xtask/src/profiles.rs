//! `cargo xtask profiles [--out DIR]`: regenerates the profiles kept in `profiles/`, one
//! directory per shipped workload, each from real recordings of a scripted run:
//!
//! ```text
//! profiles/<workload>/recordings/<command>-<run>.json   what `cinch record` saw, run by run
//! profiles/<workload>/seccomp.json                      cinch generate (Docker JSON)
//! profiles/<workload>/settings.json                     cinch generate --caps-out (cap_add + reasons)
//! profiles/<workload>/report.md                         cinch report --format markdown
//! ```
//!
//! Each run is one `examples/workloads/record.sh WORKLOAD DIR` (the client side of the workload:
//! fixed requests, readiness by port checks, a bounded time; only the server is recorded).
//! `cargo xtask test` calls [`drift`]: regenerate into a scratch directory and put each new
//! profile to `cinch diff` against the committed one, the drift gate of README "Use in CI".
//!
//! Stability: a syscall that a workload makes in some runs and not others would make the gate
//! fail at random. Measured here (10 runs of each workload, both CPUs kept busy): the servers
//! run as processes made the same set in every run, and each run alone gave byte-identical
//! `seccomp.json` and `settings.json`; the container varied only in what runc's Go runtime does
//! after installing the filter (`nanosleep`, `tgkill`, `epoll_pwait` in some runs), all of
//! which runc's measured baseline has, so its profile is generated with it. One run per workload
//! would do; [`RUNS`] are recorded anyway and generated from their union, so that the committed
//! profile also has what a rarer interleaving adds (about 10 s more in all).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::util::{build_cinch, is_root, on_path, output, show, target_dir, workspace_root};

/// Runs recorded per workload, generated from their union.
const RUNS: u32 = 3;
/// One run of record.sh bounds each of its own steps; this only stops a run that hangs anyway.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

struct Workload {
    /// Directory under profiles/, and record.sh's workload name.
    name: &'static str,
    /// Extra `cinch generate` options.
    generate: &'static [&'static str],
    /// Programs the run needs besides cinch, sh and curl.
    needs: &'static [&'static str],
}

const WORKLOADS: &[Workload] = &[
    Workload {
        name: "busybox-httpd",
        // The runtime's syscalls after the filter install vary from run to run (see above).
        generate: &["--runtime-baseline", "runc"],
        needs: &["docker", "tar"],
    },
    Workload {
        name: "nginx",
        generate: &[],
        needs: &["nginx"],
    },
    Workload {
        name: "redis-server",
        generate: &[],
        needs: &["redis-server", "redis-cli"],
    },
    Workload {
        name: "python-http-server",
        generate: &[],
        needs: &["/usr/bin/python3"],
    },
];

#[derive(Debug, clap::Args)]
pub(crate) struct Options {
    /// Where the workload directories go (default: the workspace's profiles/).
    #[arg(long, value_name = "DIR", conflicts_with = "check")]
    pub out: Option<PathBuf>,
    /// Do not replace profiles/: regenerate into target/profiles-check and run the drift gate
    /// (`cinch diff` against the committed profiles, as `cargo xtask test` does); exit 1 on drift.
    #[arg(long)]
    pub check: bool,
}

pub(crate) fn run(options: &Options) -> anyhow::Result<ExitCode> {
    let cinch = cinch_bin()?;
    if options.check {
        let gates = drift(&cinch)?;
        println!("==> profiles: drift gate");
        let mut failed = false;
        for g in &gates {
            match &g.failure {
                None => println!("ok: {}", g.note),
                Some(why) => {
                    failed = true;
                    println!("FAILED: {why}");
                }
            }
        }
        return Ok(if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        });
    }
    let out = match &options.out {
        Some(dir) => std::path::absolute(dir)?,
        None => workspace_root().join("profiles"),
    };
    if let Some(why) = missing_prerequisites() {
        bail!("cannot record the workloads: {why}");
    }
    cinch_tests::docker::Docker::try_ensure().map_err(anyhow::Error::msg)?;
    let started = Instant::now();
    for w in WORKLOADS {
        regenerate(&cinch, w, &out)?;
    }
    println!(
        "==> profiles: {} workloads regenerated into {} in {:.0} s",
        WORKLOADS.len(),
        out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// `$CINCH_BIN` when set, else a fresh `cargo build -p cinch`.
fn cinch_bin() -> anyhow::Result<PathBuf> {
    match std::env::var_os("CINCH_BIN") {
        Some(bin) => {
            let bin = PathBuf::from(bin);
            if !bin.is_file() {
                bail!("CINCH_BIN={} does not exist", bin.display());
            }
            Ok(std::path::absolute(&bin)?)
        }
        None => build_cinch(false),
    }
}

/// Why the workloads cannot be recorded here, if they cannot.
pub(crate) fn missing_prerequisites() -> Option<String> {
    if !is_root() {
        return Some("recording needs root".to_owned());
    }
    let mut missing: Vec<&str> = ["sh", "curl"]
        .into_iter()
        .chain(WORKLOADS.iter().flat_map(|w| w.needs.iter().copied()))
        .filter(|p| {
            if p.starts_with('/') {
                !Path::new(p).is_file()
            } else {
                !on_path(p)
            }
        })
        .collect();
    if !Path::new("/bin/busybox").is_file() {
        missing.push("/bin/busybox");
    }
    if !on_path("dockerd") {
        missing.push("dockerd");
    }
    (!missing.is_empty()).then(|| {
        format!(
            "not installed: {} (cargo xtask setup installs them)",
            missing.join(", ")
        )
    })
}

/// What one workload's regeneration gave.
pub(crate) struct Regenerated {
    pub dir: PathBuf,
    pub seconds: f64,
}

/// Records `w` [`RUNS`] times, then generates its profile, settings and report into
/// `out/<name>`, replacing what was there only once everything succeeded.
fn regenerate(cinch: &Path, w: &Workload, out: &Path) -> anyhow::Result<Regenerated> {
    let started = Instant::now();
    let dir = out.join(w.name);
    let stage = out.join(format!(".{}.new", w.name));
    let scratch = out.join(format!(".{}.runs", w.name));
    for d in [&stage, &scratch] {
        remove_dir(d)?;
    }
    let recordings = stage.join("recordings");
    std::fs::create_dir_all(&recordings)
        .with_context(|| format!("creating {}", recordings.display()))?;
    let mut names = Vec::new();
    for k in 1..=RUNS {
        let run_dir = scratch.join(format!("run-{k}"));
        record_run(cinch, w, k, &run_dir)?;
        let mut recorded: Vec<PathBuf> = json_files(&run_dir)?;
        if recorded.is_empty() {
            bail!("{} run {k}: record.sh wrote no recording", w.name);
        }
        recorded.sort();
        for rec in recorded {
            let stem = rec
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let name = format!("{stem}-{k}.json");
            std::fs::rename(&rec, recordings.join(&name))
                .with_context(|| format!("moving {}", rec.display()))?;
            names.push(format!("recordings/{name}"));
        }
    }
    names.sort();

    // Relative paths, run from the workload's directory: the report names the files as they
    // are kept, wherever the directory is.
    let mut generate = Command::new(cinch);
    generate
        .current_dir(&stage)
        .arg("generate")
        .args(w.generate)
        .args(["-o", "seccomp.json", "--caps-out", "settings.json"])
        .args(&names);
    let gen_out = output(&mut generate)?;
    let summary = String::from_utf8_lossy(&gen_out.stderr)
        .trim_end()
        .to_owned();
    if !gen_out.status.success() {
        bail!(
            "{}: `{}` failed ({}):\n{summary}",
            w.name,
            show(&generate),
            gen_out.status
        );
    }
    let mut report = Command::new(cinch);
    report.current_dir(&stage).args([
        "report",
        "--format",
        "markdown",
        "seccomp.json",
        "--caps",
        "settings.json",
    ]);
    let rep_out = output(&mut report)?;
    if !rep_out.status.success() {
        bail!(
            "{}: `{}` failed ({}): {}",
            w.name,
            show(&report),
            rep_out.status,
            String::from_utf8_lossy(&rep_out.stderr).trim_end()
        );
    }
    std::fs::write(stage.join("report.md"), &rep_out.stdout)
        .with_context(|| format!("writing {}", stage.join("report.md").display()))?;

    // Swap in the new directory.
    let old = out.join(format!(".{}.old", w.name));
    remove_dir(&old)?;
    if dir.exists() {
        std::fs::rename(&dir, &old).with_context(|| format!("moving {}", dir.display()))?;
    }
    std::fs::rename(&stage, &dir).with_context(|| format!("moving {}", stage.display()))?;
    remove_dir(&old)?;
    remove_dir(&scratch)?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "==> {}: {RUNS} runs, {} recordings, {seconds:.1} s\n    {}",
        w.name,
        names.len(),
        summary.replace('\n', "\n    ")
    );
    Ok(Regenerated { dir, seconds })
}

/// One `sh examples/workloads/record.sh NAME DIR`, on a free port, its output in DIR.log and
/// shown when it fails.
fn record_run(cinch: &Path, w: &Workload, k: u32, dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt as _;
    let script = workspace_root()
        .join("examples")
        .join("workloads")
        .join("record.sh");
    let log_path = dir.with_extension("log");
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let port = workload_port();
    let mut cmd = Command::new("sh");
    cmd.arg(&script)
        .arg(w.name)
        .arg(dir)
        .env("CINCH", cinch)
        .env("PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group, so that a run that hangs is stopped with all it started.
        .process_group(0);
    let shown = format!("PORT={port} {}", show(&cmd));
    let mut child = cmd
        .spawn()
        .with_context(|| format!("could not start `{shown}`"))?;
    let status = wait_or_stop(&mut child, RUN_TIMEOUT)?;
    if !status.is_some_and(|s| s.success()) {
        // Whatever the failed run left behind in its process group (a server, its recorder).
        // SAFETY: kill(2) on the group of the child just reaped; its id stays taken while any
        // member lives (and with none left, this is ESRCH).
        unsafe { libc::kill(-(child.id() as i32), libc::SIGTERM) };
    }
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    match status {
        Some(s) if s.success() => Ok(()),
        Some(s) => bail!(
            "{} run {k}: `{shown}` failed ({s}); it printed:\n{}",
            w.name,
            log.trim_end()
        ),
        None => bail!(
            "{} run {k}: `{shown}` did not finish within {} s and was stopped; it printed:\n{}",
            w.name,
            RUN_TIMEOUT.as_secs(),
            log.trim_end()
        ),
    }
}

/// The port the scripted runs serve on: record.sh's default, so that the settings' `listens`
/// name the same port on every regeneration, or any free one when something else holds it.
fn workload_port() -> u16 {
    const PORT: u16 = 18080;
    if std::net::TcpListener::bind(("127.0.0.1", PORT)).is_ok() {
        PORT
    } else {
        cinch_tests::free_port()
    }
}

/// The exit status, or None when `child` (a process group leader) had to be stopped: SIGTERM to
/// its group (record.sh cleans up on it), SIGKILL 10 s later.
fn wait_or_stop(
    child: &mut Child,
    timeout: Duration,
) -> anyhow::Result<Option<std::process::ExitStatus>> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let group = child.id() as i32;
    // SAFETY: kill(2) on the process group of a child we started and have not reaped.
    unsafe { libc::kill(-group, libc::SIGTERM) };
    let grace = Instant::now() + Duration::from_secs(10);
    while Instant::now() < grace {
        if child.try_wait()?.is_some() {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: as above.
    unsafe { libc::kill(-group, libc::SIGKILL) };
    child.wait()?;
    Ok(None)
}

fn json_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    Ok(std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect())
}

fn remove_dir(dir: &Path) -> anyhow::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", dir.display()))
        }
        _ => Ok(()),
    }
}

/// One workload through the drift gate.
pub(crate) struct Gate {
    pub workload: &'static str,
    /// None: no drift; Some: why it failed (drift, or the regeneration failed).
    pub failure: Option<String>,
    /// Notes for the summary (byte-identical or not, time taken).
    pub note: String,
}

/// The drift gate on our own profiles: every workload regenerated into `target/profiles-check`,
/// then `cinch diff --format markdown` against the committed `profiles/<workload>/`, the
/// markdown shown (and appended to `$GITHUB_STEP_SUMMARY` when set). Err only when the
/// workloads cannot be recorded here at all.
pub(crate) fn drift(cinch: &Path) -> anyhow::Result<Vec<Gate>> {
    if let Some(why) = missing_prerequisites() {
        bail!("{why}");
    }
    let committed = workspace_root().join("profiles");
    let scratch = target_dir()?.join("profiles-check");
    remove_dir(&scratch)?;
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    cinch_tests::docker::Docker::try_ensure().map_err(anyhow::Error::msg)?;
    let mut gates = Vec::new();
    for w in WORKLOADS {
        let old = committed.join(w.name);
        let gate = |failure: Option<String>, note: String| Gate {
            workload: w.name,
            failure,
            note,
        };
        if !old.join("seccomp.json").is_file() || !old.join("settings.json").is_file() {
            gates.push(gate(
                Some(format!(
                    "{} has no committed seccomp.json and settings.json: run `cargo xtask profiles`",
                    old.display()
                )),
                String::new(),
            ));
            continue;
        }
        let new = match regenerate(cinch, w, &scratch) {
            Ok(r) => r,
            Err(e) => {
                gates.push(gate(Some(format!("{e:#}")), String::new()));
                continue;
            }
        };
        // From the workspace root, so the markdown names profiles/<workload>/seccomp.json.
        let root = workspace_root();
        let rel = |p: PathBuf| p.strip_prefix(&root).map(Path::to_path_buf).unwrap_or(p);
        let mut diff = Command::new(cinch);
        diff.current_dir(&root)
            .args(["diff", "--format", "markdown", "--old-caps"])
            .arg(rel(old.join("settings.json")))
            .arg(rel(old.join("seccomp.json")))
            .arg(rel(new.dir.join("seccomp.json")))
            .arg("--new-caps")
            .arg(rel(new.dir.join("settings.json")));
        println!("==> {}", show(&diff));
        let out = output(&mut diff)?;
        let markdown = String::from_utf8_lossy(&out.stdout);
        println!("{}", markdown.trim_end());
        append_step_summary(w.name, &markdown);
        let identical = ["seccomp.json", "settings.json"].iter().all(|f| {
            matches!(
                (std::fs::read(old.join(f)), std::fs::read(new.dir.join(f))),
                (Ok(a), Ok(b)) if a == b
            )
        });
        let note = format!(
            "{}: {} ({:.1} s)",
            w.name,
            if identical {
                "seccomp.json and settings.json byte-identical to the committed ones"
            } else {
                "seccomp.json or settings.json differ from the committed ones"
            },
            new.seconds
        );
        let failure = match out.status.code() {
            Some(0) => None,
            Some(1) => Some(format!(
                "{}: drift, the workload needs more than profiles/{}/ allows (the markdown above names it); if intended, run `cargo xtask profiles` and commit",
                w.name, w.name
            )),
            _ => Some(format!(
                "{}: `{}` failed ({}): {}",
                w.name,
                show(&diff),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim_end()
            )),
        };
        gates.push(gate(failure, note));
    }
    Ok(gates)
}

/// GitHub Actions shows `$GITHUB_STEP_SUMMARY` on the run's page: the gate's markdown goes there
/// as the README recipe does.
fn append_step_summary(workload: &str, markdown: &str) {
    use std::io::Write as _;
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") else {
        return;
    };
    if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(path) {
        let _ = writeln!(f, "#### profiles/{workload}\n\n{}\n", markdown.trim_end());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each workload has its case in record.sh and a complete committed directory: the files
    /// the drift gate compares, the report, and the recordings of every run.
    #[test]
    fn every_workload_has_a_driver_and_a_committed_profile() {
        let root = workspace_root();
        let script = std::fs::read_to_string(root.join("examples/workloads/record.sh"))
            .expect("examples/workloads/record.sh");
        for w in WORKLOADS {
            assert!(
                script.contains(&format!("\n    {}) ", w.name)),
                "record.sh has no case for {}",
                w.name
            );
            let dir = root.join("profiles").join(w.name);
            for f in ["seccomp.json", "settings.json", "report.md"] {
                assert!(
                    dir.join(f).is_file(),
                    "{} is missing: run `cargo xtask profiles`",
                    dir.join(f).display()
                );
            }
            let recordings = json_files(&dir.join("recordings")).expect("recordings/");
            for k in 1..=RUNS {
                assert!(
                    recordings.iter().any(|r| r
                        .file_stem()
                        .is_some_and(|s| s.to_string_lossy().ends_with(&format!("-{k}")))),
                    "{}: no recording of run {k}",
                    dir.display()
                );
            }
            let settings: serde_json::Value = serde_json::from_slice(
                &std::fs::read(dir.join("settings.json")).expect("settings.json"),
            )
            .expect("settings.json is JSON");
            assert_eq!(settings["cap_drop"], serde_json::json!(["ALL"]));
        }
    }
}
