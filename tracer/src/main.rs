//! `cinch`: record what a workload does in the kernel, and turn it into least-privilege runtime
//! settings (a seccomp profile and a capability allowlist).

mod agent;
mod cap_checks;
mod capture;
mod cli;
mod cmd;
mod containers;
mod enforce;
mod error;
mod kubernetes;
mod output;
mod probe;
mod procfs;
mod prove;
mod ready;
mod signals;
mod spawn;
mod tracefs;

use std::process::ExitCode;

use clap::error::ErrorKind;

fn main() -> ExitCode {
    return_large_buffers();
    let cli = match cli::Cli::parse_checked() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    init_logging(cli.verbose);
    match cmd::dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("cinch: {}", error::sentence(&err));
            ExitCode::from(error::exit_code(&err))
        }
    }
}

/// Loading parses the kernel's BTF three times (several MB each) and reads /proc/kallsyms, then
/// the tracer idles for as long as the workload runs. glibc raises its mmap threshold when a
/// large block is freed and keeps freed heap memory: both would hold the parses' memory for the
/// whole recording (and add up while they overlap). A fixed threshold and trimming on every free
/// give it back (the tracer allocates little once loaded).
fn return_large_buffers() {
    // SAFETY: mallopt only sets allocator parameters; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 0);
    }
}

/// Help and version go to stdout as clap prints them; a usage error is one line on stderr and
/// exit 2 (docs/CLI.md), not clap's multi-line block.
fn usage_error(e: clap::Error) -> ExitCode {
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let text = e.render().to_string();
    let line: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more information")
        })
        .map(|l| l.strip_prefix("error: ").unwrap_or(l))
        .collect();
    eprintln!("cinch: {} (see --help)", line.join(" "));
    ExitCode::from(2)
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
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .without_time()
        .init();
}
