//! What a loaded filter does: with a syscall ([`LoadPlan::verdict`]), with a syscall by name
//! ([`LoadPlan::name_verdict`]) and with a recorded argument value
//! ([`LoadPlan::verdict_for_value`]); and the facts runc's stub and libseccomp take from the plan
//! (the filter's architectures, the last syscall per architecture, the rules given to
//! libseccomp). `verify`, `report`, `diff` and the compiler all ask here.

use std::collections::BTreeSet;
use std::str::FromStr as _;

use libseccomp::{ScmpArch, ScmpSyscall};

use super::load::{Action, LoadPlan, NamedRule};
use crate::arch::Arch;
use crate::naming;

/// What the loaded filter does with one syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A rule or the default action lets it run.
    Allowed,
    /// Rules with argument conditions decide; cinch does not know the arguments, so it counts as
    /// allowed (as `diff` and `report` count it).
    DependsOnArguments,
    /// The action the filter takes instead of running it.
    Denied(Action),
    /// runc's stub answers ENOSYS: the number is above every syscall the profile names on this
    /// architecture.
    EnosysStub,
    /// The architecture is not in the filter: libseccomp's bad-architecture action kills the
    /// thread.
    BadArch,
}

impl Verdict {
    pub fn denies(self) -> bool {
        matches!(
            self,
            Verdict::Denied(_) | Verdict::EnosysStub | Verdict::BadArch
        )
    }

    pub fn describe(self) -> String {
        match self {
            Verdict::Allowed => "is allowed".to_owned(),
            Verdict::DependsOnArguments => "is allowed for some arguments only".to_owned(),
            Verdict::Denied(a) => a.describe(),
            Verdict::EnosysStub => {
                "fails with ENOSYS (numbered above every syscall the profile names)".to_owned()
            }
            Verdict::BadArch => {
                "kills the thread (the architecture is not in the profile)".to_owned()
            }
        }
    }
}

fn number_on(arch: Arch, name: &str) -> Option<u32> {
    number_on_scmp(naming::scmp_arch(arch), name)
}

fn number_on_scmp(arch: ScmpArch, name: &str) -> Option<u32> {
    ScmpSyscall::from_name_by_arch(name, arch)
        .ok()
        .and_then(|s| u32::try_from(s.as_raw_syscall()).ok())
}

impl LoadPlan {
    /// The architectures in the filter, as libseccomp names them: the native one first (every
    /// libseccomp filter starts with it), then the listed ones, x32 and MIPS included.
    pub fn scmp_arches(&self) -> Result<Vec<ScmpArch>, String> {
        let mut out = vec![naming::scmp_arch(self.native)];
        for name in &self.architectures {
            let a = ScmpArch::from_str(name).map_err(|e| format!("architecture {name}: {e}"))?;
            if !out.contains(&a) {
                out.push(a);
            }
        }
        Ok(out)
    }

    /// The architectures the filter checks, as far as cinch models them (x32 and MIPS are not
    /// recorded).
    pub fn filter_arches(&self) -> BTreeSet<Arch> {
        let mut out: BTreeSet<Arch> = self
            .architectures
            .iter()
            .filter_map(|a| a.parse::<Arch>().ok())
            .collect();
        out.insert(self.native);
        out
    }

    /// runc's `findLastSyscalls` for one architecture of the filter: the highest number any
    /// rule's name has there, as the installed libseccomp resolves it (0 or unresolvable names do
    /// not count). `None` without a stub: the default action lets syscalls through, or no name
    /// exists on `arch`.
    pub fn last_syscall(&self, arch: ScmpArch) -> Option<u32> {
        if self.default.permissive_default() {
            return None;
        }
        self.rules
            .iter()
            .filter_map(|r| number_on_scmp(arch, &r.name))
            .max()
            .filter(|&n| n != 0)
    }

    /// [`LoadPlan::last_syscall`] for an architecture cinch records: syscalls numbered above it
    /// get ENOSYS from runc's stub.
    pub fn stub_threshold(&self, arch: Arch) -> Option<u32> {
        self.last_syscall(naming::scmp_arch(arch))
    }

    /// The rules libseccomp is given, in profile order: runc skips a rule whose action is the
    /// default one (libseccomp refuses it) and a name libseccomp cannot resolve.
    pub fn effective_rules(&self) -> impl Iterator<Item = &NamedRule> {
        self.rules
            .iter()
            .filter(|r| !self.skipped.contains(&r.name) && r.action != self.default)
    }

    /// What the filter does with the syscall `name` on `arch`; `None` when `arch` has no such
    /// syscall. A name the installed libseccomp does not know (runc skips it here) counts as
    /// its rules state it, as a runtime with a newer libseccomp loads it: what the profile
    /// allows does not depend on the machine reading it.
    pub fn name_verdict(&self, arch: Arch, name: &str) -> Option<Verdict> {
        let nr = naming::syscall_number(arch, name)?;
        if !self.skipped.contains(name) {
            return Some(self.verdict(arch, nr, Some(name)));
        }
        if !self.filter_arches().contains(&arch) {
            return Some(Verdict::BadArch);
        }
        let rules: Vec<&NamedRule> = self.rules.iter().filter(|r| r.name == name).collect();
        Some(
            if rules.iter().any(|r| r.action.allows() && r.args.is_empty()) {
                Verdict::Allowed
            } else if rules.iter().any(|r| r.action.allows()) {
                Verdict::DependsOnArguments
            } else {
                match rules.first() {
                    Some(r) => Verdict::Denied(r.action),
                    None if self.default.allows() => Verdict::Allowed,
                    None => Verdict::Denied(self.default),
                }
            },
        )
    }

    /// What the filter does with syscall `nr` (named `name`, when it has a name) on `arch`.
    pub fn verdict(&self, arch: Arch, nr: u32, name: Option<&str>) -> Verdict {
        if !self.filter_arches().contains(&arch) {
            return Verdict::BadArch;
        }
        if self.stub_threshold(arch).is_some_and(|max| nr > max) {
            return Verdict::EnosysStub;
        }
        let matching = self
            .effective_rules()
            .filter(|r| name == Some(r.name.as_str()) || number_on(arch, &r.name) == Some(nr));
        let mut conditional = false;
        for rule in matching {
            if rule.args.is_empty() {
                return if rule.action.allows() {
                    Verdict::Allowed
                } else {
                    Verdict::Denied(rule.action)
                };
            }
            conditional = true;
        }
        if conditional {
            Verdict::DependsOnArguments
        } else if self.default.allows() {
            Verdict::Allowed
        } else {
            Verdict::Denied(self.default)
        }
    }
}

impl LoadPlan {
    /// What the filter does with syscall `nr` on `arch` when its argument `index` is `value`
    /// (as the kernel side recorded it, masked with `mask`). Rules are tried in order as the
    /// kernel's filter does: the first whose conditions all hold decides. `DependsOnArguments`
    /// when a condition looks at another argument or at bits that were not recorded.
    pub fn verdict_for_value(
        &self,
        arch: Arch,
        nr: u32,
        name: Option<&str>,
        (index, mask, value): (u32, u64, u64),
    ) -> Verdict {
        match self.verdict(arch, nr, name) {
            Verdict::DependsOnArguments => {}
            other => return other,
        }
        let matching = self
            .effective_rules()
            .filter(|r| name == Some(r.name.as_str()) || number_on(arch, &r.name) == Some(nr));
        let mut unknown = false;
        for rule in matching {
            match crate::arg_rules::all_hold(&rule.args, index, mask, value) {
                Some(true) if !unknown => {
                    return if rule.action.allows() {
                        Verdict::Allowed
                    } else {
                        Verdict::Denied(rule.action)
                    };
                }
                Some(true) => return Verdict::DependsOnArguments,
                Some(false) => {}
                None => unknown = true,
            }
        }
        if unknown {
            Verdict::DependsOnArguments
        } else if self.default.allows() {
            Verdict::Allowed
        } else {
            Verdict::Denied(self.default)
        }
    }
}
