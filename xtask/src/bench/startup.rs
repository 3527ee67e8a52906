//! Start-up: the wall time of `cinch record -- /bin/true` against `/bin/true` alone (spawn to
//! reap, as a user waits for it), interleaved; and the recorder's peak RSS there.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use super::proc::Running;
use super::recording::RecordingCheck;
use super::stats::Samples;
use super::{Bench, RssSample};

const LIMIT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Default)]
pub(super) struct StartupResult {
    /// Milliseconds.
    pub bare: Samples,
    /// Milliseconds.
    pub cinch: Samples,
}

impl StartupResult {
    /// Median milliseconds cinch adds.
    pub(super) fn added_ms(&self) -> Option<f64> {
        Some(self.cinch.median()? - self.bare.median()?)
    }

    pub(super) fn to_json(&self) -> Value {
        json!({
            "unit": "ms, from spawn to reap",
            "bare_true": self.bare.to_json(),
            "cinch_record_true": self.cinch.to_json(),
            "added_ms_median": self.added_ms().map(super::stats::round2),
        })
    }
}

pub(super) fn run(b: &mut Bench) -> anyhow::Result<StartupResult> {
    let reps = if b.quick { 3 } else { 10 };
    println!("==> bench: start-up, {reps} repetitions");
    let mut r = StartupResult::default();
    let recording = b.tmp.join("rec-startup.json");
    for i in 0..reps {
        b.wait_quiet();
        let mut bare = Command::new("/bin/true");
        bare.stdin(Stdio::null());
        let exit = Running::spawn(&mut bare)?.wait_ok(LIMIT)?;
        r.bare.push(exit.wall.as_secs_f64() * 1e3);

        let mut cinch = Command::new(&b.cinch);
        cinch
            .args(["record", "-q", "-o"])
            .arg(&recording)
            .args(["--", "/bin/true"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let exit = Running::spawn(&mut cinch)?.wait_ok(LIMIT)?;
        r.cinch.push(exit.wall.as_secs_f64() * 1e3);
        b.rss.push(RssSample {
            what: format!("cinch record -- /bin/true (repetition {})", i + 1),
            kib: exit.max_rss_kib,
        });
        b.checks.push(RecordingCheck::read(
            format!("/bin/true under cinch record, repetition {}", i + 1),
            &recording,
            "execve",
            1,
            1,
        )?);
    }
    println!(
        "    /bin/true {:.1} ms, cinch record -- /bin/true {:.1} ms (medians)",
        r.bare.median().unwrap_or(f64::NAN),
        r.cinch.median().unwrap_or(f64::NAN)
    );
    Ok(r)
}
