//! One module per subcommand.

mod agent;
mod bench_floor;
mod diff;
mod doctor;
mod generate;
mod record;
mod recording_profile;
mod report;
mod run;
mod verify;

use crate::cli::{Cli, Command};

/// Runs the chosen subcommand; the `u8` is the process exit code.
pub(crate) fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    let ready_fd = match &cli.command {
        Command::Record(a) => a.live.ready_fd,
        Command::Verify(a) => a.live.ready_fd,
        _ => None,
    };
    if let Some(fd) = ready_fd {
        crate::ready::take(fd)?;
    }
    match cli.command {
        Command::Record(args) => record::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Diff(args) => diff::run(args),
        Command::Report(args) => report::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::BenchFloor => bench_floor::run(),
        Command::Run(args) => run::run(args),
        Command::Verify(args) => verify::run(args),
        Command::RecordingProfile(args) => recording_profile::run(args),
        Command::Agent(args) => agent::run(args),
    }
}
