//! A real server: nginx from Debian on 127.0.0.1 (one worker), loaded by wrk from Debian (one
//! thread, 32 connections) for a few seconds, under each tracer in turn. The figure is wrk's
//! requests per second; the loss is relative to nginx untraced in the same run. nginx's own CPU
//! time per request (its processes' utime + stime while wrk runs) is reported next to it: it
//! moves less with other load on the machine, and shows what an in-kernel tracer costs nginx
//! (not strace's cost, which is mostly nginx stopped, waiting).

use std::ffi::OsString;
use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Map, Value, json};

use super::foreign::sys_enter_holders;
use super::proc::Running;
use super::recording::RecordingCheck;
use super::stats::Samples;
use super::tracers::{Floor, Mode, wrap};
use super::{Bench, RssSample};
use crate::util::output;

const MODES: [Mode; 5] = [
    Mode::None,
    Mode::Floor,
    Mode::Cinch,
    Mode::Bpftrace,
    Mode::Strace,
];
/// nginx gets this long to answer its first request (bpftrace compiles first).
const START_LIMIT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub(super) struct ModeResult {
    pub mode: Mode,
    pub rps: Samples,
    /// nginx's CPU time per request, in µs.
    pub cpu_us_per_request: Samples,
    /// Other sys_enter programs seen around samples.
    pub foreign: Vec<String>,
    /// What wrk reported as failed requests (timeouts, errors), per sample that had any.
    pub errors: Vec<String>,
}

#[derive(Debug, Clone)]
pub(super) struct ServerResult {
    pub modes: Vec<ModeResult>,
    pub seconds: u64,
}

impl ServerResult {
    pub(super) fn median(&self, mode: Mode) -> Option<f64> {
        self.modes
            .iter()
            .find(|m| m.mode == mode)
            .and_then(|m| m.rps.median())
    }

    /// Throughput lost under `mode`, in percent of the untraced median.
    pub(super) fn loss_percent(&self, mode: Mode) -> Option<f64> {
        Some((1.0 - self.median(mode)? / self.median(Mode::None)?) * 100.0)
    }

    pub(super) fn cpu_median(&self, mode: Mode) -> Option<f64> {
        self.modes
            .iter()
            .find(|m| m.mode == mode)
            .and_then(|m| m.cpu_us_per_request.median())
    }

    /// The throughput a CPU-bound nginx would lose, from its CPU time per request: 1 -
    /// untraced / traced.
    pub(super) fn cpu_loss_percent(&self, mode: Mode) -> Option<f64> {
        Some((1.0 - self.cpu_median(Mode::None)? / self.cpu_median(mode)?) * 100.0)
    }

    pub(super) fn to_json(&self) -> Value {
        let mut modes = Map::new();
        for m in &self.modes {
            let mut v = m.rps.to_json();
            v["throughput_loss_percent"] =
                json!(self.loss_percent(m.mode).map(super::stats::round2));
            v["nginx_cpu_us_per_request"] = m.cpu_us_per_request.to_json();
            v["loss_percent_from_cpu_per_request"] =
                json!(self.cpu_loss_percent(m.mode).map(super::stats::round2));
            v["foreign_sys_enter_holders"] = json!(m.foreign);
            v["wrk_errors"] = json!(m.errors);
            modes.insert(m.mode.key().to_owned(), v);
        }
        json!({
            "server": "nginx (Debian), 1 worker, one static 13-byte file, 127.0.0.1",
            "load": format!("wrk -t1 -c32 -d{}s", self.seconds),
            "unit": "requests per second",
            "modes": modes,
        })
    }
}

pub(super) fn run(b: &mut Bench) -> anyhow::Result<ServerResult> {
    let dir = b.tmp.join("nginx");
    let port = free_port()?;
    let conf = prepare(&b.assets, &dir, port)?;
    let seconds = if b.quick { 1 } else { 3 };
    let rounds = b.rounds.min(5);
    let mut modes: Vec<ModeResult> = MODES
        .iter()
        .map(|&mode| ModeResult {
            mode,
            rps: Samples::default(),
            cpu_us_per_request: Samples::default(),
            foreign: Vec::new(),
            errors: Vec::new(),
        })
        .collect();
    for round in 0..rounds {
        println!(
            "==> bench: nginx + wrk on 127.0.0.1:{port}, round {}/{rounds}",
            round + 1
        );
        for i in 0..MODES.len() {
            let m = &mut modes[(i + round) % MODES.len()];
            b.wait_quiet();
            let before = sys_enter_holders(&[]);
            let wrk = sample(b, m.mode, &dir, &conf, port, seconds, round)?;
            let after = sys_enter_holders(&[]);
            m.foreign.extend(before.into_iter().chain(after));
            m.foreign.sort();
            m.foreign.dedup();
            m.rps.push(wrk.rps);
            m.errors.extend(wrk.errors);
            if let Some(cpu) = wrk.cpu_us_per_request {
                m.cpu_us_per_request.push(cpu);
            }
            println!(
                "    nginx     {:<10} {:>12.0} requests/s, nginx CPU {:.2} us per request",
                m.mode.label(),
                wrk.rps,
                wrk.cpu_us_per_request.unwrap_or(f64::NAN)
            );
        }
    }
    Ok(ServerResult { modes, seconds })
}

/// A port nothing listens on now.
fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .context("finding a free port on 127.0.0.1")?;
    Ok(l.local_addr()?.port())
}

/// Writes the configuration and the document root under `dir`.
fn prepare(assets: &Path, dir: &Path, port: u16) -> anyhow::Result<PathBuf> {
    for sub in ["www", "tmp"] {
        std::fs::create_dir_all(dir.join(sub))
            .with_context(|| format!("creating {}", dir.join(sub).display()))?;
    }
    std::fs::write(dir.join("www").join("index.html"), "hello, cinch\n")
        .context("writing the nginx document")?;
    let template =
        std::fs::read_to_string(assets.join("nginx.conf")).context("reading bench/nginx.conf")?;
    let conf = dir.join("nginx.conf");
    let dir_text = dir.to_string_lossy();
    if dir_text.contains(char::is_whitespace) || dir_text.contains(';') {
        bail!(
            "the bench directory {} cannot be written into an nginx configuration",
            dir.display()
        );
    }
    std::fs::write(
        &conf,
        template
            .replace("@DIR@", &dir_text)
            .replace("@PORT@", &port.to_string()),
    )
    .with_context(|| format!("writing {}", conf.display()))?;
    Ok(conf)
}

fn sample(
    b: &mut Bench,
    mode: Mode,
    dir: &Path,
    conf: &Path,
    port: u16,
    seconds: u64,
    round: usize,
) -> anyhow::Result<Wrk> {
    let pid_file = dir.join("nginx.pid");
    let _ = std::fs::remove_file(&pid_file);
    let argv: Vec<OsString> = vec![
        "/usr/sbin/nginx".into(),
        "-p".into(),
        dir.as_os_str().to_owned(),
        "-e".into(),
        dir.join("error.log").into_os_string(),
        "-c".into(),
        conf.as_os_str().to_owned(),
    ];
    let tag = format!("nginx-{}", mode.key());
    let recording = b.tmp.join(format!("rec-nginx-round{}.json", round + 1));
    let floor = match mode {
        Mode::Floor => Some(Floor::attach(b, &tag)?),
        _ => None,
    };
    let mut cmd = wrap(b, mode, &argv, &recording, "count-tree.bt")?;
    let mut server = Running::spawn_logged(
        &mut cmd,
        &b.tmp.join(format!("{tag}.out")),
        &b.tmp.join(format!("{tag}.err")),
    )?;
    wait_until_serving(&mut server, port)?;
    let master = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok());
    let cpu_before = master.and_then(nginx_cpu_ticks);
    let wrk = load(port, seconds).map(|mut wrk| {
        let cpu_after = master.and_then(nginx_cpu_ticks);
        wrk.cpu_us_per_request = cpu_before.zip(cpu_after).and_then(|(b, a)| {
            (wrk.requests > 0).then(|| {
                a.saturating_sub(b) as f64 * 1e6 / ticks_per_second() / wrk.requests as f64
            })
        });
        wrk
    });
    // Stop nginx itself (whatever runs it): its master's pid is in the pid file.
    match master {
        // SAFETY: kill(2) of the nginx master this sample started (its pid file is ours).
        Some(pid) => unsafe {
            libc::kill(pid, libc::SIGQUIT);
        },
        None => server.signal(libc::SIGTERM),
    }
    let exit = server.wait(Duration::from_secs(30))?;
    if let Some(floor) = floor {
        floor.detach()?;
    }
    let wrk = wrk?;
    if mode == Mode::Cinch {
        b.rss.push(RssSample {
            what: format!(
                "cinch record -- nginx under load (round {}; includes nginx's own peak)",
                round + 1
            ),
            kib: exit.max_rss_kib,
        });
        b.checks.push(RecordingCheck::read(
            format!("nginx under cinch record, round {}", round + 1),
            &recording,
            "accept4",
            1,
            2,
        )?);
    }
    Ok(wrk)
}

/// What wrk measured.
struct Wrk {
    rps: f64,
    requests: u64,
    /// nginx's CPU time per request while wrk ran.
    cpu_us_per_request: Option<f64>,
    /// wrk's error lines (`Socket errors: ...`, `Non-2xx or 3xx responses: ...`).
    errors: Vec<String>,
}

/// Waits for an HTTP 200 from the server.
fn wait_until_serving(server: &mut Running, port: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + START_LIMIT;
    loop {
        if let Ok(mut s) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let mut reply = String::new();
            if s.write_all(b"GET / HTTP/1.0\r\n\r\n").is_ok()
                && s.read_to_string(&mut reply).is_ok()
                && reply.starts_with("HTTP/1.1 200")
            {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!(
                "nginx did not answer on 127.0.0.1:{port} within {} s (`{}`)",
                START_LIMIT.as_secs(),
                server.shown()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// wrk's requests per second, and its error lines.
fn load(port: u16, seconds: u64) -> anyhow::Result<Wrk> {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t1", "-c32", &format!("-d{seconds}s"), "--timeout", "5s"])
        .arg(format!("http://127.0.0.1:{port}/"));
    let out = output(&mut cmd)?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("wrk failed ({}): {text}", out.status);
    }
    let errors = text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("Socket errors") || l.starts_with("Non-2xx"))
        .map(str::to_owned)
        .collect();
    let rps =
        parse_wrk(&text).with_context(|| format!("no Requests/sec in wrk's output:\n{text}"))?;
    Ok(Wrk {
        rps,
        requests: parse_requests(&text).unwrap_or(0),
        cpu_us_per_request: None,
        errors,
    })
}

fn parse_wrk(text: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
}

/// `112563 requests in 3.11s, ...`
fn parse_requests(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.trim().split_once(" requests in "))
        .and_then(|(n, _)| n.trim().parse().ok())
}

/// utime + stime, in clock ticks, of the nginx master and its children (the worker).
fn nginx_cpu_ticks(master: i32) -> Option<u64> {
    let children = std::fs::read_to_string(format!("/proc/{master}/task/{master}/children"))
        .unwrap_or_default();
    let mut total = process_ticks(master)?;
    for pid in children.split_whitespace().filter_map(|p| p.parse().ok()) {
        total += process_ticks(pid)?;
    }
    Some(total)
}

/// Fields 14 and 15 of /proc/PID/stat (after the parenthesised command name).
fn process_ticks(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14, stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_requests_per_second() {
        let text = "Running 3s test @ http://127.0.0.1:18480/\n  112563 requests in 3.11s, 25.76MB read\nRequests/sec:  36156.64\nTransfer/sec:      8.28MB\n";
        assert_eq!(super::parse_wrk(text), Some(36156.64));
        assert_eq!(super::parse_requests(text), Some(112_563));
        assert_eq!(super::parse_wrk("nothing"), None);
    }
}
