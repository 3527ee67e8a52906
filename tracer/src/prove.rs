//! `record --prove-caps`: whether each capability the command was granted really is needed, by
//! running the command again under its own generated profile (as `cinch run` loads it): twice
//! with every granted capability kept, then once without each. A capability whose removal
//! leaves the exit status unchanged is not needed by this command; `generate` then leaves it out
//! of `cap_add` and says why ([`profile_gen::allowlist`]). Capabilities the rules already rule
//! out (`profile_gen::cap_rules`) are tried too: the proof confirms the rule, or overturns it.
//!
//! What it cannot prove: a need the command's exit status does not show (a server that logs
//! an error and serves anyway), or one on a path this run did not take. Use it on deterministic
//! test runs whose status says whether they worked.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use profile_gen::Capability;
use profile_gen::allowlist::{self, CapSettings};
use profile_gen::formats::Format;
use profile_gen::generate::{self, GenerateOptions};
use profile_gen::observed::Observed;
use profile_gen::recording::{CapabilityProof, Recording};

use crate::error::input;

/// Proves the capabilities `recording` (of `argv`, which exited with `exit` after running for
/// `took`) was granted, into its `capability_proof`. Whatever becomes of the proof the recording
/// is kept: a proof that cannot run, or proves nothing, is a warning in it.
pub(crate) fn attach_proof(
    recording: &mut Recording,
    argv: &[String],
    user: Option<&str>,
    exit: u8,
    took: Duration,
    quiet: bool,
) {
    match prove(argv, user, recording, exit, took, quiet) {
        Ok(proof) => recording.capability_proof = proof,
        Err(e) => recording.warnings.push(format!(
            "--prove-caps could not run, nothing proven: {}",
            crate::error::sentence(&e)
        )),
    }
    if let Some(why) = recording
        .capability_proof
        .as_ref()
        .and_then(|p| p.inconclusive.as_ref())
    {
        recording.warnings.push(format!("--prove-caps: {why}"));
    }
}

/// Proves the capabilities `recording` (of `argv`, which exited with `recorded_exit` after
/// running for `took`) was granted. `None` when it was granted none.
fn prove(
    argv: &[String],
    user: Option<&str>,
    recording: &Recording,
    recorded_exit: u8,
    took: Duration,
    quiet: bool,
) -> anyhow::Result<Option<CapabilityProof>> {
    let observed = Observed::from_recording(PathBuf::from("recording"), recording);
    // Every capability it was granted: those the rules count as needs, and those they rule out
    // (a query, a syscall that failed anyway), whose verdict the proof confirms or overturns.
    let settings = allowlist::analyze(&observed).settings;
    let mut candidates = settings.cap_add;
    candidates.extend(settings.not_needed.into_keys());
    if candidates.is_empty() {
        return Ok(None);
    }
    let work = Scratch::create()?;
    let profile = work.0.join("seccomp.json");
    let generated = generate::generate(
        &[(PathBuf::from("recording"), recording.clone())],
        &GenerateOptions::default(),
    )
    .map_err(|e| input(format!("--prove-caps: cannot generate the profile: {e}")))?;
    let rendered = generated
        .render(Format::Docker, &profile, None)
        .map_err(|e| input(format!("--prove-caps: {e}")))?;
    crate::output::write_file(&profile, &rendered.profile)?;
    // Long enough for a slower run; a run past it counts as killed (128 + SIGKILL).
    let limit = took * 3 + Duration::from_secs(10);
    let run = |kept: &BTreeSet<Capability>, what: &str| -> anyhow::Result<u8> {
        let settings = work.0.join("caps.json");
        let caps = CapSettings::drop_all(kept.clone());
        crate::output::write_file(&settings, &caps.to_json())?;
        let exit = run_under(&profile, &settings, user, argv, limit)?;
        if !quiet {
            eprintln!("cinch: --prove-caps: {what}: exit {exit}");
        }
        Ok(exit)
    };
    let names = |set: &BTreeSet<Capability>| {
        set.iter()
            .map(|c| c.docker_name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let all = names(&candidates);
    let first = run(&candidates, &format!("with {all}"))?;
    let mut proof = CapabilityProof {
        exit_with_all: first,
        exit_without: Default::default(),
        inconclusive: None,
    };
    if first != recorded_exit {
        proof.inconclusive = Some(format!(
            "under its own profile with {all} the command exits {first}, not {recorded_exit} as while recorded: nothing proven"
        ));
        return Ok(Some(proof));
    }
    for cap in &candidates {
        let mut fewer = candidates.clone();
        fewer.remove(cap);
        let exit = run(&fewer, &format!("without {}", cap.docker_name()))?;
        proof.exit_without.insert(*cap, exit);
    }
    let again = run(&candidates, &format!("with {all}, again"))?;
    if again != first {
        proof.inconclusive = Some(format!(
            "with the same capabilities ({all}) the command exited {first}, then {again}: its outcome is not repeatable, nothing proven"
        ));
    }
    Ok(Some(proof))
}

/// `cinch run --profile PROFILE --caps SETTINGS [--user U] -- ARGV`, its output discarded, at
/// most `limit` long; its exit status as a shell reports it.
fn run_under(
    profile: &Path,
    settings: &Path,
    user: Option<&str>,
    argv: &[String],
    limit: Duration,
) -> anyhow::Result<u8> {
    let exe = std::env::current_exe()
        .map_err(|e| input(format!("--prove-caps: cannot find cinch itself: {e}")))?;
    let mut cmd = Command::new(exe);
    cmd.arg("run")
        .arg("--profile")
        .arg(profile)
        .arg("--caps")
        .arg(settings);
    if let Some(u) = user {
        cmd.args(["--user", u]);
    }
    cmd.arg("--")
        .args(argv)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd
        .spawn()
        .map_err(|e| input(format!("--prove-caps: cannot run cinch run: {e}")))?;
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(crate::capture::exit_code(status));
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(128 + 9);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A private directory under the temporary directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn create() -> anyhow::Result<Scratch> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!("cinch-prove-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&dir)
            .map_err(|e| input(format!("cannot create {}: {e}", dir.display())))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
