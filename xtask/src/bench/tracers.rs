//! What a workload runs under: nothing, the floor, cinch, bpftrace or strace.

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::bail;

use super::Bench;
use super::proc::{Running, wait_for_text};

/// How long a tracer gets to say it is attached (bpftrace compiles its script first).
const ATTACH_LIMIT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// No tracer: the baseline.
    None,
    /// `cinch bench-floor`: an empty program on `raw_syscalls:sys_enter`, what any recorder
    /// attached there pays.
    Floor,
    /// `cinch record -- WORKLOAD`.
    Cinch,
    /// The workload not traced, while `cinch record` records something else.
    Untraced,
    /// bpftrace counting the workload's syscalls per number.
    Bpftrace,
    /// `strace -f -c`.
    Strace,
}

impl Mode {
    pub(super) fn key(self) -> &'static str {
        match self {
            Mode::None => "none",
            Mode::Floor => "floor",
            Mode::Cinch => "cinch",
            Mode::Untraced => "cinch_untraced",
            Mode::Bpftrace => "bpftrace",
            Mode::Strace => "strace",
        }
    }

    /// Column heading.
    pub(super) fn label(self) -> &'static str {
        match self {
            Mode::None => "none",
            Mode::Floor => "floor",
            Mode::Cinch => "cinch",
            Mode::Untraced => "untraced",
            Mode::Bpftrace => "bpftrace",
            Mode::Strace => "strace -f",
        }
    }
}

/// `cinch bench-floor`, attached.
pub(super) struct Floor(Running);

impl Floor {
    pub(super) fn attach(b: &Bench, tag: &str) -> anyhow::Result<Floor> {
        let out = b.tmp.join(format!("{tag}-floor.out"));
        let mut running = Running::spawn_logged(
            Command::new(&b.cinch).arg("bench-floor"),
            &out,
            &b.tmp.join(format!("{tag}-floor.err")),
        )?;
        wait_for_text(&mut running, &out, "ready", ATTACH_LIMIT)?;
        Ok(Floor(running))
    }

    pub(super) fn pid(&self) -> u32 {
        self.0.pid()
    }

    pub(super) fn detach(mut self) -> anyhow::Result<()> {
        self.0.signal(libc::SIGINT);
        self.0.wait_ok(Duration::from_secs(10))?;
        Ok(())
    }
}

/// `cinch record` of an idle shell, attached: other processes run untraced while it records.
pub(super) struct Untraced(Running);

impl Untraced {
    pub(super) fn attach(b: &Bench, tag: &str) -> anyhow::Result<Untraced> {
        let out = b.tmp.join(format!("{tag}-untraced.out"));
        let mut cmd = Command::new(&b.cinch);
        cmd.args(["record", "-q", "-o"])
            .arg(b.tmp.join(format!("{tag}-untraced.json")))
            .args(["--", "/bin/sh", "-c", "echo ready; exec sleep 600"]);
        let mut running =
            Running::spawn_logged(&mut cmd, &out, &b.tmp.join(format!("{tag}-untraced.err")))?;
        // The shell runs only once cinch has attached and released it.
        wait_for_text(&mut running, &out, "ready", ATTACH_LIMIT)?;
        Ok(Untraced(running))
    }

    pub(super) fn pid(&self) -> u32 {
        self.0.pid()
    }

    pub(super) fn max_rss_kib(mut self) -> anyhow::Result<u64> {
        // Forwarded to the sleep; cinch then writes the recording and exits.
        self.0.signal(libc::SIGTERM);
        Ok(self.0.wait(Duration::from_secs(15))?.max_rss_kib)
    }
}

/// The command that runs `argv` under `mode`, for the modes that wrap the workload (none,
/// cinch, bpftrace, strace). `recording` is where cinch writes; `script` is the bpftrace
/// program.
pub(super) fn wrap(
    b: &Bench,
    mode: Mode,
    argv: &[OsString],
    recording: &Path,
    script: &str,
) -> anyhow::Result<Command> {
    let Some((program, args)) = argv.split_first() else {
        bail!("empty command");
    };
    let cmd = match mode {
        Mode::None | Mode::Floor | Mode::Untraced => {
            let mut cmd = Command::new(program);
            cmd.args(args);
            cmd
        }
        Mode::Cinch => {
            let mut cmd = Command::new(&b.cinch);
            cmd.args(["record", "-q", "-o"])
                .arg(recording)
                .arg("--")
                .args(argv);
            cmd
        }
        Mode::Bpftrace => {
            // bpftrace splits -c on spaces; every path here is the bench's own.
            let line: Vec<String> = argv
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            if line.iter().any(|a| a.contains(' ')) {
                bail!(
                    "bpftrace -c cannot run a path with a space: {}",
                    line.join(" ")
                );
            }
            let mut cmd = Command::new("bpftrace");
            cmd.arg(b.assets.join(script)).arg("-c").arg(line.join(" "));
            cmd
        }
        Mode::Strace => {
            let mut cmd = Command::new("strace");
            cmd.args(["-f", "-c", "-o", "/dev/null"]).args(argv);
            cmd
        }
    };
    Ok(cmd)
}
