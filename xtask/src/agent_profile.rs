//! `cargo xtask agent-profile`: the agent's own seccomp profile, `deploy/cinch-agent.json`,
//! recorded by cinch itself. `cinch record -- cinch agent` runs three times on a node where pod
//! containers come and go ([`crate::node`]), the second and third over the first's output
//! directory (an agent that restarts reads it), each scraped on `/metrics` and `/healthz` and
//! stopped with SIGTERM; `cinch generate --format kubernetes --runtime-baseline runc` merges the
//! three recordings into the OCI profile the DaemonSet names (`localhostProfile:
//! cinch/cinch-agent.json`), with what runc does after installing the filter added (the agent's
//! start under a runtime is not in a recording of `cinch agent` started by cinch).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::node::{self, Node};
use crate::soak::Guarded;
use crate::util::{build_cinch, output, show, target_dir, workspace_root};

const ROUNDS: usize = 3;
/// Pod containers per round (and one container outside a pod for every three).
const CONTAINERS: usize = 9;

pub(crate) fn run() -> anyhow::Result<ExitCode> {
    let cinch = build_cinch(true)?;
    let dir = target_dir()?.join("agent-profile");
    let node = Node::start(&dir)?;
    let out = dir.join("out");
    let _ = std::fs::remove_dir_all(&out);
    let mut recordings = Vec::new();
    for round in 0..ROUNDS {
        let rec = dir.join(format!("agent-{round}.json"));
        record_round(&cinch, &node, &out, &rec)?;
        recordings.push(rec);
    }
    drop(node);
    let profile = workspace_root().join("deploy/cinch-agent.json");
    let mut cmd = Command::new(&cinch);
    cmd.args([
        "generate",
        "--format",
        "kubernetes",
        "--runtime-baseline",
        "runc",
        "-o",
    ])
    .arg(&profile)
    .args(&recordings)
    .stdout(Stdio::null());
    println!("==> {}", show(&cmd));
    let generated = output(&mut cmd)?;
    if !generated.status.success() {
        bail!(
            "cinch generate failed: {}",
            String::from_utf8_lossy(&generated.stderr)
        );
    }
    print!("{}", String::from_utf8_lossy(&generated.stderr));
    println!("wrote {}", profile.display());
    Ok(ExitCode::SUCCESS)
}

/// One recorded run of the agent: start, containers, scrapes, SIGTERM.
fn record_round(cinch: &Path, node: &Node, out: &Path, rec: &PathBuf) -> anyhow::Result<()> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut cmd = Command::new(cinch);
    cmd.args(["record", "-q", "-o"])
        .arg(rec)
        .args(["--", &cinch.display().to_string(), "agent", "--output"])
        .arg(out)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--node", "rec"])
        .stdin(Stdio::null());
    println!("==> {}", show(&cmd));
    let mut recorder = Guarded(
        cmd.spawn()
            .with_context(|| format!("starting `{}`", show(&cmd)))?,
    );
    let ready_by = Instant::now() + Duration::from_secs(60);
    while node::get(port, "/healthz").is_err() {
        if Instant::now() > ready_by || recorder.0.try_wait()?.is_some() {
            bail!("the recorded agent did not answer on 127.0.0.1:{port}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    for i in 0..CONTAINERS {
        if !node.run_pod(i % node.pods.len()) {
            bail!("a pod container did not run");
        }
        if i % 3 == 2 && !node.run_other() {
            bail!("a container outside a pod did not run");
        }
        for path in ["/metrics", "/healthz", "/nope"] {
            node::get(port, path)?;
        }
    }
    // Long enough for a profile to be written again (every 2 s at most).
    std::thread::sleep(Duration::from_secs(3));
    let recorded = node::metrics(port)?
        .get("cinch_agent_recordings_total")
        .copied()
        .unwrap_or(0);
    if recorded != CONTAINERS as u64 {
        bail!("the recorded agent wrote {recorded} recordings of {CONTAINERS} pod containers");
    }
    // `record` forwards a SIGTERM it gets from a process to the agent, then writes.
    // SAFETY: kill(2) on our child, not reaped yet.
    let _ = unsafe { libc::kill(recorder.0.id() as i32, libc::SIGTERM) };
    let status = recorder.0.wait().context("waiting for cinch record")?;
    if !status.success() {
        bail!("cinch record -- cinch agent exited with {status}");
    }
    Ok(())
}
