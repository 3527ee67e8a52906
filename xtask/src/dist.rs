//! `cargo xtask dist [--check]`: cinch as a Debian package, for machines without the build chain
//! (nightly, rust-src, bpf-linker, LLVM).
//!
//! `cargo deb` (cargo-deb, installed by `cargo xtask setup`) builds cinch in release and packages
//! it as `[package.metadata.deb]` in tracer/Cargo.toml says. tracer/build.rs embeds the eBPF
//! object in the binary, so the binary is the whole program; its one runtime library besides
//! libc is libseccomp (`Depends:` is computed by dpkg-shlibdeps). Into cargo's target directory:
//!
//! ```text
//! target/dist/cinch_<version>_<arch>.deb         /usr/bin/cinch, README, copyright, the CI
//!                                                examples, /usr/share/cinch/recording-profile.json
//! target/dist/cinch_<version>_<arch>.deb.sha256  its checksum, as `sha256sum -c` reads it
//! ```
//!
//! `--check` (and the `dist` tier of `cargo xtask test`) then installs the package on a clean
//! Debian 12: a `debootstrap --variant=minbase bookworm` root, extracted fresh each run from a
//! pristine tarball cached in `target/dist/` (rebuilt when older than [`ROOTFS_MAX_AGE`]; delete
//! it to rebuild sooner), `apt-get install ./cinch_*.deb` in a chroot, then
//! `cinch record -- /bin/true` and `cinch generate` with the installed binary. The recording
//! must name `execve` and `exit_group`.
//!
//! Every command in the root runs in a mount namespace of its own, made in the child between
//! fork and exec: it gets proc, sysfs (for /sys/kernel/btf/vmlinux), tracefs, bpffs and devpts
//! mounted inside the root, and they disappear with the command, even when it is killed; they
//! never appear in the host's mount table. The mirror is the host's Debian mirror (its apt
//! sources), or `CINCH_DEBIAN_MIRROR`.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};
use serde_json::Value;

use crate::util::{cargo, is_root, on_path, output, run as run_cmd, show, target_dir};

/// The Debian release the package is built on and checked against.
const SUITE: &str = "bookworm";
/// A cached root older than this is rebuilt, so that its package lists stay close to the
/// mirror's.
const ROOTFS_MAX_AGE: Duration = Duration::from_secs(14 * 24 * 3600);
/// Syscalls any recording of `/bin/true` must name.
const EXPECTED_SYSCALLS: &[&str] = &["execve", "exit_group"];
/// Files the package must install.
const EXPECTED_FILES: &[&str] = &["./usr/bin/cinch", "./usr/share/doc/cinch/copyright"];
/// PATH inside the root.
const ROOT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, clap::Args)]
pub(crate) struct Options {
    /// After building, install the package on a clean Debian 12 (a cached debootstrap root,
    /// extracted fresh, in a chroot) and record `/bin/true` with the installed cinch, as the
    /// `dist` tier of `cargo xtask test` does. Needs root; about 20 s once the root is cached
    /// (the first run debootstraps it, about a minute).
    #[arg(long)]
    pub check: bool,
}

pub(crate) fn run(options: &Options) -> anyhow::Result<ExitCode> {
    crate::setup::run()?;
    let report = if options.check {
        check()?
    } else {
        let started = Instant::now();
        let mut report = Report::default();
        let deb = build()?;
        inspect(&deb, &mut report)?;
        report
            .lines
            .push(format!("built in {:.0} s", started.elapsed().as_secs_f64()));
        report
    };
    println!("{report}");
    Ok(if report.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// What building and checking the package found; `failures` empty means it passed.
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub lines: Vec<String>,
    pub failures: Vec<String>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "==> dist summary")?;
        for l in &self.lines {
            writeln!(f, "    {l}")?;
        }
        for l in &self.failures {
            writeln!(f, "    FAIL {l}")?;
        }
        write!(
            f,
            "dist: {}",
            if self.failures.is_empty() {
                "passed"
            } else {
                "FAILED"
            }
        )
    }
}

/// Builds the package and installs it on a clean Debian 12. Err when the check cannot run here
/// (not root, no debootstrap, no BTF, no mirror to debootstrap from); a package that does not
/// build, install or record is Ok with `failures`.
pub(crate) fn check() -> anyhow::Result<Report> {
    if let Some(why) = missing_prerequisites() {
        bail!("cannot install the package on a clean Debian {SUITE}: {why}");
    }
    let mut report = Report::default();
    let started = Instant::now();
    let deb = match build().and_then(|deb| inspect(&deb, &mut report).map(|()| deb)) {
        Ok(deb) => deb,
        Err(e) => {
            report.failures.push(format!("building the package: {e:#}"));
            return Ok(report);
        }
    };
    report.lines.push(format!(
        "package built in {:.0} s",
        started.elapsed().as_secs_f64()
    ));
    let dist = deb.parent().context("the package has no directory")?;
    let started = Instant::now();
    let tarball = rootfs_tarball(dist)?;
    report.lines.push(format!(
        "clean Debian {SUITE} root ready in {:.0} s ({})",
        started.elapsed().as_secs_f64(),
        tarball.display()
    ));
    let started = Instant::now();
    let root = dist.join("install-check");
    if let Err(e) = install_and_record(&deb, &tarball, &root, &mut report) {
        report.failures.push(format!("{e:#}"));
    }
    if report.failures.is_empty() {
        if let Err(e) = remove_root(&root) {
            report.failures.push(format!("{e:#}"));
        }
    } else {
        report
            .lines
            .push(format!("the root is kept for a look: {}", root.display()));
    }
    report.lines.push(format!(
        "installed and recorded in {:.0} s",
        started.elapsed().as_secs_f64()
    ));
    Ok(report)
}

/// Why the install check cannot run here, if it cannot.
pub(crate) fn missing_prerequisites() -> Option<String> {
    if !is_root() {
        return Some(
            "it needs root (debootstrap, chroot, mounts, and cinch record loads BPF programs)"
                .to_owned(),
        );
    }
    for tool in ["debootstrap", "tar", "dpkg-deb", "sha256sum"] {
        if !on_path(tool) {
            return Some(format!(
                "{tool} is not installed (cargo xtask setup installs it)"
            ));
        }
    }
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        return Some("this kernel has no BTF (/sys/kernel/btf/vmlinux)".to_owned());
    }
    None
}

/// `cargo deb -p cinch` into `target/dist/`, and the package's checksum next to it.
pub(crate) fn build() -> anyhow::Result<PathBuf> {
    let dist = target_dir()?.join("dist");
    std::fs::create_dir_all(&dist).with_context(|| format!("creating {}", dist.display()))?;
    let mut cmd = cargo();
    cmd.args(["deb", "-p", "cinch", "--locked", "--output"])
        .arg(&dist)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit());
    println!("==> {}", show(&cmd));
    let out = cmd
        .output()
        .with_context(|| format!("could not start `{}`", show(&cmd)))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    if !out.status.success() {
        bail!(
            "`{}` failed ({}){}",
            show(&cmd),
            out.status,
            if on_path("cargo-deb") {
                ""
            } else {
                ": cargo-deb is not installed (cargo xtask setup installs it)"
            }
        );
    }
    // cargo-deb prints the path of the package it wrote, last.
    let deb = stdout
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.ends_with(".deb"))
        .map(PathBuf::from)
        .context("cargo deb did not say which package it wrote")?;
    if !deb.is_file() {
        bail!(
            "cargo deb said it wrote {}, which does not exist",
            deb.display()
        );
    }
    let name = deb
        .file_name()
        .context("the package path has no file name")?
        .to_string_lossy()
        .into_owned();
    let sum = output(Command::new("sha256sum").arg(&name).current_dir(&dist))?;
    if !sum.status.success() {
        bail!("sha256sum {name} failed ({})", sum.status);
    }
    let sum_file = dist.join(format!("{name}.sha256"));
    std::fs::write(&sum_file, &sum.stdout)
        .with_context(|| format!("writing {}", sum_file.display()))?;
    Ok(deb)
}

/// The control fields and file list: what a user of the package relies on.
fn inspect(deb: &Path, report: &mut Report) -> anyhow::Result<()> {
    let fields = output(Command::new("dpkg-deb").args(["--field"]).arg(deb).args([
        "Package",
        "Version",
        "Architecture",
        "Depends",
    ]))?;
    if !fields.status.success() {
        bail!(
            "dpkg-deb --field {} failed ({})",
            deb.display(),
            fields.status
        );
    }
    let fields = String::from_utf8_lossy(&fields.stdout).into_owned();
    let depends = fields
        .lines()
        .find_map(|l| l.strip_prefix("Depends:"))
        .unwrap_or("")
        .trim()
        .to_owned();
    for lib in ["libc6", "libseccomp2"] {
        if !depends.split(',').any(|d| d.trim().starts_with(lib)) {
            report.failures.push(format!(
                "the package does not depend on {lib} (Depends: {depends:?})"
            ));
        }
    }
    let contents = output(Command::new("dpkg-deb").arg("--contents").arg(deb))?;
    if !contents.status.success() {
        bail!(
            "dpkg-deb --contents {} failed ({})",
            deb.display(),
            contents.status
        );
    }
    let contents = String::from_utf8_lossy(&contents.stdout);
    for file in EXPECTED_FILES {
        if !contents
            .lines()
            .any(|l| l.split_whitespace().nth(5) == Some(file))
        {
            report
                .failures
                .push(format!("the package does not install {}", &file[1..]));
        }
    }
    let size = std::fs::metadata(deb)
        .with_context(|| format!("reading {}", deb.display()))?
        .len();
    report.lines.push(format!(
        "{} ({:.1} MiB; checksum in {}.sha256)",
        deb.display(),
        size as f64 / (1024.0 * 1024.0),
        deb.display()
    ));
    for l in fields.lines() {
        report.lines.push(l.trim().to_owned());
    }
    Ok(())
}

/// The pristine tarball of a minimal Debian root, debootstrapped when missing or too old.
pub(crate) fn rootfs_tarball(dist: &Path) -> anyhow::Result<PathBuf> {
    let arch = dpkg_architecture()?;
    let tarball = dist.join(format!("debian-{SUITE}-minbase-{arch}.tar"));
    let age = std::fs::metadata(&tarball)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok());
    if age.is_some_and(|a| a < ROOTFS_MAX_AGE) {
        println!(
            "==> dist: clean Debian {SUITE} root cached in {}",
            tarball.display()
        );
        return Ok(tarball);
    }
    let mirror = cinch_tests::debian::mirror(SUITE);
    let build_dir = dist.join("debootstrap");
    remove_root(&build_dir)?;
    let mut cmd = Command::new("debootstrap");
    cmd.args(["--variant=minbase", SUITE])
        .arg(&build_dir)
        .arg(&mirror)
        .stdin(Stdio::null());
    println!("==> {}", show(&cmd));
    run_cmd(&mut cmd).with_context(|| {
        format!(
            "debootstrapping Debian {SUITE} from {mirror} (CINCH_DEBIAN_MIRROR sets another mirror)"
        )
    })?;
    let partial = dist.join(format!("debian-{SUITE}-minbase-{arch}.tar.partial"));
    let mut tar = Command::new("tar");
    tar.args(["--numeric-owner", "-C"])
        .arg(&build_dir)
        .arg("-cf")
        .arg(&partial)
        .arg(".");
    println!("==> {}", show(&tar));
    run_cmd(&mut tar)?;
    std::fs::rename(&partial, &tarball)
        .with_context(|| format!("renaming {} to {}", partial.display(), tarball.display()))?;
    remove_root(&build_dir)?;
    Ok(tarball)
}

fn dpkg_architecture() -> anyhow::Result<String> {
    let out = output(Command::new("dpkg").arg("--print-architecture"))?;
    if !out.status.success() {
        bail!("dpkg --print-architecture failed ({})", out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Extracts a fresh root, installs the package in it with apt-get, records `/bin/true` with the
/// installed cinch and checks the recording.
fn install_and_record(
    deb: &Path,
    tarball: &Path,
    root: &Path,
    report: &mut Report,
) -> anyhow::Result<()> {
    fresh_root(tarball, root)?;
    let package = copy_into_root(deb, root)?;
    let install = in_root(
        root,
        "/usr/bin/apt-get",
        &["install", "-y", "--no-install-recommends", &package],
        Duration::from_secs(300),
    )?;
    if !install.success() {
        bail!("apt-get install {package} in the clean root failed ({install})");
    }
    report.lines.push(format!("apt-get install {package}: ok"));

    let version = in_root(
        root,
        "/usr/bin/cinch",
        &["--version"],
        Duration::from_secs(30),
    )?;
    if !version.success() {
        bail!("the installed cinch --version failed ({version})");
    }

    let record = in_root(
        root,
        "/usr/bin/cinch",
        &["record", "-o", "/tmp/r.json", "--", "/bin/true"],
        Duration::from_secs(120),
    )?;
    if !record.success() {
        bail!("cinch record -- /bin/true with the installed cinch failed ({record})");
    }
    let recording = host_path(root, "tmp/r.json")?;
    let names = recorded_syscalls(&recording)?;
    let missing: Vec<&str> = EXPECTED_SYSCALLS
        .iter()
        .copied()
        .filter(|s| !names.iter().any(|n| n == s))
        .collect();
    if missing.is_empty() {
        report.lines.push(format!(
            "cinch record -- /bin/true: {} syscalls, {} among them",
            names.len(),
            EXPECTED_SYSCALLS.join(" and ")
        ));
    } else {
        report.failures.push(format!(
            "the recording of /bin/true does not name {} (it names: {})",
            missing.join(", "),
            names.join(" ")
        ));
    }

    let generate = in_root(
        root,
        "/usr/bin/cinch",
        &["generate", "-o", "/tmp/seccomp.json", "/tmp/r.json"],
        Duration::from_secs(60),
    )?;
    if generate.success() {
        report.lines.push("cinch generate on it: ok".to_owned());
    } else {
        report.failures.push(format!(
            "cinch generate on the recording failed ({generate})"
        ));
    }
    Ok(())
}

/// A fresh root at `root`, extracted from the pristine `tarball` (a root left by an earlier run
/// is removed first).
pub(crate) fn fresh_root(tarball: &Path, root: &Path) -> anyhow::Result<()> {
    remove_root(root)?;
    std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    let mut tar = Command::new("tar");
    tar.args(["--numeric-owner", "-xpf"])
        .arg(tarball)
        .arg("-C")
        .arg(root);
    println!("==> {}", show(&tar));
    run_cmd(&mut tar)
}

/// Copies `file` into the root's `/tmp`; its path inside the root.
pub(crate) fn copy_into_root(file: &Path, root: &Path) -> anyhow::Result<String> {
    let name = file
        .file_name()
        .with_context(|| format!("{} has no file name", file.display()))?
        .to_string_lossy()
        .into_owned();
    let inside = format!("/tmp/{name}");
    let copy = host_path(root, &inside)?;
    std::fs::copy(file, &copy)
        .with_context(|| format!("copying {} to {}", file.display(), copy.display()))?;
    Ok(inside)
}

/// The package's `Version` field.
pub(crate) fn package_version(deb: &Path) -> anyhow::Result<String> {
    let out = output(
        Command::new("dpkg-deb")
            .arg("--field")
            .arg(deb)
            .arg("Version"),
    )?;
    if !out.status.success() {
        bail!(
            "dpkg-deb --field {} Version failed ({})",
            deb.display(),
            out.status
        );
    }
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if version.is_empty() {
        bail!("{} has no Version field", deb.display());
    }
    Ok(version)
}

/// Every syscall name in a recording, all architectures.
fn recorded_syscalls(path: &Path) -> anyhow::Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let recording: Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let Some(arches) = recording["syscalls"].as_object() else {
        bail!("{} has no syscalls object", path.display());
    };
    let mut names: Vec<String> = arches
        .values()
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|s| s["name"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// `root/rel` on the host, refusing a path through a symbolic link inside the root: the root's
/// own links are absolute (`/dev/fd -> /proc/self/fd`) and would lead out of it.
pub(crate) fn host_path(root: &Path, rel: &str) -> anyhow::Result<PathBuf> {
    let mut path = root.to_path_buf();
    for part in rel.split('/').filter(|p| !p.is_empty()) {
        if part == ".." {
            bail!("{rel} leaves the root");
        }
        path.push(part);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => {
                bail!(
                    "{} is a symbolic link; not following it out of the root",
                    path.display()
                )
            }
            _ => {}
        }
    }
    Ok(path)
}

/// Runs `program` (a path inside the root) chrooted into `root`, with proc, sysfs, tracefs,
/// bpffs and devpts mounted in a mount namespace of its own (gone when it exits); kills it after
/// `limit`.
pub(crate) fn in_root(
    root: &Path,
    program: &str,
    args: &[&str],
    limit: Duration,
) -> anyhow::Result<std::process::ExitStatus> {
    let root_c = CString::new(root.as_os_str().as_bytes()).context("root path")?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .env("PATH", ROOT_PATH)
        .env("HOME", "/root")
        .env("LANG", "C.UTF-8")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdin(Stdio::null());
    // SAFETY: `enter_root` only makes system calls (no allocation, no locks), as a pre_exec hook
    // must between fork and exec.
    unsafe { cmd.pre_exec(move || enter_root(&root_c)) };
    println!("==> chroot {} {}", root.display(), show(&cmd));
    let mut child = cmd.spawn().with_context(|| {
        format!(
            "could not run `{}` in {}: entering the root (a new mount namespace, chroot, mounts \
             of proc, sysfs, tracefs, bpffs and devpts) or starting it failed",
            show(&cmd),
            root.display()
        )
    })?;
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child
            .try_wait()
            .context("waiting for the command in the root")?
        {
            return Ok(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "`{}` in {} did not finish within {} s",
                show(&cmd),
                root.display(),
                limit.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Between fork and exec: a private mount namespace, chroot into `root`, and the pseudo file
/// systems cinch reads mounted inside it. Paths are resolved after the chroot, so a symbolic
/// link in the root cannot lead a mount out of it.
fn enter_root(root: &CString) -> std::io::Result<()> {
    fn check(rc: libc::c_int) -> std::io::Result<()> {
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
    let flags = libc::MS_NOSUID | libc::MS_NOEXEC;
    // SAFETY: plain system calls with NUL-terminated strings that outlive them.
    unsafe {
        check(libc::unshare(libc::CLONE_NEWNS))?;
        check(libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ))?;
        check(libc::chroot(root.as_ptr()))?;
        check(libc::chdir(c"/".as_ptr()))?;
        for (fs, target, nodev, options) in [
            (c"proc", c"/proc", libc::MS_NODEV, c""),
            (c"sysfs", c"/sys", libc::MS_NODEV, c""),
            (c"tracefs", c"/sys/kernel/tracing", libc::MS_NODEV, c""),
            (c"bpf", c"/sys/fs/bpf", libc::MS_NODEV, c""),
            // A devpts of its own, for the terminal dpkg logs through (the root's /dev/ptmx
            // opens the devpts next to it); its nodes are devices, so no MS_NODEV.
            (
                c"devpts",
                c"/dev/pts",
                0,
                c"newinstance,ptmxmode=0666,mode=0620",
            ),
        ] {
            check(libc::mount(
                fs.as_ptr(),
                target.as_ptr(),
                fs.as_ptr(),
                flags | nodev,
                options.as_ptr().cast(),
            ))?;
        }
    }
    Ok(())
}

/// Mount points at or under `dir`, deepest first.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(table) = std::fs::read_to_string("/proc/self/mounts") else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = table
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .map(|m| PathBuf::from(m.replace("\\040", " ")))
        .filter(|m| m.starts_with(dir))
        .collect();
    found.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    found
}

/// Removes a root left by an earlier run; a file system still mounted in it (debootstrap
/// interrupted) is unmounted first, never deleted through.
pub(crate) fn remove_root(dir: &Path) -> anyhow::Result<()> {
    for m in mounts_under(dir) {
        let mut umount = Command::new("umount");
        umount.arg(&m);
        println!("==> {}", show(&umount));
        run_cmd(&mut umount)?;
    }
    if let Some(m) = mounts_under(dir).first() {
        bail!(
            "{} is still mounted; not removing {}",
            m.display(),
            dir.display()
        );
    }
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_paths_stay_in_the_root() {
        let root = std::env::temp_dir().join(format!("xtask-dist-{}", std::process::id()));
        std::fs::create_dir_all(root.join("tmp")).expect("mkdir");
        std::os::unix::fs::symlink("/etc", root.join("etc")).expect("symlink");
        assert_eq!(
            host_path(&root, "tmp/r.json").expect("plain path"),
            root.join("tmp/r.json")
        );
        assert!(host_path(&root, "etc/passwd").is_err());
        assert!(host_path(&root, "tmp/../etc").is_err());
        std::fs::remove_dir_all(&root).expect("cleanup");
    }

    #[test]
    fn syscall_names_from_a_recording() {
        let path = std::env::temp_dir().join(format!("xtask-dist-rec-{}.json", std::process::id()));
        std::fs::write(
            &path,
            r#"{"syscalls": {"x86_64": [{"nr": 59, "name": "execve", "count": 1},
                {"nr": 231, "name": "exit_group", "count": 1}],
                "i386": [{"nr": 11, "name": "execve", "count": 1}]}}"#,
        )
        .expect("write");
        let names = recorded_syscalls(&path).expect("names");
        std::fs::remove_file(&path).expect("cleanup");
        assert_eq!(names, ["execve", "exit_group"]);
    }
}
