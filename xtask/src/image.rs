//! `cargo xtask image`: the container image the cinch agent's DaemonSet runs
//! (`deploy/agent.yaml`), `cinch-agent:<version>`, built from the project's Debian package
//! without a registry or a Dockerfile:
//!
//! 1. the package, as `cargo xtask dist` builds it (`crate::dist::build`);
//! 2. a fresh Debian 12 root from the pristine `debootstrap --variant=minbase` tarball cached
//!    in `target/dist/` (debootstrapped when missing or too old, as `dist --check` does);
//! 3. `apt-get install` of the package and of `containerd` (for `ctr`, which the agent asks
//!    about containers) in the root, each command chrooted in a mount namespace of its own
//!    (`crate::dist::in_root`), so nothing is written through the root's absolute links;
//!    dpkg is told first not to unpack what the agent never runs (containerd's daemon, shims
//!    and runc) nor documentation;
//! 4. apt's lists and caches, documentation (but the copyright files), man pages and logs
//!    removed, inside the root;
//! 5. `tar -C ROOT -c . | docker import --change 'ENTRYPOINT ["/usr/bin/cinch"]' --change
//!    'USER 0' - cinch-agent:<version>`, into the local daemon (the test harness starts
//!    `dockerd` when none answers);
//! 6. `docker run --pull never --entrypoint /usr/bin/cinch IMAGE --version` must name the
//!    version; the image name and size are printed.
//!
//! Needs root (chroot, mounts) and Docker; about a minute once the root is cached.

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};

use crate::dist;
use crate::util::{is_root, on_path, output, show};

/// The image's repository; the tag is the package's version.
const REPOSITORY: &str = "cinch-agent";
/// Debian packages installed next to cinch: `ctr`, containerd's client.
const PACKAGES: &[&str] = &["containerd"];
/// dpkg's configuration in the root, written before the install: of containerd's package only
/// `ctr` is used, so the daemon, its shims and runc (about 85 MiB) are never unpacked, and
/// neither are documentation (but the copyright files), man pages and translations.
const DPKG_EXCLUDES: &str = "set -e
cat > /etc/dpkg/dpkg.cfg.d/cinch-agent-image <<'EOF'
# cinch-agent image: the agent runs ctr only, never containerd, its shims or runc.
path-exclude=/usr/bin/containerd*
path-exclude=/usr/sbin/runc
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-exclude=/usr/share/lintian/*
EOF";
/// What is removed from the root before it is imported (inside the root, by a shell there):
/// apt's package lists and caches, documentation but the copyright files, logs, and the
/// package file copied in.
const CLEAN_UP: &str = "set -e
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/cache/debconf/*-old /var/log/* \
  /usr/share/man/* /usr/share/info/* /usr/share/lintian/* /usr/share/locale/*
find /usr/share/doc -mindepth 1 ! -type d ! -name copyright -delete
find /usr/share/doc -mindepth 1 -type d -empty -delete
rm -f /tmp/*.deb
mkdir -p /var/lib/cinch /run/containerd";

pub(crate) fn run() -> anyhow::Result<ExitCode> {
    crate::setup::run()?;
    if !is_root() {
        bail!("building the image needs root (a chroot with mounts, apt-get in it)");
    }
    for tool in ["tar", "dpkg-deb", "debootstrap", "docker"] {
        if !on_path(tool) {
            bail!("{tool} is not installed (cargo xtask setup installs it)");
        }
    }
    cinch_tests::docker::Docker::try_ensure().map_err(|why| anyhow!("no Docker daemon: {why}"))?;
    let started = Instant::now();

    let deb = dist::build()?;
    let version = dist::package_version(&deb)?;
    let image = format!("{REPOSITORY}:{version}");
    let dir = deb.parent().context("the package has no directory")?;
    let tarball = dist::rootfs_tarball(dir)?;
    let root = dir.join("image-root");
    dist::fresh_root(&tarball, &root)?;
    let package = dist::copy_into_root(&deb, &root)?;

    let mut install = vec!["install", "-y", "--no-install-recommends", &package];
    install.extend(PACKAGES);
    for (program, args, limit) in [
        ("/bin/sh", vec!["-c", DPKG_EXCLUDES], 60),
        ("/usr/bin/apt-get", vec!["update"], 300),
        ("/usr/bin/apt-get", install, 600),
        ("/bin/sh", vec!["-c", CLEAN_UP], 60),
    ] {
        let status = dist::in_root(&root, program, &args, Duration::from_secs(limit))?;
        if !status.success() {
            bail!(
                "`{program} {}` in {} failed ({status}); the root is kept for a look",
                args.join(" "),
                root.display()
            );
        }
    }

    import(&root, &image)?;
    dist::remove_root(&root)?;
    check(&image, &version)?;
    let size = image_size(&image)?;
    println!("==> image summary");
    println!("    {image}: {:.1} MiB", size as f64 / (1024.0 * 1024.0));
    println!("    from {}", deb.display());
    println!("    built in {:.0} s", started.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}

/// `tar -C ROOT -c . | docker import --change ... - IMAGE`.
fn import(root: &Path, image: &str) -> anyhow::Result<()> {
    let mut tar = Command::new("tar");
    tar.args(["--numeric-owner", "-C"])
        .arg(root)
        .args(["-c", "."])
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    let mut docker = Command::new("docker");
    docker.args([
        "import",
        "--change",
        r#"ENTRYPOINT ["/usr/bin/cinch"]"#,
        "--change",
        "USER 0",
        "-",
        image,
    ]);
    println!("==> {} | {}", show(&tar), show(&docker));
    let mut tar_child = tar
        .spawn()
        .with_context(|| format!("could not start `{}`", show(&tar)))?;
    let archive = tar_child
        .stdout
        .take()
        .context("tar's output is not a pipe")?;
    let imported = docker
        .stdin(Stdio::from(archive))
        .status()
        .with_context(|| format!("could not start `{}`", show(&docker)));
    let tarred = tar_child.wait().context("waiting for tar")?;
    let imported = imported?;
    if !tarred.success() {
        bail!("`{}` failed ({tarred})", show(&tar));
    }
    if !imported.success() {
        bail!("`{}` failed ({imported})", show(&docker));
    }
    Ok(())
}

/// The image runs cinch of `version`.
fn check(image: &str, version: &str) -> anyhow::Result<()> {
    let mut cmd = Command::new("docker");
    cmd.args([
        "run",
        "--rm",
        "--pull",
        "never",
        "--network",
        "none",
        "--entrypoint",
        "/usr/bin/cinch",
        image,
        "--version",
    ]);
    println!("==> {}", show(&cmd));
    let out = output(&mut cmd)?;
    let said = String::from_utf8_lossy(&out.stdout);
    print!("{said}");
    if !out.status.success() || said.trim() != format!("cinch {version}") {
        bail!(
            "`{}` did not print `cinch {version}` ({}): {said}{}",
            show(&cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// The image's size in bytes, as the daemon counts it.
fn image_size(image: &str) -> anyhow::Result<u64> {
    let out =
        output(Command::new("docker").args(["image", "inspect", "--format", "{{.Size}}", image]))?;
    if !out.status.success() {
        bail!("docker image inspect {image} failed ({})", out.status);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .parse()
        .with_context(|| format!("docker image inspect gave no size: {text:?}"))
}
