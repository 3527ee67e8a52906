//! `cargo xtask`: the project's own commands (the alias is in `.cargo/config.toml`).
//!
//! - `agent-profile`: records `cinch agent` with cinch into `deploy/cinch-agent.json`.
//! - `setup`: installs what a fresh Debian machine lacks to build and test cinch; idempotent.
//! - `demo`: set-up, build, then record / generate / enforce / report a small shipped workload.
//! - `test`: set-up, build, then every test tier with a per-tier and a total count.
//! - `bench`: set-up, build, then cinch's overhead against the floor, bpftrace and strace.
//! - `fuzz`: each cargo-fuzz target in `fuzz/` for N seconds.
//! - `soak`: cinch attached to a busy container for N minutes; memory and tracked tasks stay flat.
//!   `--agent`: `cinch agent` under N minutes of pod container churn; memory flat, nothing lost.
//! - `profiles`: regenerates the profiles in `profiles/` from recordings of the shipped workloads.
//! - `dist`: the Debian package (`target/dist/cinch_<version>_<arch>.deb`), `--check` installs it
//!   on a clean Debian 12 and records with it.
//! - `image`: the agent's container image `cinch-agent:<version>` (deploy/agent.yaml), from the
//!   Debian package on a minimal Debian 12 root with containerd's `ctr`, imported into Docker.

mod agent_profile;
mod bench;
mod demo;
mod dist;
mod fuzz;
mod image;
mod node;
mod profiles;
mod setup;
mod soak;
mod soak_agent;
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
    /// bpf-linker 0.13.0 built against LLVM 22, cargo-deb, a mounted tracefs). A second run
    /// changes nothing.
    Setup,
    /// Set up, build cinch, record examples/demo/workload.sh, and turn the recording into a
    /// profile and a report (the steps that exist so far).
    Demo,
    /// Set up, build cinch, and run the unit, privileged and end-to-end tiers.
    Test,
    /// Set up, build cinch (release) and the workloads, measure cinch's overhead against an
    /// empty BPF program, bpftrace and strace (interleaved), print the table and write
    /// target/bench/results.json. Needs root; about 6 minutes.
    Bench(bench::Options),
    /// Run each cargo-fuzz target (recording reader, profile reader, diff) for N seconds, one
    /// after the other, on the nightly toolchain; installs cargo-fuzz when missing.
    Fuzz(fuzz::Options),
    /// Attach `cinch record --container` to a busy container (>= 100k syscalls/s, processes
    /// coming and going) for N minutes; check tracer memory stays flat, exited processes are not
    /// kept in the tracking map, and the recording is complete. `--agent`: `cinch agent` while
    /// pod containers come and go under containerd for N minutes; memory stays flat and every
    /// container is one recording. Needs root and Docker.
    Soak(soak::Options),
    /// Build cinch (or use CINCH_BIN), record each shipped workload (busybox httpd in Docker,
    /// nginx, redis-server, Python's http.server) 3 times with examples/workloads/record.sh, and
    /// write profiles/<workload>/: the recordings, seccomp.json, settings.json, report.md.
    /// `--check` runs the drift gate instead. Needs root and Docker; about 20 s.
    Profiles(profiles::Options),
    /// Set up, then build the Debian package with `cargo deb` (release binary with the eBPF
    /// object inside) into target/dist/cinch_<version>_<arch>.deb, with a .sha256 next to it.
    /// `--check` also installs it on a clean Debian 12 (debootstrap, chroot) and records
    /// `/bin/true` with the installed cinch. Needs root for `--check`.
    Dist(dist::Options),
    /// Build cinch (release), record `cinch agent` with `cinch record` three times while pod
    /// containers come and go under containerd, and write the agent's own seccomp profile,
    /// deploy/cinch-agent.json. Needs root and Docker; about a minute after the build.
    AgentProfile,
    /// Build the cinch agent's container image, cinch-agent:<version> (deploy/agent.yaml):
    /// the Debian package and containerd (for `ctr`) installed on a minimal Debian 12 root
    /// (the cached debootstrap root of `dist`, in a chroot), cleaned of apt lists and docs,
    /// imported with `docker import`. Prints the image and its size. Needs root and Docker.
    Image,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Setup => setup::run().map(|_| ExitCode::SUCCESS),
        Cmd::Demo => demo::run(),
        Cmd::Test => test::run(),
        Cmd::Bench(options) => bench::run(&options),
        Cmd::Fuzz(options) => fuzz::run(&options),
        Cmd::Soak(options) => soak::run(&options),
        Cmd::Profiles(options) => profiles::run(&options),
        Cmd::Dist(options) => dist::run(&options),
        Cmd::AgentProfile => agent_profile::run(),
        Cmd::Image => image::run(),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}
