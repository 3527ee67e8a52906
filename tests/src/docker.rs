//! Docker for the end-to-end tier: a daemon that answers, and a test image built on this
//! machine.
//!
//! [`Docker::ensure`] uses the daemon that answers `docker version`, or starts
//! `dockerd --iptables=false --bridge=none` (no NAT rules, no bridge: containers use
//! `--network none` or `host`, so nothing leaves loopback) and waits until it answers.
//!
//! One daemon serves every test in the process: it is started at most once (a process-wide
//! `OnceLock`) and, because libtest drops each test's guard long before the next test runs,
//! it is not stopped when a [`Docker`] guard drops but when the test process exits (an `atexit`
//! handler), and only if the harness started it. A daemon that was already running is never
//! stopped. If the test process is killed, a daemon it started keeps running; the next run finds
//! it answering and uses it.
//!
//! Images: [`busybox_image`] imports `cinch-test/busybox:latest` from a rootfs made of Debian's
//! static busybox. Containers must be run with `--pull never`, so a missing image is an error
//! instead of a registry pull.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::{on_path, require};

/// The test image [`busybox_image`] builds.
pub const BUSYBOX_IMAGE: &str = "cinch-test/busybox:latest";

/// How long a freshly started dockerd gets to answer.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a `docker version` probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long dockerd gets to shut down (it stops its containers first) before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

const LOG_FILE: &str = "/var/log/cinch-test-dockerd.log";

/// A handle on a daemon that answers. Cheap; any number may exist at once.
#[derive(Debug)]
pub struct Docker {
    _private: (),
}

/// The daemon this process started, if any (stopped at exit).
static STARTED: Mutex<Option<Child>> = Mutex::new(None);
/// Whether a daemon answers, decided once per process: Ok, or why not.
static DAEMON: OnceLock<Result<(), String>> = OnceLock::new();

impl Docker {
    /// A daemon that answers, started when needed. Panics with the reason (and the tail of
    /// dockerd's log) when there is none.
    pub fn ensure() -> Docker {
        match Docker::try_ensure() {
            Ok(d) => d,
            Err(why) => panic!("{why}"),
        }
    }

    /// Like [`Docker::ensure`] for a test that may skip: None (after printing `SKIPPED`) when no
    /// daemon can be had; panics under `CI=true`.
    pub fn require(test_name: &str) -> Option<Docker> {
        match Docker::try_ensure() {
            Ok(d) => Some(d),
            Err(why) => {
                require(test_name, false, &why);
                None
            }
        }
    }

    pub fn try_ensure() -> Result<Docker, String> {
        DAEMON.get_or_init(start_if_needed).clone()?;
        Ok(Docker { _private: () })
    }

    /// `docker ARGS...`, its output collected.
    pub fn cmd(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running docker {args:?}: {e}"))
    }

    /// `docker run --rm --pull never OPTIONS IMAGE COMMAND...`. `options` must choose the
    /// network (`--network none` or `--network host`): see the module documentation.
    pub fn run(&self, options: &[&str], image: &str, command: &[&str]) -> Output {
        assert!(
            options
                .iter()
                .any(|o| o.starts_with("--network") || o.starts_with("--net")),
            "docker run without --network none|host: containers must not use a bridge"
        );
        let mut args = vec!["run", "--rm", "--pull", "never"];
        args.extend_from_slice(options);
        args.push(image);
        args.extend_from_slice(command);
        self.cmd(&args)
    }
}

fn docker_answers() -> bool {
    let Ok(mut child) = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        return false;
    };
    let deadline = Instant::now() + PROBE_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}

fn log_path() -> PathBuf {
    let preferred = Path::new(LOG_FILE);
    if std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(preferred)
        .is_ok()
    {
        preferred.to_path_buf()
    } else {
        std::env::temp_dir().join("cinch-test-dockerd.log")
    }
}

/// The last lines dockerd wrote since this process started it.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let ours = text
        .rfind(&marker())
        .map_or(text.as_str(), |at| &text[at..]);
    let lines: Vec<&str> = ours.lines().skip(1).collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

fn marker() -> String {
    format!(
        "--- cinch test harness: starting dockerd (pid {}) ---",
        std::process::id()
    )
}

fn start_if_needed() -> Result<(), String> {
    if !on_path("docker") {
        return Err(
            "the docker CLI is not installed (cargo xtask setup installs docker.io)".into(),
        );
    }
    if docker_answers() {
        return Ok(());
    }
    if !on_path("dockerd") {
        return Err("docker does not answer and dockerd is not installed (cargo xtask setup installs docker.io)".into());
    }
    if !crate::is_root() {
        return Err("docker does not answer, and starting dockerd needs root".into());
    }
    let log = log_path();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(|e| format!("opening {}: {e}", log.display()))?;
    let _ = writeln!(file, "{}", marker());
    let stderr = file
        .try_clone()
        .map_err(|e| format!("opening {}: {e}", log.display()))?;
    let mut child = Command::new("dockerd")
        .args(["--iptables=false", "--bridge=none"])
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("starting dockerd: {e}"))?;

    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if docker_answers() {
            // Another test process may have started a daemon at the same moment: then ours
            // exited ("pid file found") and theirs answers, which is as good.
            if let Ok(Some(_)) = child.try_wait() {
                return Ok(());
            }
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            // Give a daemon another process is starting a little time to answer.
            let grace = Instant::now() + Duration::from_secs(10);
            while Instant::now() < grace {
                if docker_answers() {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            return Err(format!(
                "dockerd exited ({status}) before answering; the end of {}:\n{}",
                log.display(),
                log_tail(&log)
            ));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "dockerd did not answer within {}s; the end of {}:\n{}",
                START_TIMEOUT.as_secs(),
                log.display(),
                log_tail(&log)
            ));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    *STARTED.lock().unwrap_or_else(|e| e.into_inner()) = Some(child);
    // SAFETY: registering a plain `extern "C" fn` with no captured state.
    let registered = unsafe { libc::atexit(stop_started_daemon) };
    if registered != 0 {
        eprintln!("cinch test harness: cannot register dockerd shutdown; it keeps running");
    }
    Ok(())
}

/// Stops the daemon this process started: SIGTERM (dockerd stops its containers and its
/// containerd), then SIGKILL after [`STOP_TIMEOUT`].
extern "C" fn stop_started_daemon() {
    let Ok(mut started) = STARTED.lock() else {
        return;
    };
    let Some(mut child) = started.take() else {
        return;
    };
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + STOP_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Waits until no container is named `name`, for at most `timeout`; true when the name is free.
///
/// `docker run --rm` returns when the container has been removed, but the daemon may still hold
/// its name for a moment (moby/moby#37698): a `docker run --name` with the same name right after
/// can fail with "Conflict. The container name … is already in use".
pub fn wait_until_name_is_free(name: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let taken = Command::new("docker")
            .args(["container", "inspect", "--format", "{{.Id}}", name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !taken {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The test image `cinch-test/busybox:latest`, built once (and not again while
/// `docker image inspect` finds it) by `docker import` of a rootfs holding Debian's static
/// busybox with every applet linked into /bin, and a minimal /etc/passwd, /etc/group and /tmp.
/// Panics with the reason when it cannot be had.
pub fn busybox_image() -> String {
    try_busybox_image().unwrap_or_else(|why| panic!("{why}"))
}

/// [`busybox_image`], or why it cannot be had (for `cargo xtask`).
pub fn try_busybox_image() -> Result<String, String> {
    static IMAGE: OnceLock<Result<String, String>> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            let docker = Docker::try_ensure()?;
            let inspect = docker.cmd(&["image", "inspect", "--format", "{{.Id}}", BUSYBOX_IMAGE]);
            if !inspect.status.success() {
                build_busybox_image(&docker)?;
            }
            Ok(BUSYBOX_IMAGE.to_owned())
        })
        .clone()
}

/// Debian's busybox-static installs a statically linked /bin/busybox.
const BUSYBOX: &str = "/bin/busybox";

fn build_busybox_image(docker: &Docker) -> Result<(), String> {
    let busybox = Path::new(BUSYBOX);
    if !is_static_elf(busybox) {
        return Err(format!(
            "{BUSYBOX} is missing or not statically linked: install Debian's busybox-static (cargo xtask setup)"
        ));
    }
    let io = |what: &str| {
        let what = what.to_owned();
        move |e: std::io::Error| format!("{what}: {e}")
    };
    let dir = tempfile::tempdir().map_err(io("creating a temporary directory"))?;
    let root = dir.path().join("rootfs");
    for sub in ["bin", "etc", "tmp", "root", "proc", "sys", "dev"] {
        std::fs::create_dir_all(root.join(sub)).map_err(io("creating the rootfs"))?;
    }
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777))
            .map_err(io("chmod /tmp"))?;
    }
    std::fs::copy(busybox, root.join("bin/busybox")).map_err(io("copying busybox"))?;
    let list = Command::new(busybox)
        .arg("--list")
        .output()
        .map_err(io("running busybox --list"))?;
    if !list.status.success() {
        return Err("busybox --list failed".to_owned());
    }
    let applets = String::from_utf8_lossy(&list.stdout);
    let mut linked = 0;
    for applet in applets.lines().map(str::trim).filter(|a| !a.is_empty()) {
        if applet == "busybox" || applet.contains('/') {
            continue;
        }
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet))
            .map_err(io(&format!("linking applet {applet}")))?;
        linked += 1;
    }
    if linked <= 100 {
        return Err(format!("busybox --list gave only {linked} applets"));
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .map_err(io("writing /etc/passwd"))?;
    std::fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")
        .map_err(io("writing /etc/group"))?;

    let tarball = dir.path().join("rootfs.tar");
    let tar = Command::new("tar")
        .args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
        .arg(&root)
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .status()
        .map_err(io("running tar"))?;
    if !tar.success() {
        return Err("tar of the busybox rootfs failed".to_owned());
    }
    let tarball = tarball.to_string_lossy();
    let import = docker.cmd(&["import", &tarball, BUSYBOX_IMAGE]);
    if !import.status.success() {
        return Err(format!(
            "docker import {BUSYBOX_IMAGE} failed: {}",
            String::from_utf8_lossy(&import.stderr)
        ));
    }
    Ok(())
}

/// An ELF file without a PT_INTERP program header (no dynamic loader needed).
fn is_static_elf(path: &Path) -> bool {
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    // ELF64 little-endian only: Debian's busybox-static on the machines cinch targets.
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 || bytes[5] != 1 {
        return false;
    }
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
    let u64_at = |o: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[o..o + 8]);
        u64::from_le_bytes(b) as usize
    };
    let (phoff, phentsize, phnum) = (u64_at(32), u16_at(54), u16_at(56));
    const PT_INTERP: u32 = 3;
    (0..phnum).all(|i| {
        let o = phoff + i * phentsize;
        bytes
            .get(o..o + 4)
            .is_some_and(|t| u32::from_le_bytes([t[0], t[1], t[2], t[3]]) != PT_INTERP)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_and_dynamic_executables() {
        // /bin/sh is dynamically linked on Debian; the checker must say so.
        if Path::new("/bin/sh").exists() {
            assert!(!is_static_elf(Path::new("/bin/sh")));
        }
        if Path::new("/usr/share/doc/busybox-static").exists() {
            assert!(is_static_elf(Path::new(BUSYBOX)));
        }
        assert!(!is_static_elf(Path::new("/nonexistent")));
    }
}
