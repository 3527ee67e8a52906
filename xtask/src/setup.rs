//! `cargo xtask setup`: everything a fresh Debian machine with rustup (stable and nightly) lacks
//! to build cinch and run all its test tiers. Each step checks first and acts only when
//! something is missing, so a second run changes nothing and takes a second or two.

use std::process::Command;

use anyhow::{Context as _, bail};

use crate::util::{as_root, on_path, output, run as run_cmd, show};

/// Debian packages: LLVM 22 for bpf-linker, libseccomp for profile validation and `cinch run`,
/// strace for the tests' ground truth, docker.io and busybox-static for the end-to-end tier,
/// bpftool for inspecting loaded programs, ruby to check the Vagrantfile, a C compiler and libc
/// headers for the privileged tests' workloads, podman for attaching to Podman containers.
const PACKAGES: &[&str] = &[
    "llvm-22-dev",
    "libseccomp-dev",
    "pkg-config",
    "strace",
    "docker.io",
    // ctr, for containers through containerd (docker.io depends on it; named for the tests).
    "containerd",
    "busybox-static",
    "bpftool",
    "ruby",
    "gcc",
    "libc6-dev",
    "podman",
    // The shipped workloads and profiles: curl drives the web servers, iproute2 and util-linux
    // give `ip`, `unshare` and `nsenter`, python3 is Debian's (not a pyenv shim), redis for the
    // redis profile.
    "curl",
    "iproute2",
    "util-linux",
    // capsh, for the tests that drop single capabilities.
    "libcap2-bin",
    "python3",
    "redis-server",
    "redis-tools",
    // `cargo xtask bench`: bpftrace and nginx + wrk to compare cinch with.
    "bpftrace",
    "nginx-light",
    "wrk",
    // `cargo xtask dist`: dpkg-shlibdeps for the package's Depends, and a clean Debian 12 to
    // install it on.
    "dpkg-dev",
    "debootstrap",
    // The settings' Kubernetes manifests are validated with kubernetes-validate (PyPI), in a
    // virtual environment of Debian's python3; the generated compose files are run with
    // docker-compose.
    "python3-venv",
    "docker-compose",
];

/// Components of the nightly toolchain: rust-src for `-Z build-std=core` (the eBPF object),
/// clippy to lint the eBPF crate for its real target.
const NIGHTLY_COMPONENTS: &[&str] = &["rust-src", "clippy"];

/// Components of the toolchain that builds the workspace (stable): `.ci/run` checks formatting
/// and lints with them; rustup's minimal profile leaves them out.
const STABLE_COMPONENTS: &[&str] = &["rustfmt", "clippy"];

const BPF_LINKER_VERSION: &str = "0.13.0";
/// `cargo deb`, for `cargo xtask dist`; 3.8.0 builds with rustc 1.85 and later.
const CARGO_DEB_VERSION: &str = "3.8.0";
const LLVM_PREFIX: &str = "/usr/lib/llvm-22";

const TRACEFS: &str = "/sys/kernel/tracing";

/// What one run did, to say so at the end.
#[derive(Default)]
pub(crate) struct Done {
    pub actions: Vec<String>,
}

pub(crate) fn run() -> anyhow::Result<Done> {
    println!("==> setup: checking prerequisites");
    let mut done = Done::default();
    debian_packages(&mut done)?;
    nightly(&mut done)?;
    stable_components(&mut done)?;
    bpf_linker(&mut done)?;
    cargo_deb(&mut done)?;
    tracefs(&mut done)?;
    podman_config(&mut done)?;
    kubernetes_validate(&mut done)?;
    if done.actions.is_empty() {
        println!(
            "==> setup: nothing to do ({} Debian packages, nightly {}, stable {}, bpf-linker {BPF_LINKER_VERSION}, cargo-deb {CARGO_DEB_VERSION}, tracefs: all in place)",
            PACKAGES.len(),
            NIGHTLY_COMPONENTS.join(" + "),
            STABLE_COMPONENTS.join(" + "),
        );
    } else {
        println!("==> setup: done:");
        for a in &done.actions {
            println!("    - {a}");
        }
    }
    Ok(done)
}

fn package_installed(name: &str) -> anyhow::Result<bool> {
    let out = output(Command::new("dpkg-query").args(["-W", "-f=${Status}", name]))?;
    Ok(out.status.success()
        && String::from_utf8_lossy(&out.stdout).trim() == "install ok installed")
}

fn debian_packages(done: &mut Done) -> anyhow::Result<()> {
    if !on_path("dpkg-query") || !on_path("apt-get") {
        bail!(
            "this is not a Debian-like system (no dpkg-query/apt-get); install by hand: {}",
            PACKAGES.join(" ")
        );
    }
    let mut missing = Vec::new();
    for p in PACKAGES {
        if !package_installed(p)? {
            missing.push(*p);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    println!(
        "==> setup: installing Debian packages: {}",
        missing.join(" ")
    );
    let mut update = as_root("apt-get")?;
    update.arg("update");
    run_cmd(&mut update)?;
    let mut install = as_root("env")?;
    install
        .args(["DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y"])
        .arg("--no-install-recommends")
        .args(&missing);
    run_cmd(&mut install).with_context(|| {
        format!(
            "installing {} (llvm-22-dev comes from bookworm-security on Debian 12; elsewhere add apt.llvm.org)",
            missing.join(" ")
        )
    })?;
    done.actions
        .push(format!("installed Debian packages: {}", missing.join(" ")));
    Ok(())
}

/// Installed components of `toolchain` (None: the active one); None when it is not installed.
fn components(toolchain: Option<&str>) -> anyhow::Result<Option<Vec<String>>> {
    let mut cmd = Command::new("rustup");
    cmd.current_dir(crate::util::workspace_root())
        .args(["component", "list", "--installed"]);
    if let Some(t) = toolchain {
        cmd.args(["--toolchain", t]);
    }
    let out = output(&mut cmd)?;
    if !out.status.success() {
        return Ok(None);
    }
    Ok(Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().to_owned())
            .collect(),
    ))
}

/// `rust-src` is listed bare, host components with the target (`clippy-x86_64-unknown-linux-gnu`).
fn has_component(installed: &[String], name: &str) -> bool {
    installed.iter().any(|c| {
        c == name
            || c.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|target| target.starts_with(std::env::consts::ARCH))
    })
}

fn nightly(done: &mut Done) -> anyhow::Result<()> {
    if !on_path("rustup") {
        bail!(
            "rustup is not installed; install it from https://rustup.rs, with the stable and nightly toolchains"
        );
    }
    let Some(installed) = components(Some("nightly"))? else {
        // aya-build runs `rustup run nightly`; any recent nightly builds the eBPF crate.
        let mut cmd = Command::new("rustup");
        cmd.args(["toolchain", "install", "nightly", "--profile", "minimal"]);
        for c in NIGHTLY_COMPONENTS {
            cmd.args(["--component", c]);
        }
        println!("==> setup: {}", show(&cmd));
        run_cmd(&mut cmd)?;
        done.actions.push(format!(
            "installed the nightly toolchain with {}",
            NIGHTLY_COMPONENTS.join(", ")
        ));
        return Ok(());
    };
    let missing: Vec<&str> = NIGHTLY_COMPONENTS
        .iter()
        .copied()
        .filter(|c| !has_component(&installed, c))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut cmd = Command::new("rustup");
    cmd.args(["component", "add"])
        .args(&missing)
        .args(["--toolchain", "nightly"]);
    println!("==> setup: {}", show(&cmd));
    run_cmd(&mut cmd)?;
    done.actions
        .push(format!("added to nightly: {}", missing.join(", ")));
    Ok(())
}

fn stable_components(done: &mut Done) -> anyhow::Result<()> {
    let installed =
        components(None)?.context("`rustup component list` failed for the active toolchain")?;
    let missing: Vec<&str> = STABLE_COMPONENTS
        .iter()
        .copied()
        .filter(|c| !has_component(&installed, c))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut cmd = Command::new("rustup");
    cmd.current_dir(crate::util::workspace_root())
        .args(["component", "add"])
        .args(&missing);
    println!("==> setup: {}", show(&cmd));
    run_cmd(&mut cmd)?;
    done.actions.push(format!(
        "added to the active toolchain: {}",
        missing.join(", ")
    ));
    Ok(())
}

fn bpf_linker_version() -> Option<String> {
    let out = Command::new("bpf-linker").arg("--version").output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn bpf_linker(done: &mut Done) -> anyhow::Result<()> {
    let current = bpf_linker_version();
    if current
        .as_deref()
        .is_some_and(|v| v.split_whitespace().any(|w| w == BPF_LINKER_VERSION))
    {
        return Ok(());
    }
    // Without LLVM_PREFIX llvm-sys looks for llvm-config on PATH and the link fails.
    let mut cmd = crate::util::cargo();
    cmd.env("LLVM_PREFIX", LLVM_PREFIX).args([
        "install",
        &format!("bpf-linker@{BPF_LINKER_VERSION}"),
        "--locked",
        "--no-default-features",
        "--features",
        "llvm-22",
    ]);
    if current.is_some() {
        cmd.arg("--force");
    }
    println!(
        "==> setup: bpf-linker {BPF_LINKER_VERSION} (found: {}): LLVM_PREFIX={LLVM_PREFIX} {}",
        current.as_deref().unwrap_or("none"),
        show(&cmd)
    );
    run_cmd(&mut cmd)?;
    match bpf_linker_version() {
        Some(v) if v.contains(BPF_LINKER_VERSION) => {}
        Some(v) => bail!(
            "after installing bpf-linker {BPF_LINKER_VERSION}, `bpf-linker --version` still says {v:?}: another bpf-linker comes first on PATH"
        ),
        None => bail!(
            "bpf-linker was installed into cargo's bin directory (~/.cargo/bin), which is not on PATH; add it and run again"
        ),
    }
    done.actions.push(format!(
        "installed bpf-linker {BPF_LINKER_VERSION} (LLVM 22)"
    ));
    Ok(())
}

fn cargo_deb_version() -> Option<String> {
    let out = Command::new("cargo-deb").arg("--version").output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn cargo_deb(done: &mut Done) -> anyhow::Result<()> {
    let current = cargo_deb_version();
    if current
        .as_deref()
        .is_some_and(|v| v.split_whitespace().any(|w| w == CARGO_DEB_VERSION))
    {
        return Ok(());
    }
    let mut cmd = crate::util::cargo();
    cmd.args([
        "install",
        &format!("cargo-deb@{CARGO_DEB_VERSION}"),
        "--locked",
    ]);
    if current.is_some() {
        cmd.arg("--force");
    }
    println!(
        "==> setup: cargo-deb {CARGO_DEB_VERSION} (found: {}): {}",
        current.as_deref().unwrap_or("none"),
        show(&cmd)
    );
    run_cmd(&mut cmd)?;
    match cargo_deb_version() {
        Some(v) if v.contains(CARGO_DEB_VERSION) => {}
        Some(v) => bail!(
            "after installing cargo-deb {CARGO_DEB_VERSION}, `cargo-deb --version` still says {v:?}: another cargo-deb comes first on PATH"
        ),
        None => bail!(
            "cargo-deb was installed into cargo's bin directory (~/.cargo/bin), which is not on PATH; add it and run again"
        ),
    }
    done.actions
        .push(format!("installed cargo-deb {CARGO_DEB_VERSION}"));
    Ok(())
}

/// `kubernetes-validate` at [`cinch_tests::kubernetes::VERSION`] in its own virtual environment
/// (Debian's python3 refuses `pip install` outside one), from PyPI.
fn kubernetes_validate(done: &mut Done) -> anyhow::Result<()> {
    use cinch_tests::kubernetes::{VENV, VERSION};
    let venv = std::path::Path::new(VENV);
    let installed =
        output(Command::new(venv.join("bin/pip")).args(["show", "kubernetes-validate"]))
            .ok()
            .is_some_and(|o| {
                o.status.success()
                    && String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .any(|l| l.trim() == format!("Version: {VERSION}"))
            });
    if installed {
        return Ok(());
    }
    if !venv.join("bin/pip").is_file() {
        let mut cmd = as_root("/usr/bin/python3")?;
        cmd.args(["-m", "venv", VENV]);
        println!("==> setup: {}", show(&cmd));
        run_cmd(&mut cmd)?;
    }
    let mut cmd = as_root(&format!("{VENV}/bin/pip"))?;
    cmd.args([
        "install",
        "--quiet",
        "--disable-pip-version-check",
        &format!("kubernetes-validate=={VERSION}"),
    ]);
    println!("==> setup: {}", show(&cmd));
    run_cmd(&mut cmd).context("installing kubernetes-validate from PyPI")?;
    done.actions.push(format!(
        "installed kubernetes-validate {VERSION} into {VENV}"
    ));
    Ok(())
}

fn tracefs_mounted() -> bool {
    std::fs::read_to_string("/proc/self/mounts").is_ok_and(|m| {
        m.lines()
            .any(|l| l.split_whitespace().nth(2) == Some("tracefs"))
    })
}

fn tracefs(done: &mut Done) -> anyhow::Result<()> {
    if tracefs_mounted() {
        return Ok(());
    }
    let mut cmd = as_root("mount")?;
    cmd.args(["-t", "tracefs", "nodev", TRACEFS]);
    println!("==> setup: {}", show(&cmd));
    run_cmd(&mut cmd)?;
    done.actions.push(format!("mounted tracefs on {TRACEFS}"));
    Ok(())
}

const CONTAINERS_CONF: &str = "/etc/containers/containers.conf";

/// Podman sets RLIMIT_NOFILE and RLIMIT_NPROC in every container to values above this
/// sandbox's hard limits (it lacks CAP_SYS_RESOURCE), so runc fails with "error setting
/// rlimits". Containers get limits that fit instead, and the runc runtime (crun fails on this
/// machine's hybrid cgroups).
fn podman_config(done: &mut Done) -> anyhow::Result<()> {
    let current = std::fs::read_to_string(CONTAINERS_CONF).unwrap_or_default();
    if current.contains("default_ulimits") {
        return Ok(());
    }
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given.
    let nofile = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } == 0 {
        rl.rlim_max.min(1_048_576)
    } else {
        1024
    };
    let conf = format!(
        "# Written by `cargo xtask setup`: limits that fit this machine's hard limits.\n\
         [containers]\ndefault_ulimits = [\"nofile={nofile}:{nofile}\", \"nproc=4096:4096\"]\n\n\
         [engine]\nruntime = \"runc\"\n"
    );
    std::fs::create_dir_all("/etc/containers")?;
    if !current.trim().is_empty() {
        std::fs::write(format!("{CONTAINERS_CONF}.orig"), &current)?;
    }
    std::fs::write(CONTAINERS_CONF, conf)?;
    done.actions.push(format!(
        "wrote {CONTAINERS_CONF} (container rlimits, runc runtime)"
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_names() {
        let installed: Vec<String> = [
            "cargo-x86_64-unknown-linux-gnu",
            "rust-src",
            "rust-std-x86_64-unknown-linux-gnu",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        assert!(has_component(&installed, "rust-src"));
        assert!(has_component(&installed, "cargo"));
        assert!(!has_component(&installed, "clippy"));
        assert!(!has_component(&installed, "rust"));
    }
}
