//! Attach ladders: a hook is a program of the embedded object and what it attaches to; a rung
//! is one way to attach; a ladder lists the ways to attach to one thing, most preferred first.
//! Attach points are chosen by trying, not by kernel version: distributions backport hooks,
//! build kernels without kprobes, and refuse fentry/fexit or LSM programs by policy.
//!
//! `Probe::load` climbs a ladder ([`Ladder::climb`]) and keeps the first rung that attaches;
//! `cinch doctor` surveys it ([`Ladder::survey`]): every rung attached and detached again, to
//! say which works and why the others do not. The ladders themselves are in
//! [`super::ladders`].

use std::fmt;
use std::path::Path;

use aya::Ebpf;
use aya::programs::{
    BtfTracePoint, FEntry, FExit, KProbe, Lsm, Program, ProgramError, RawTracePoint, TracePoint,
};

use super::outcome::{Outcome, error_text};

/// A program of the embedded object and what it attaches to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Hook {
    /// A BTF-enabled tracepoint, attached by its event name (the category only names it).
    /// Needs the kernel's BTF, as fentry, fexit and LSM programs do.
    TpBtf {
        program: &'static str,
        category: &'static str,
        event: &'static str,
    },
    RawTp {
        program: &'static str,
        category: &'static str,
        event: &'static str,
    },
    /// A classic tracepoint: its id is read from tracefs, which must be mounted.
    Tracepoint {
        program: &'static str,
        category: &'static str,
        event: &'static str,
    },
    Fentry {
        program: &'static str,
        function: &'static str,
    },
    Fexit {
        program: &'static str,
        function: &'static str,
    },
    Kprobe {
        program: &'static str,
        function: &'static str,
    },
    Lsm {
        program: &'static str,
        hook: &'static str,
    },
}

impl Hook {
    /// The program type, as `cinch doctor` and recordings name it: `tp_btf`, `raw_tp`...
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Hook::TpBtf { .. } => "tp_btf",
            Hook::RawTp { .. } => "raw_tp",
            Hook::Tracepoint { .. } => "tracepoint",
            Hook::Fentry { .. } => "fentry",
            Hook::Fexit { .. } => "fexit",
            Hook::Kprobe { .. } => "kprobe",
            Hook::Lsm { .. } => "lsm",
        }
    }

    /// What it is attached to: `raw_syscalls:sys_enter`, `cap_capable`, `file_open`.
    pub(crate) fn target(&self) -> String {
        match *self {
            Hook::TpBtf {
                category, event, ..
            }
            | Hook::RawTp {
                category, event, ..
            }
            | Hook::Tracepoint {
                category, event, ..
            } => format!("{category}:{event}"),
            Hook::Fentry { function, .. }
            | Hook::Fexit { function, .. }
            | Hook::Kprobe { function, .. } => function.to_owned(),
            Hook::Lsm { hook, .. } => hook.to_owned(),
        }
    }

    fn needs_btf(&self) -> bool {
        matches!(
            self,
            Hook::TpBtf { .. } | Hook::Fentry { .. } | Hook::Fexit { .. } | Hook::Lsm { .. }
        )
    }
}

/// `tp_btf on raw_syscalls:sys_enter`.
impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {}", self.kind(), self.target())
    }
}

/// A trace event a hook needs, under tracefs's `events/`, and the release that added it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TraceEvent {
    pub path: &'static str,
    pub since: &'static str,
}

/// One way to attach, and what `cinch record` writes down when it is the one that attached.
#[derive(Debug)]
pub(crate) struct Rung<T: 'static> {
    pub hook: Hook,
    pub gives: T,
    /// A trace event that must exist (checked when tracefs is mounted), so that its absence is
    /// said plainly rather than as an attach error.
    pub event: Option<TraceEvent>,
}

/// `tp_btf on capability:cap_capable (Linux 6.14+)`.
impl<T> fmt::Display for Rung<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.hook)?;
        match &self.event {
            Some(event) => write!(f, " ({}+)", event.since),
            None => Ok(()),
        }
    }
}

/// The ways to attach to one thing, most preferred first: the first that works is used.
#[derive(Debug)]
pub(crate) struct Ladder<T: 'static> {
    pub rungs: &'static [Rung<T>],
}

fn program<'a, T>(ebpf: &'a mut Ebpf, name: &str) -> Result<&'a mut T, Outcome>
where
    &'a mut T: TryFrom<&'a mut Program, Error = ProgramError>,
{
    let prog = ebpf.program_mut(name).ok_or_else(|| {
        Outcome::Failed(format!(
            "the embedded eBPF object has no program {name}; rebuild cinch"
        ))
    })?;
    prog.try_into()
        .map_err(|e: ProgramError| Outcome::Failed(error_text(&e)))
}

/// Loads and attaches program `$name` of type `$ty` (`$load` and `$attach` use `$p`). With
/// `$keep` it stays attached; otherwise, and whenever it fails, it is detached and unloaded.
macro_rules! exercise {
    ($ebpf:expr, $ty:ty, $name:expr, $keep:expr, |$p:ident| $load:expr, $attach:expr) => {
        match program::<$ty>($ebpf, $name) {
            Err(outcome) => outcome,
            Ok($p) => {
                let result = (|| -> Result<(), ProgramError> {
                    $load?;
                    let link = $attach?;
                    if !$keep {
                        $p.detach(link)?;
                    }
                    Ok(())
                })();
                if !$keep || result.is_err() {
                    let _ = $p.unload();
                }
                Outcome::of(result)
            }
        }
    };
}

impl<T> Rung<T> {
    /// Loads and attaches the program; it stays attached for as long as `ebpf` lives.
    pub(crate) fn attach(&self, ebpf: &mut Ebpf, btf: Option<&aya::Btf>) -> Outcome {
        let started = std::time::Instant::now();
        let outcome = self.exercise(ebpf, btf, true);
        // The kernel's verifier is most of a recording's start-up.
        tracing::debug!(hook = %self.hook, elapsed = ?started.elapsed(), "loaded and attached");
        outcome
    }

    /// Loads, attaches, detaches and unloads the program: whether it works, leaving nothing.
    pub(crate) fn try_out(&self, ebpf: &mut Ebpf, btf: Option<&aya::Btf>) -> Outcome {
        self.exercise(ebpf, btf, false)
    }

    /// What the rung needs that this machine lacks: tracefs for a classic tracepoint (mounted
    /// here when it is not), its trace event, the kernel's BTF for the BTF-attached types.
    fn unmet(&self, btf: Option<&aya::Btf>) -> Option<String> {
        if matches!(self.hook, Hook::Tracepoint { .. })
            && let Err(e) = crate::tracefs::ensure_mounted()
        {
            return Some(format!(
                "tracefs is not mounted: {}",
                crate::error::sentence(&e)
            ));
        }
        if let Some(event) = self.event
            && let Some(tracefs) = crate::tracefs::mount_point()
        {
            let dir = tracefs.join("events").join(event.path);
            if !dir.is_dir() {
                return Some(format!(
                    "{} does not exist; the tracepoint was added in {}",
                    dir.display(),
                    event.since
                ));
            }
        }
        if self.hook.needs_btf() && btf.is_none() {
            return Some("the kernel's BTF could not be read".to_owned());
        }
        None
    }

    fn exercise(&self, ebpf: &mut Ebpf, btf: Option<&aya::Btf>, keep: bool) -> Outcome {
        if let Some(why) = self.unmet(btf) {
            return Outcome::Unavailable(why);
        }
        let outcome = match (self.hook, btf) {
            (Hook::TpBtf { program, event, .. }, Some(btf)) => {
                exercise!(
                    ebpf,
                    BtfTracePoint,
                    program,
                    keep,
                    |p| p.load(event, btf),
                    p.attach()
                )
            }
            (Hook::Fentry { program, function }, Some(btf)) => {
                exercise!(
                    ebpf,
                    FEntry,
                    program,
                    keep,
                    |p| p.load(function, btf),
                    p.attach()
                )
            }
            (Hook::Fexit { program, function }, Some(btf)) => {
                exercise!(
                    ebpf,
                    FExit,
                    program,
                    keep,
                    |p| p.load(function, btf),
                    p.attach()
                )
            }
            (Hook::Lsm { program, hook }, Some(btf)) => {
                exercise!(ebpf, Lsm, program, keep, |p| p.load(hook, btf), p.attach())
            }
            (Hook::RawTp { program, event, .. }, _) => {
                exercise!(
                    ebpf,
                    RawTracePoint,
                    program,
                    keep,
                    |p| p.load(),
                    p.attach(event)
                )
            }
            (
                Hook::Tracepoint {
                    program,
                    category,
                    event,
                },
                _,
            ) => exercise!(
                ebpf,
                TracePoint,
                program,
                keep,
                |p| p.load(),
                p.attach(category, event)
            ),
            (Hook::Kprobe { program, function }, _) => {
                exercise!(
                    ebpf,
                    KProbe,
                    program,
                    keep,
                    |p| p.load(),
                    p.attach(function, 0)
                )
            }
            // `unmet` said so already.
            (
                Hook::TpBtf { .. } | Hook::Fentry { .. } | Hook::Fexit { .. } | Hook::Lsm { .. },
                None,
            ) => Outcome::Unavailable("the kernel's BTF could not be read".to_owned()),
        };
        match outcome {
            Outcome::Unavailable(e)
                if matches!(self.hook, Hook::Kprobe { .. }) && !kprobes_built_in() =>
            {
                Outcome::Unavailable(format!("kprobes are not compiled into this kernel: {e}"))
            }
            o => o,
        }
    }
}

/// Kprobes exist when the kernel has the kprobe PMU (perf_event_open) or tracefs kprobe_events.
fn kprobes_built_in() -> bool {
    Path::new("/sys/bus/event_source/devices/kprobe/type").exists()
        || Path::new(crate::tracefs::TRACEFS)
            .join("kprobe_events")
            .exists()
}

/// The rungs of a ladder that were tried, with what came of each.
pub(crate) struct Climb<T: 'static> {
    pub tried: Vec<(&'static Rung<T>, Outcome)>,
}

impl<T> Climb<T> {
    /// The rung used: the first that works.
    pub(crate) fn chosen(&self) -> Option<&'static Rung<T>> {
        self.tried
            .iter()
            .find(|(_, o)| o.works())
            .map(|(rung, _)| *rung)
    }
}

impl<T> Ladder<T> {
    /// What `cinch record` does: attaches the first rung that works and leaves it attached.
    /// `skip` gives the reason a rung is not to be tried at all.
    pub(crate) fn climb(
        &'static self,
        ebpf: &mut Ebpf,
        btf: Option<&aya::Btf>,
        skip: impl Fn(&Rung<T>) -> Option<String>,
    ) -> Climb<T> {
        let mut tried = Vec::new();
        for rung in self.rungs {
            let outcome = match skip(rung) {
                Some(why) => Outcome::Skipped(why),
                None => rung.attach(ebpf, btf),
            };
            let works = outcome.works();
            tried.push((rung, outcome));
            if works {
                break;
            }
        }
        Climb { tried }
    }

    /// What `cinch doctor` does: tries every rung and detaches it again. The first that works
    /// is the one [`Ladder::climb`] keeps.
    pub(crate) fn survey(&'static self, ebpf: &mut Ebpf, btf: Option<&aya::Btf>) -> Climb<T> {
        let tried = self
            .rungs
            .iter()
            .map(|rung| (rung, rung.try_out(ebpf, btf)))
            .collect();
        Climb { tried }
    }
}
