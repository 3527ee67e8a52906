//! The tables, the targets (docs/DESIGN.md, "Performance targets") judged on this run's figures,
//! and results.json.

use serde_json::{Value, json};

use super::enforce::{EnforceResult, Filter};
use super::probe_time::ProbeTime;
use super::recording::RecordingCheck;
use super::scale::ScaleResult;
use super::server::ServerResult;
use super::startup::StartupResult;
use super::stats::{Bound, Samples, Target, fmt_num, round2};
use super::syscall_cost::WorkloadResult;
use super::table::Table;
use super::tracers::Mode;
use super::workloads::Workload;
use super::{Bench, RssSample};

/// Everything one run measured.
pub(super) struct Results {
    pub cost: Vec<WorkloadResult>,
    pub server: Option<ServerResult>,
    pub startup: StartupResult,
    pub scale: ScaleResult,
    pub probe: ProbeTime,
    pub enforce: Result<EnforceResult, String>,
    pub checks: Vec<RecordingCheck>,
    pub rss: Vec<RssSample>,
}

const BYTES_PER_MB: f64 = 1e6;

impl Results {
    fn cost(&self, w: Workload) -> Option<&WorkloadResult> {
        self.cost.iter().find(|r| r.workload == w)
    }

    fn rss_max(&self) -> Option<&RssSample> {
        self.rss.iter().max_by_key(|r| r.kib)
    }

    pub(super) fn targets(&self) -> Vec<Target> {
        let mut t = Vec::new();
        for w in [Workload::Getppid, Workload::Write] {
            let r = self.cost(w);
            let added = |m: Mode| r.and_then(|r| r.added(m));
            let ratio = |num: Option<f64>, den: Option<f64>| match (num, den) {
                (Some(n), Some(d)) if d > 0.0 => Some(n / d),
                _ => None,
            };
            let (cinch, floor) = (added(Mode::Cinch), added(Mode::Floor));
            t.push(Target {
                key: match w {
                    Workload::Getppid => "cinch_added_vs_floor_added_getppid",
                    _ => "cinch_added_vs_floor_added_write",
                },
                what: format!("{}: cinch's added cost / the floor's", w.key()),
                value: ratio(cinch, floor),
                bound: Bound::AtMost,
                limit: 1.25,
                unit: " x",
                note: format!(
                    "medians: cinch adds {} ns, the floor {} ns; from the minima: {}; the floor's added cost plus the probe body's run time (kernel BPF statistics, {} ns) would make it {}",
                    opt(cinch),
                    opt(floor),
                    opt(ratio(
                        r.and_then(|r| r.added_min(Mode::Cinch)),
                        r.and_then(|r| r.added_min(Mode::Floor))
                    )),
                    opt(self.probe.body(&self.probe.traced)),
                    opt(ratio(
                        floor.zip(self.probe.body(&self.probe.traced)).map(|(f, b)| f + b),
                        floor
                    ))
                ),
            });
            let bpftrace = added(Mode::Bpftrace);
            t.push(Target {
                key: match w {
                    Workload::Getppid => "bpftrace_added_vs_cinch_added_getppid",
                    _ => "bpftrace_added_vs_cinch_added_write",
                },
                what: format!("{}: bpftrace's added cost / cinch's", w.key()),
                value: ratio(bpftrace, cinch),
                bound: Bound::AtLeast,
                limit: 3.0,
                unit: " x",
                note: format!("medians: bpftrace adds {} ns", opt(bpftrace)),
            });
            let strace = added(Mode::Strace);
            t.push(Target {
                key: match w {
                    Workload::Getppid => "strace_added_vs_cinch_added_getppid",
                    _ => "strace_added_vs_cinch_added_write",
                },
                what: format!("{}: strace -f's added cost / cinch's", w.key()),
                value: ratio(strace, cinch),
                bound: Bound::AtLeast,
                limit: 500.0,
                unit: " x",
                note: format!("medians: strace -f adds {} ns", opt(strace)),
            });
        }
        let untraced_loop = |w: Workload| {
            self.cost(w)
                .and_then(|r| Some(r.median(Mode::Untraced)? - r.median(Mode::Floor)?))
        };
        t.push(Target {
            key: "untraced_over_floor_ns",
            what: "an untraced process while cinch records: probe run time over the empty program's"
                .to_owned(),
            value: self.probe.body(&self.probe.untraced),
            bound: Bound::AtMost,
            limit: 10.0,
            unit: " ns",
            note: format!(
                "docs/DESIGN.md target; kernel BPF statistics, medians; timed by the loops instead (untraced minus floor, noisier): getppid {} ns, write {} ns",
                opt(untraced_loop(Workload::Getppid)),
                opt(untraced_loop(Workload::Write))
            ),
        });
        t.push(Target {
            key: "agent_untraced_over_floor_ns",
            what: "every process on a node while `cinch agent` runs: probe run time over the empty program's"
                .to_owned(),
            value: self.probe.body(&self.probe.untraced_agent),
            bound: Bound::AtMost,
            limit: 10.0,
            unit: " ns",
            note: "the agent's configuration (watch mode, 128 slots); kernel BPF statistics, medians".to_owned(),
        });
        let incomplete = self.checks.iter().filter(|c| !c.complete()).count();
        let lost: u64 = self
            .checks
            .iter()
            .map(|c| c.lost_syscalls.saturating_add(c.map_full))
            .fold(0, u64::saturating_add);
        t.push(Target {
            key: "lost_syscalls",
            what: "recordings that lost or under-counted syscalls".to_owned(),
            value: Some(incomplete as f64),
            bound: Bound::AtMost,
            limit: 0.0,
            unit: "",
            note: format!(
                "{} recordings checked (incl. the two-thread storm, fork+exec and fork churn): lost.syscalls + lost.map_full = {lost}; each counted the measured syscall at least as often as the workload made it, and every process",
                self.checks.len()
            ),
        });
        t.push(Target {
            key: "nginx_throughput_loss_percent",
            what: "nginx + wrk: throughput lost under cinch record".to_owned(),
            value: self
                .server
                .as_ref()
                .and_then(|s| s.loss_percent(Mode::Cinch)),
            bound: Bound::AtMost,
            limit: 5.0,
            unit: " %",
            note: match &self.server {
                Some(s) => format!(
                    "median requests/s under cinch vs untraced; from nginx's CPU time per request, a CPU-bound nginx would lose {}",
                    s.cpu_loss_percent(Mode::Cinch)
                        .map_or_else(|| "-".to_owned(), |l| format!("{l:.1} %"))
                ),
                None => String::new(),
            },
        });
        t.push(Target {
            key: "startup_added_ms",
            what: "cinch record -- /bin/true, over bare /bin/true".to_owned(),
            value: self.startup.added_ms(),
            bound: Bound::AtMost,
            limit: 150.0,
            unit: " ms",
            note: "medians, spawn to reap".to_owned(),
        });
        let rss = self.rss_max();
        t.push(Target {
            key: "tracer_peak_rss_mb",
            what: "cinch's peak RSS, largest of every run".to_owned(),
            value: rss.map(|r| r.kib as f64 * 1024.0 / BYTES_PER_MB),
            bound: Bound::AtMost,
            limit: 30.0,
            unit: " MB",
            note: rss.map_or_else(String::new, |r| {
                format!(
                    "1 MB = 10^6 bytes ({:.1} MiB); largest in: {}",
                    r.kib as f64 / 1024.0,
                    r.what
                )
            }),
        });
        t.push(Target {
            key: "scale_many_over_one_target",
            what: format!(
                "probe run time with {} targets / with 1 (--new-containers)",
                self.probe.targets
            ),
            value: self.probe.scale_ratio(),
            bound: Bound::AtMost,
            limit: 1.10,
            unit: " x",
            note: format!(
                "kernel BPF statistics, medians (the program's own time: stricter than the whole syscall's, and steadier); timed by the getppid loop instead: {} targets / 1 = {}{}",
                self.scale.targets,
                opt(self.scale.ratio()),
                self.scale
                    .limit_note
                    .as_ref()
                    .map_or_else(String::new, |n| format!("; {n}"))
            ),
        });
        for w in [Workload::Getppid, Workload::Write] {
            let (value, note) = match &self.enforce {
                Ok(e) => (
                    e.median(w, Filter::Generated)
                        .zip(e.median(w, Filter::DockerDefault))
                        .map(|(g, d)| g / d),
                    "medians, ns per call, both loaded by cinch run".to_owned(),
                ),
                Err(why) => (None, why.clone()),
            };
            t.push(Target {
                key: match w {
                    Workload::Getppid => "generated_vs_docker_default_getppid",
                    _ => "generated_vs_docker_default_write",
                },
                what: format!(
                    "{}: cost under the generated profile / under Docker's default",
                    w.key()
                ),
                value,
                bound: Bound::AtMost,
                limit: 1.0,
                unit: " x",
                note,
            });
        }
        t
    }

    pub(super) fn tables(&self, rounds: usize) -> Vec<Table> {
        let mut tables = Vec::new();
        let cost_modes = [
            Mode::None,
            Mode::Floor,
            Mode::Cinch,
            Mode::Untraced,
            Mode::Bpftrace,
            Mode::Strace,
        ];
        let mut headers = vec!["workload", "unit"];
        headers.extend(cost_modes.iter().map(|m| m.label()));
        let mut t = Table::new(
            format!(
                "Cost per operation, ns (the workload's CPU time; strace -f: wall time): median [min] of up to {rounds} interleaved runs (fork+exec and fork: 3)"
            ),
            &headers,
        );
        for r in &self.cost {
            let mut row = vec![r.workload.key().to_owned(), r.workload.unit().to_owned()];
            for m in cost_modes {
                row.push(
                    r.samples(m)
                        .map_or_else(|| "-".to_owned(), |s| median_min(&s)),
                );
            }
            t.row(row);
        }
        tables.push(t);

        let mut t = Table::new(
            "Added over none, ns (medians, same unit) and ratios",
            &[
                "workload",
                "floor",
                "cinch",
                "cinch/floor",
                "untraced-floor",
                "bpftrace",
                "bpftrace/cinch",
                "strace -f",
                "strace/cinch",
            ],
        );
        for r in &self.cost {
            let a = |m| r.added(m);
            let div = |n: Option<f64>, d: Option<f64>| match (n, d) {
                (Some(n), Some(d)) if d > 0.0 => format!("{}x", fmt_num(n / d)),
                _ => "-".to_owned(),
            };
            t.row(vec![
                r.workload.key().to_owned(),
                opt(a(Mode::Floor)),
                opt(a(Mode::Cinch)),
                div(a(Mode::Cinch), a(Mode::Floor)),
                opt(r
                    .median(Mode::Untraced)
                    .zip(r.median(Mode::Floor))
                    .map(|(u, f)| u - f)),
                opt(a(Mode::Bpftrace)),
                div(a(Mode::Bpftrace), a(Mode::Cinch)),
                opt(a(Mode::Strace)),
                div(a(Mode::Strace), a(Mode::Cinch)),
            ]);
        }
        tables.push(t);

        if let Some(s) = &self.server {
            let mut t = Table::new(
                format!(
                    "nginx on 127.0.0.1, wrk -t1 -c32 -d{}s: requests/s, median [min]",
                    s.seconds
                ),
                &[
                    "under",
                    "requests/s",
                    "loss",
                    "nginx CPU per request, us",
                    "loss if CPU-bound",
                ],
            );
            let pct = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |l| format!("{l:.1} %"));
            for m in &s.modes {
                t.row(vec![
                    m.mode.label().to_owned(),
                    median_min(&m.rps),
                    pct(s.loss_percent(m.mode)),
                    median_min(&m.cpu_us_per_request),
                    pct(s.cpu_loss_percent(m.mode)),
                ]);
            }
            tables.push(t);
        }

        let mut t = Table::new(
            "Start-up, memory and scale",
            &["measure", "value", "compared with"],
        );
        t.row(vec![
            "cinch record -- /bin/true".to_owned(),
            format!("{} ms", median_min(&self.startup.cinch)),
            format!("/bin/true {} ms", median_min(&self.startup.bare)),
        ]);
        if let Some(r) = self.rss_max() {
            t.row(vec![
                "cinch peak RSS (largest run)".to_owned(),
                format!(
                    "{:.1} MB ({:.1} MiB)",
                    r.kib as f64 * 1024.0 / BYTES_PER_MB,
                    r.kib as f64 / 1024.0
                ),
                r.what.clone(),
            ]);
        }
        if let Some(fork) = self.cost(Workload::Fork) {
            let rate = |m| fork.median(m).map(|ns| fmt_num(1e9 / ns));
            t.row(vec![
                "process churn under cinch record".to_owned(),
                format!(
                    "{} forks/s",
                    rate(Mode::Cinch).unwrap_or_else(|| "-".to_owned())
                ),
                format!(
                    "untraced {} forks/s (one forking process, fork + exit + wait)",
                    rate(Mode::None).unwrap_or_else(|| "-".to_owned())
                ),
            ]);
        }
        t.row(vec![
            format!("getppid, {} targets (--new-containers)", self.scale.targets),
            format!("{} ns", median_min(&self.scale.many)),
            format!(
                "1 target {} ns; record -- loop {} ns",
                median_min(&self.scale.one),
                median_min(&self.scale.tree)
            ),
        ]);
        tables.push(t);

        let mut t = Table::new(
            "The probe's own run time per syscall, sys_enter and sys_exit programs together (kernel BPF statistics, getppid loop): ns, median [min]",
            &["program", "ns per run", "over the empty program"],
        );
        let p = &self.probe;
        let many = format!("cinch, traced, {} targets (--new-containers)", p.targets);
        for (what, s) in [
            ("empty program (the floor)", &p.floor),
            ("cinch, untraced process", &p.untraced),
            ("cinch agent, untraced process", &p.untraced_agent),
            ("cinch, traced process", &p.traced),
            ("cinch, traced, 1 target (--new-containers)", &p.traced_one),
            (many.as_str(), &p.traced_many),
        ] {
            t.row(vec![what.to_owned(), median_min(s), opt(p.body(s))]);
        }
        tables.push(t);

        if let Ok(e) = &self.enforce {
            let mut headers = vec!["workload"];
            headers.extend(Filter::ALL.iter().map(|f| f.label()));
            headers.push("generated/docker");
            let mut t = Table::new(
                "Enforcement (cinch run, seccomp loaded as runc does): ns per call, median [min]",
                &headers,
            );
            for wf in &e.workloads {
                let w = wf.workload;
                let mut row = vec![w.key().to_owned()];
                for f in Filter::ALL {
                    row.push(
                        wf.filters
                            .iter()
                            .find(|(x, _)| *x == f)
                            .map_or_else(|| "-".to_owned(), |(_, s)| median_min(s)),
                    );
                }
                row.push(
                    e.median(w, Filter::Generated)
                        .zip(e.median(w, Filter::DockerDefault))
                        .map_or_else(|| "-".to_owned(), |(g, d)| format!("{:.3}x", g / d)),
                );
                t.row(row);
            }
            tables.push(t);
        }
        tables
    }

    /// What a reader of the tables must know about this run: runs taken while another program
    /// was attached to sys_enter (another session's cinch, bpftrace...), wrk errors.
    pub(super) fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        for r in &self.cost {
            let unclean: usize = r.modes.iter().map(|m| m.runs.len() - m.clean_runs()).sum();
            if unclean == 0 {
                continue;
            }
            let mut holders: Vec<&str> = r
                .modes
                .iter()
                .flat_map(|m| m.foreign.iter().map(String::as_str))
                .collect();
            holders.sort_unstable();
            holders.dedup();
            notes.push(format!(
                "{}: {unclean} runs were taken while another program was attached to sys_enter ({}); {}",
                r.workload.key(),
                holders.join(", "),
                if r.clean_only() {
                    "they were set aside"
                } else {
                    "too few clean runs were left, so every run counts and all figures include that program's cost"
                }
            ));
        }
        if let Some(s) = &self.server {
            for m in &s.modes {
                if !m.foreign.is_empty() {
                    notes.push(format!(
                        "nginx under {}: another program was attached to sys_enter during some runs ({})",
                        m.mode.label(),
                        m.foreign.join(", ")
                    ));
                }
                if !m.errors.is_empty() {
                    notes.push(format!(
                        "nginx under {}: wrk reported {}",
                        m.mode.label(),
                        m.errors.join("; ")
                    ));
                }
            }
        }
        notes
    }

    pub(super) fn targets_table(targets: &[Target]) -> Table {
        let mut t = Table::new("Targets", &["target", "measured", "limit", "verdict"]);
        for x in targets {
            t.row(vec![
                x.what.clone(),
                x.value_text(),
                x.limit_text(),
                x.verdict(),
            ]);
        }
        t
    }

    pub(super) fn to_json(&self, b: &Bench, targets: &[Target]) -> Value {
        let rss_max = self.rss_max();
        json!({
            "cost_per_operation": super::syscall_cost::to_json(&self.cost, b.quick),
            "server": self.server.as_ref().map(ServerResult::to_json),
            "startup": self.startup.to_json(),
            "tracer_peak_rss": {
                "max_kib": rss_max.map(|r| r.kib),
                "max_mb": rss_max.map(|r| round2(r.kib as f64 * 1024.0 / BYTES_PER_MB)),
                "max_in": rss_max.map(|r| r.what.clone()),
                "how": "wait4() ru_maxrss of each cinch process: the larger of its own peak and its largest reaped descendant's (the workloads here are far smaller than cinch, except perhaps nginx)",
                "runs": self.rss.iter().map(|r| json!({"what": r.what, "kib": r.kib})).collect::<Vec<_>>(),
            },
            "scale": self.scale.to_json(),
            "probe_run_time": self.probe.to_json(),
            "enforcement": match &self.enforce {
                Ok(e) => e.to_json(),
                Err(why) => json!({"not_measured": why}),
            },
            "recordings": {
                "checked": self.checks.len(),
                "incomplete": self.checks.iter().filter(|c| !c.complete()).count(),
                "list": self.checks.iter().map(RecordingCheck::to_json).collect::<Vec<_>>(),
            },
            "targets": targets.iter().map(Target::to_json).collect::<Vec<_>>(),
            "notes": self.notes(),
        })
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), fmt_num)
}

fn median_min(s: &Samples) -> String {
    match (s.median(), s.min()) {
        (Some(m), Some(n)) => format!("{} [{}]", fmt_num(m), fmt_num(n)),
        _ => "-".to_owned(),
    }
}
