//! `cinch report PROFILE [--caps SETTINGS]`: attack surface, dangerous syscalls and
//! capabilities, and the settings to apply them.

use std::io::Write as _;

use profile_gen::allowlist::read_cap_settings;
use profile_gen::profile::{Target, read_profile};
use profile_gen::report;

use crate::cli::{ReportArgs, ReportFormat};
use crate::error::input;

pub(super) fn run(args: ReportArgs) -> anyhow::Result<u8> {
    let settings = match &args.caps {
        Some(path) => Some((
            path.clone(),
            read_cap_settings(path).map_err(|e| input(e.to_string()))?,
        )),
        None => None,
    };
    // Docker's conditions are read for this kernel and the capabilities the settings keep.
    let target = Target::new(
        &crate::procfs::kernel_release(),
        settings.as_ref().map(|(_, s)| s),
    );
    let profile = read_profile(&args.profile, &target).map_err(|e| input(e.to_string()))?;
    tracing::info!(
        kernel = %target.kernel_release,
        bounding = ?target.bounding,
        load_error = ?profile.load_error,
        "profile read as a runtime loads it"
    );
    let r = report::build(&profile, settings.as_ref().map(|(p, s)| (p.as_path(), s)));
    let text = match args.format {
        ReportFormat::Text => r.render_text(),
        ReportFormat::Markdown => r.render_markdown(),
        ReportFormat::Json => r.render_json(),
        ReportFormat::DockerRun => format!("{}\n", r.apply.docker_run),
        ReportFormat::Compose => r.apply.compose.clone(),
        ReportFormat::Kubernetes => r.apply.kubernetes.clone(),
    };
    let snippet_only = matches!(
        args.format,
        ReportFormat::DockerRun | ReportFormat::Compose | ReportFormat::Kubernetes
    );
    if let Some(w) = r.steady_state_only.as_ref().filter(|_| snippet_only) {
        eprintln!("cinch: warning: {w}");
    }
    let internal = settings
        .as_ref()
        .and_then(|(_, s)| s.network.as_ref())
        .is_some_and(|n| n.mode == profile_gen::network::NetworkMode::Internal);
    if internal && matches!(args.format, ReportFormat::DockerRun) {
        eprintln!(
            "cinch: note: the line runs on the internal network {}: create it once with `docker network create --internal {}`",
            profile_gen::snippets::INTERNAL_NETWORK,
            profile_gen::snippets::INTERNAL_NETWORK
        );
    }
    if snippet_only && settings.is_none() {
        eprintln!("cinch: no --caps SETTINGS.json given, so the capability settings are left out");
    }
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .map_err(|e| input(format!("cannot print the report on stdout: {e}")))?;
    Ok(0)
}
