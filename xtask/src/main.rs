//! `cargo xtask`: the project's own commands (the alias is in `.cargo/config.toml`).
//!
//! - `setup`: installs what a fresh Debian machine lacks to build and test cinch; idempotent.
//! - `demo`: set-up, build, then record / generate / enforce / report a small shipped workload.
//! - `test`: set-up, build, then every test tier with a per-tier and a total count.

mod demo;
mod setup;
mod test;
mod util;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask", about = "cinch's set-up, demo and test commands")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Install the prerequisites a fresh machine lacks (Debian packages, nightly rust-src,
    /// bpf-linker 0.13.0 built against LLVM 22, a mounted tracefs). A second run changes nothing.
    Setup,
    /// Set up, build cinch, record examples/demo/workload.sh, and turn the recording into a
    /// profile and a report (the steps that exist so far).
    Demo,
    /// Set up, build cinch, and run the unit, privileged and end-to-end tiers.
    Test,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Setup => setup::run().map(|_| ExitCode::SUCCESS),
        Cmd::Demo => demo::run(),
        Cmd::Test => test::run(),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}
