//! `cinch record`: picks the target from the flags, captures it ([`crate::capture`]) and writes
//! the Recording (one per container with `--new-containers`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use profile_gen::Recording;

use crate::capture::{self, Captured, NewContainers};
use crate::cli::{RecordArgs, RuntimeName};
use crate::containers::Engine;
use crate::error::input;
use crate::spawn::User;

pub(super) fn run(args: RecordArgs) -> anyhow::Result<u8> {
    if args.containers.new_containers {
        return record_new_containers(&args);
    }
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| "cinch-recording.json".into());
    crate::output::check_writable(&output)?;
    if let Some(reference) = &args.containers.container {
        let recording = capture::capture_container(
            reference,
            engine(args.containers.runtime),
            args.duration,
            args.live.quiet,
        )?;
        write(&output, &recording)?;
        return Ok(0);
    }
    if let Some(pid) = args.pid {
        let recording = capture::capture_pid(pid, args.duration, args.live.quiet)?;
        write(&output, &recording)?;
        return Ok(0);
    }
    let user = args.user.as_deref().map(User::parse).transpose()?;
    let started = std::time::Instant::now();
    match capture::capture_command(&args.command, user, args.live.quiet)? {
        Captured::NotStarted(message) => {
            eprintln!("cinch: {message}");
            Ok(127)
        }
        Captured::Recorded {
            mut recording,
            exit,
        } => {
            if args.prove_caps {
                crate::prove::attach_proof(
                    &mut recording,
                    &args.command,
                    args.user.as_deref(),
                    exit,
                    started.elapsed(),
                    args.live.quiet,
                );
            }
            write(&output, &recording)?;
            Ok(exit)
        }
    }
}

fn record_new_containers(args: &RecordArgs) -> anyhow::Result<u8> {
    let dir = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from("cinch-recordings"));
    prepare_dir(&dir)?;
    if args.command.is_empty() && args.duration.is_none() {
        eprintln!("cinch: recording new containers until interrupted (Ctrl-C)");
    }
    let got = capture::capture_new_containers(&args.command, args.duration, args.live.quiet)?;
    write_new_containers(&dir, &got)?;
    Ok(got.exit.unwrap_or(0))
}

/// The container engine `--runtime` names.
pub(super) fn engine(runtime: Option<RuntimeName>) -> Option<Engine> {
    runtime.map(|r| match r {
        RuntimeName::Docker => Engine::Docker,
        RuntimeName::Podman => Engine::Podman,
        RuntimeName::Containerd => Engine::Containerd,
        RuntimeName::Crio => Engine::Crio,
    })
}

/// Writes each container's recording into `dir`, and says what was not recorded.
pub(super) fn write_new_containers(dir: &Path, got: &NewContainers) -> anyhow::Result<()> {
    for name in &got.never_started {
        eprintln!(
            "cinch: warning: container {name} never reached its entrypoint (no seccomp install, no execve); nothing recorded"
        );
    }
    for (file, recording) in &got.recordings {
        write(&dir.join(file), recording)?;
    }
    if got.slots_exhausted > 0 {
        eprintln!(
            "cinch: warning: {} new containers (or other new mount namespaces) found no free target slot ({} per run) and were not recorded",
            got.slots_exhausted,
            capture::SLOTS
        );
    }
    if got.recordings.is_empty() {
        eprintln!("cinch: no container started while recording");
    }
    Ok(())
}

/// Writes one recording and prints its warnings and one summary line (also with --quiet, which
/// only silences the live status).
pub(super) fn write(path: &Path, recording: &Recording) -> anyhow::Result<()> {
    let mut json = serde_json::to_vec_pretty(recording).context("serializing the recording")?;
    json.push(b'\n');
    crate::output::write_file(path, &json)?;
    let distinct: usize = recording.syscalls.values().map(Vec::len).sum();
    let per_arch: Vec<String> = recording
        .syscalls
        .iter()
        .map(|(a, v)| format!("{a}: {}", v.len()))
        .collect();
    let lost = recording.lost.syscalls + recording.lost.map_full;
    for w in &recording.warnings {
        eprintln!("cinch: warning: {w}");
    }
    let needed: BTreeSet<&str> = recording
        .capabilities
        .iter()
        .filter(|c| c.granted && profile_gen::cap_rules::not_a_need(c).is_none())
        .filter_map(|c| c.name.as_deref())
        .collect();
    let caps = if needed.is_empty() {
        "no capabilities".to_owned()
    } else {
        format!(
            "capabilities {}",
            needed.into_iter().collect::<Vec<_>>().join(", ")
        )
    };
    eprintln!(
        "cinch: recorded {distinct} distinct syscalls ({}) and {caps} from {} processes, {lost} lost -> {}",
        per_arch.join(", "),
        recording.processes_seen,
        path.display()
    );
    Ok(())
}

/// The directory `--new-containers` writes into: created (owned by the sudo user) if missing.
pub(super) fn prepare_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(input(format!(
            "{} is not a directory; --new-containers writes one recording per container into a directory",
            dir.display()
        )));
    }
    profile_gen::files::create_dir_all_for_user(dir).map_err(|e| {
        input(format!(
            "cannot create directory {}: {}",
            dir.display(),
            profile_gen::files::io_message(&e)
        ))
    })?;
    crate::output::check_writable(&dir.join("probe.json"))
}
