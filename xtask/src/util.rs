//! Running commands, and where things are.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use anyhow::{Context as _, bail};

/// The workspace root (xtask lives in `<root>/xtask`).
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The cargo that runs us (`$CARGO`), else the one on PATH.
pub(crate) fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(workspace_root());
    cmd
}

pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

pub(crate) use cinch_tests::on_path;

/// A command that needs root: itself when we are root, else through sudo.
pub(crate) fn as_root(program: &str) -> anyhow::Result<Command> {
    if is_root() {
        return Ok(Command::new(program));
    }
    if !on_path("sudo") {
        bail!("`{program}` needs root: run this as root, or install sudo");
    }
    let mut cmd = Command::new("sudo");
    cmd.arg(program);
    Ok(cmd)
}

/// `cmd` with its output shown; an error naming it unless it exits 0.
pub(crate) fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let shown = show(cmd);
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(())
}

/// `cmd` with its output collected (stdin closed); an error only when it cannot start.
pub(crate) fn output(cmd: &mut Command) -> anyhow::Result<Output> {
    let shown = show(cmd);
    cmd.stdin(Stdio::null())
        .output()
        .with_context(|| format!("could not start `{shown}`"))
}

/// The command as a user would type it.
pub(crate) fn show(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// cargo's target directory (honours CARGO_TARGET_DIR and `build.target-dir`).
pub(crate) fn target_dir() -> anyhow::Result<PathBuf> {
    let out = output(
        cargo()
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .stderr(Stdio::inherit()),
    )?;
    if !out.status.success() {
        bail!("`cargo metadata` failed ({})", out.status);
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("parsing `cargo metadata` output")?;
    meta["target_directory"]
        .as_str()
        .map(PathBuf::from)
        .context("`cargo metadata` gave no target_directory")
}

/// Builds the cinch binary and returns its absolute path.
pub(crate) fn build_cinch(release: bool) -> anyhow::Result<PathBuf> {
    let mut cmd = cargo();
    cmd.args(["build", "-p", "cinch"]);
    if release {
        cmd.arg("--release");
    }
    println!("==> {}", show(&cmd));
    run(&mut cmd)?;
    let bin = target_dir()?
        .join(if release { "release" } else { "debug" })
        .join("cinch");
    if !bin.is_file() {
        bail!("the build finished but {} does not exist", bin.display());
    }
    Ok(bin)
}
