//! Processes the bench starts: waited for with a deadline and their peak RSS (wait4), and
//! stopped by their own pid when the bench is done with them or fails half-way.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::util::show;

/// How a process ended.
#[derive(Debug, Clone, Copy)]
pub(super) struct Exit {
    /// The exit code, or 128 + the signal that killed it (as a shell says it).
    pub code: i32,
    /// Peak resident set size in KiB, from wait4(): the larger of the process's own and that of
    /// the largest descendant it waited for.
    pub max_rss_kib: u64,
    /// From spawn to reaping.
    pub wall: Duration,
}

/// A started process; stopped (SIGTERM, then SIGKILL) on drop if it is still running.
pub(super) struct Running {
    child: Child,
    shown: String,
    started: Instant,
    exit: Option<Exit>,
}

impl Running {
    pub(super) fn spawn(cmd: &mut Command) -> anyhow::Result<Running> {
        let shown = show(cmd);
        let started = Instant::now();
        let child = cmd
            .spawn()
            .with_context(|| format!("could not start `{shown}`"))?;
        Ok(Running {
            child,
            shown,
            started,
            exit: None,
        })
    }

    /// Starts `cmd` with stdin closed, stdout into `stdout` and stderr into `stderr`.
    pub(super) fn spawn_logged(
        cmd: &mut Command,
        stdout: &Path,
        stderr: &Path,
    ) -> anyhow::Result<Running> {
        let out = std::fs::File::create(stdout)
            .with_context(|| format!("creating {}", stdout.display()))?;
        let err = std::fs::File::create(stderr)
            .with_context(|| format!("creating {}", stderr.display()))?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        Running::spawn(cmd)
    }

    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The write end of the process's stdin, when it was piped.
    pub(super) fn take_stdin(&mut self) -> Option<std::process::ChildStdin> {
        self.child.stdin.take()
    }

    pub(super) fn shown(&self) -> &str {
        &self.shown
    }

    pub(super) fn signal(&self, signal: i32) {
        if self.exit.is_none() {
            // SAFETY: kill(2) on the pid of a child we have not reaped: it cannot name another
            // process.
            unsafe {
                libc::kill(self.child.id() as libc::pid_t, signal);
            }
        }
    }

    /// Reaps the process if it has exited.
    fn try_reap(&mut self) -> anyhow::Result<Option<Exit>> {
        if let Some(exit) = self.exit {
            return Ok(Some(exit));
        }
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointers to locals; the pid is our unreaped child.
        let pid = unsafe {
            libc::wait4(
                self.child.id() as libc::pid_t,
                &mut status,
                libc::WNOHANG,
                &mut usage,
            )
        };
        if pid == 0 {
            return Ok(None);
        }
        if pid < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                return Ok(None);
            }
            return Err(e).with_context(|| format!("waiting for `{}`", self.shown));
        }
        let code = if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else if libc::WIFSIGNALED(status) {
            128 + libc::WTERMSIG(status)
        } else {
            -1
        };
        let exit = Exit {
            code,
            max_rss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
            wall: self.started.elapsed(),
        };
        self.exit = Some(exit);
        Ok(Some(exit))
    }

    /// Waits for the process to exit, at most `limit`; an error naming it when it does not.
    /// Polls every millisecond at first (start-up times are measured this way) and every 10 ms
    /// after half a second, so a long wait does not keep a core busy waking up.
    pub(super) fn wait(&mut self, limit: Duration) -> anyhow::Result<Exit> {
        loop {
            if let Some(exit) = self.try_reap()? {
                return Ok(exit);
            }
            let elapsed = self.started.elapsed();
            if elapsed > limit {
                self.stop();
                bail!(
                    "`{}` did not finish within {} s; stopped it",
                    self.shown,
                    limit.as_secs()
                );
            }
            std::thread::sleep(if elapsed < Duration::from_millis(500) {
                Duration::from_millis(1)
            } else {
                Duration::from_millis(10)
            });
        }
    }

    /// Waits and requires exit status 0.
    pub(super) fn wait_ok(&mut self, limit: Duration) -> anyhow::Result<Exit> {
        let exit = self.wait(limit)?;
        if exit.code != 0 {
            bail!("`{}` failed (exit {})", self.shown, exit.code);
        }
        Ok(exit)
    }

    /// SIGTERM, then SIGKILL if it is still running two seconds later; reaps it.
    pub(super) fn stop(&mut self) {
        if self.exit.is_some() {
            return;
        }
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if matches!(self.try_reap(), Ok(Some(_)) | Err(_)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.signal(libc::SIGKILL);
        let _ = self.child.wait();
        self.exit = Some(Exit {
            code: 128 + libc::SIGKILL,
            max_rss_kib: 0,
            wall: self.started.elapsed(),
        });
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits until `path` contains `needle` (a tracer saying it is attached), or the process
/// exits, or `limit` passes.
pub(super) fn wait_for_text(
    running: &mut Running,
    path: &Path,
    needle: &str,
    limit: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return Ok(());
        }
        if let Some(exit) = running.try_reap()? {
            bail!(
                "`{}` exited ({}) before printing `{needle}`",
                running.shown(),
                exit.code
            );
        }
        if Instant::now() > deadline {
            bail!(
                "`{}` did not print `{needle}` within {} s",
                running.shown(),
                limit.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
