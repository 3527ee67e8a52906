//! The agent's counters and the HTTP endpoint that serves them: `GET /metrics` (Prometheus
//! text format 0.0.4) and `GET /healthz`. One thread answers one short request at a time; the
//! recording loop only updates the shared counters.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// The loop is healthy while it has ticked this recently.
const STALE: Duration = Duration::from_secs(10);
/// A client gets this long to send its request line.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a container was not recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Ignored {
    /// Not a pod's container (no Kubernetes labels), or a pod's sandbox.
    NotKubernetes,
    /// A pod the namespaces and selectors leave out.
    NotSelected,
    /// It never reached its entrypoint.
    NeverStarted,
    /// A new mount namespace that was not a container.
    NotContainer,
    /// Nothing was counted.
    Empty,
}

impl Ignored {
    fn as_str(self) -> &'static str {
        match self {
            Ignored::NotKubernetes => "not_kubernetes",
            Ignored::NotSelected => "not_selected",
            Ignored::NeverStarted => "never_started",
            Ignored::NotContainer => "not_container",
            Ignored::Empty => "empty",
        }
    }
}

/// What the agent has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Metrics {
    /// Containers being recorded now (target slots in use).
    pub targets: u64,
    pub slots: u64,
    /// Recordings written, and the syscalls and processes they counted.
    pub recordings: u64,
    pub syscalls: u64,
    pub processes: u64,
    /// Profiles written (owner and container pairs).
    pub profiles: u64,
    pub ignored: BTreeMap<Ignored, u64>,
    /// The kernel side's loss counters, by kind.
    pub lost: BTreeMap<&'static str, u64>,
    /// Containers that found every slot taken.
    pub slots_exhausted: u64,
    /// Recordings or profiles that could not be written.
    pub errors: u64,
}

impl Metrics {
    /// The Prometheus text exposition.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, u64)]| {
            let _ = writeln!(out, "# HELP cinch_agent_{name} {help}");
            let _ = writeln!(out, "# TYPE cinch_agent_{name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "cinch_agent_{name}{labels} {value}");
            }
        };
        let one = |v: u64| [(String::new(), v)];
        metric(
            "targets",
            "gauge",
            "Containers being recorded now.",
            &one(self.targets),
        );
        metric(
            "slots",
            "gauge",
            "Containers that can be recorded at once.",
            &one(self.slots),
        );
        metric(
            "recordings_total",
            "counter",
            "Recordings written.",
            &one(self.recordings),
        );
        metric(
            "syscalls_total",
            "counter",
            "Syscalls counted in the recordings written.",
            &one(self.syscalls),
        );
        metric(
            "processes_total",
            "counter",
            "Processes seen in the recordings written.",
            &one(self.processes),
        );
        metric(
            "profiles",
            "gauge",
            "SeccompProfiles written (owner and container pairs).",
            &one(self.profiles),
        );
        let ignored: Vec<(String, u64)> = self
            .ignored
            .iter()
            .map(|(why, n)| (format!("{{reason=\"{}\"}}", why.as_str()), *n))
            .collect();
        metric(
            "containers_ignored_total",
            "counter",
            "New containers not recorded, by reason.",
            &ignored,
        );
        let lost: Vec<(String, u64)> = self
            .lost
            .iter()
            .map(|(kind, n)| (format!("{{kind=\"{kind}\"}}"), *n))
            .collect();
        metric(
            "lost_total",
            "counter",
            "Observations the kernel side could not store, by kind.",
            &lost,
        );
        metric(
            "slots_exhausted_total",
            "counter",
            "Containers that started while every slot was taken (not recorded).",
            &one(self.slots_exhausted),
        );
        metric(
            "errors_total",
            "counter",
            "Recordings or profiles that could not be written.",
            &one(self.errors),
        );
        out
    }
}

/// What the recording loop shares with the HTTP thread.
#[derive(Debug)]
pub(crate) struct Shared {
    pub metrics: Metrics,
    /// The loop's last tick.
    pub alive: Instant,
}

pub(crate) type Handle = Arc<Mutex<Shared>>;

/// Binds `addr` (before anything else starts, so that an address in use is said at once).
pub(crate) fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).map_err(|e| {
        crate::error::input(format!(
            "cannot listen on {addr}: {}",
            profile_gen::files::io_message(&e)
        ))
    })
}

/// Serves the endpoint on `listener` from a thread of its own.
pub(crate) fn serve(listener: TcpListener, shared: Handle) -> anyhow::Result<SocketAddr> {
    let local = listener.local_addr()?;
    std::thread::Builder::new()
        .name("metrics".to_owned())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Err(e) = answer(stream, &shared) {
                    tracing::debug!(error = %e, "metrics request");
                }
            }
        })
        .context("starting the metrics thread")?;
    Ok(local)
}

fn answer(stream: TcpStream, shared: &Handle) -> std::io::Result<()> {
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, content_type, body) = {
        let shared = shared.lock().unwrap_or_else(PoisonError::into_inner);
        match (method, path) {
            ("GET", "/metrics") => (
                "200 OK",
                "text/plain; version=0.0.4; charset=utf-8",
                shared.metrics.render(),
            ),
            ("GET", "/healthz") if shared.alive.elapsed() < STALE => {
                ("200 OK", "text/plain", "ok\n".to_owned())
            }
            ("GET", "/healthz") => (
                "503 Service Unavailable",
                "text/plain",
                "the recording loop is stuck\n".to_owned(),
            ),
            ("GET", _) => ("404 Not Found", "text/plain", "not found\n".to_owned()),
            _ => (
                "405 Method Not Allowed",
                "text/plain",
                "only GET\n".to_owned(),
            ),
        }
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_one_help_and_type_per_metric() {
        let mut m = Metrics {
            recordings: 3,
            syscalls: 120,
            ..Metrics::default()
        };
        m.ignored.insert(Ignored::NotSelected, 2);
        m.lost.insert("ring", 1);
        let text = m.render();
        assert!(text.contains("cinch_agent_recordings_total 3\n"));
        assert!(text.contains("cinch_agent_syscalls_total 120\n"));
        assert!(text.contains("cinch_agent_containers_ignored_total{reason=\"not_selected\"} 2\n"));
        assert!(text.contains("cinch_agent_lost_total{kind=\"ring\"} 1\n"));
        let types = text.lines().filter(|l| l.starts_with("# TYPE")).count();
        let helps = text.lines().filter(|l| l.starts_with("# HELP")).count();
        assert_eq!(types, helps);
        assert_eq!(types, 10);
    }

    #[test]
    fn the_endpoint_answers() {
        let shared = Arc::new(Mutex::new(Shared {
            metrics: Metrics {
                recordings: 7,
                ..Metrics::default()
            },
            alive: Instant::now(),
        }));
        let listener = bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
        let addr = serve(listener, shared).expect("serve");
        let get = |path: &str| {
            let mut s = TcpStream::connect(addr).expect("connect");
            write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
            let mut out = String::new();
            std::io::Read::read_to_string(&mut s, &mut out).expect("read");
            out
        };
        let metrics = get("/metrics");
        assert!(metrics.starts_with("HTTP/1.1 200 OK\r\n"), "{metrics}");
        assert!(metrics.contains("cinch_agent_recordings_total 7\n"));
        assert!(get("/healthz").ends_with("\r\n\r\nok\n"));
        assert!(get("/nope").starts_with("HTTP/1.1 404"));
    }
}
