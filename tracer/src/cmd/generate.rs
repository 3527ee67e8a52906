//! `cinch generate`: merge recordings into a validated profile (and capability settings), write
//! them atomically, and print a short summary on stderr. With `--format kubernetes` the
//! Pod manifest naming the profile goes to stdout.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::ValueEnum as _;
use profile_gen::baseline::Runtime;
use profile_gen::files;
use profile_gen::formats::Format;
use profile_gen::generate::{self, BaselineChoice, GenerateOptions};

use crate::cli::{DefaultErrno, GenerateArgs, ProfileFormat, RuntimeBaseline};
use crate::error::input;

fn format(f: ProfileFormat) -> Format {
    match f {
        ProfileFormat::Docker => Format::Docker,
        ProfileFormat::Oci => Format::Oci,
        ProfileFormat::Kubernetes => Format::Kubernetes,
        ProfileFormat::Spo => Format::Spo,
    }
}

fn options(args: &GenerateArgs) -> GenerateOptions {
    GenerateOptions {
        baseline: match args.runtime_baseline {
            None => BaselineChoice::Auto,
            Some(RuntimeBaseline::Runc) => BaselineChoice::Use(Runtime::Runc),
            Some(RuntimeBaseline::Crun) => BaselineChoice::Use(Runtime::Crun),
            Some(RuntimeBaseline::None) => BaselineChoice::None,
        },
        default_errno: match args.default_errno {
            DefaultErrno::Eperm => generate::DefaultErrno::Eperm,
            DefaultErrno::Enosys => generate::DefaultErrno::Enosys,
        },
    }
}

/// The same file, whether or not it exists yet.
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// Refuses output paths that would overwrite an input or each other.
fn check_outputs(args: &GenerateArgs) -> anyhow::Result<()> {
    for (flag, value) in [("--name", &args.name), ("--namespace", &args.namespace)] {
        if let Some(value) = value
            && args.format != ProfileFormat::Spo
        {
            return Err(input(format!(
                "{flag} {value:?} is for an SPO SeccompProfile resource, but --format is {}; add --format spo or drop {flag}",
                args.format
                    .to_possible_value()
                    .map_or_else(String::new, |v| v.get_name().to_owned())
            )));
        }
    }
    let mut outputs: Vec<(&str, &PathBuf)> = vec![("the profile", &args.output)];
    if let Some(caps) = &args.caps_out {
        if same_file(caps, &args.output) {
            return Err(input(format!(
                "--caps-out and -o both name {}; give the capability settings their own file",
                caps.display()
            )));
        }
        outputs.push(("the capability settings", caps));
    }
    for (what, out) in outputs {
        if let Some(rec) = args.recordings.iter().find(|r| same_file(r, out)) {
            return Err(input(format!(
                "refusing to overwrite recording {} with {what}; choose another output path",
                rec.display()
            )));
        }
    }
    Ok(())
}

pub(super) fn run(args: GenerateArgs) -> anyhow::Result<u8> {
    check_outputs(&args)?;
    let mut recordings = Vec::with_capacity(args.recordings.len());
    for path in &args.recordings {
        let rec = profile_gen::read_recording(path).map_err(|e| input(e.to_string()))?;
        tracing::info!(
            recording = %path.display(),
            schema = rec.schema_version,
            target = ?rec.target,
            startup_observed = rec.startup_observed,
            syscalls = rec.syscalls.values().map(Vec::len).sum::<usize>(),
            capability_checks = rec.capabilities.len(),
            "read"
        );
        recordings.push((path.clone(), rec));
    }
    let generated =
        generate::generate(&recordings, &options(&args)).map_err(|e| input(e.to_string()))?;
    tracing::info!(
        allowed = generated.profile.allow.len(),
        architectures = ?generated.profile.architectures,
        baseline = ?generated.baseline.as_ref().map(|b| b.runtime),
        kernel_issued = ?generated.profile.kernel_issued,
        clone3_refused = generated.clone3_refused,
        bpf_instructions = generated.validated.instructions,
        unchecked = ?generated.validated.unchecked,
        "generated and compiled"
    );
    for (name, decision) in &generated.arguments {
        tracing::debug!(syscall = %name, ?decision, "argument conditions");
    }
    let rendered = generated
        .render_in(
            format(args.format),
            &args.output,
            args.name.as_deref(),
            args.namespace.as_deref(),
        )
        .map_err(|e| input(e.to_string()))?;
    let caps_json = generated.caps.settings.to_json();
    let mut files: Vec<(&Path, &[u8])> = vec![(args.output.as_path(), rendered.profile.as_slice())];
    if let Some(caps) = &args.caps_out {
        files.push((caps.as_path(), caps_json.as_slice()));
    }
    files::write_atomic_all(&files).map_err(|e| input(e.to_string()))?;

    let mut summary = format!(
        "cinch: wrote {} ({} format) from {} recording{}",
        args.output.display(),
        format(args.format).as_str(),
        recordings.len(),
        if recordings.len() == 1 { "" } else { "s" }
    );
    if let Some(caps) = &args.caps_out {
        summary.push_str(&format!(" and capability settings {}", caps.display()));
    }
    summary.push('\n');
    for line in generated.summary() {
        summary.push_str("  ");
        summary.push_str(&line);
        summary.push('\n');
    }
    // The files are written; a closed stderr is not worth failing for.
    let _ = std::io::stderr().lock().write_all(summary.as_bytes());
    if let Some(manifest) = rendered.manifest {
        std::io::stdout()
            .lock()
            .write_all(manifest.as_bytes())
            .map_err(|e| input(format!("cannot print the Pod manifest on stdout: {e}")))?;
    }
    Ok(0)
}
