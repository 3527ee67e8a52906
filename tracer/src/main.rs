//! `cinch`: record what a workload does in the kernel, and turn it into least-privilege runtime
//! settings (a seccomp profile and a capability allowlist).

mod btf;
mod capabilities;
mod containers;
mod cli;
mod cmd;
mod error;
mod output;
mod probe;
mod procfs;
mod signals;
mod spawn;
mod tracefs;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_logging(cli.verbose);
    match cmd::dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("cinch: {}", error::sentence(&err));
            ExitCode::from(error::exit_code(&err))
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CINCH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .init();
}
