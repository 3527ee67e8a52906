//! Compiling a [`LoadPlan`] into the BPF program runc would load for it.
//!
//! The steps follow runc's `InitSeccomp` and `patchbpf.PatchAndLoad`: a libseccomp filter whose
//! default action is the profile's, the listed architectures added to the native one, binary-tree
//! optimization above 32 rules, no-new-privileges left to the caller, one rule per name
//! ([`LoadPlan::effective_rules`]; two conditions on the same argument become separate rules),
//! and the exported program prefixed with runc's ENOSYS stub ([`super::enosys_stub`]). Loading
//! it is the caller's: `cinch run` installs it with `prctl(PR_SET_SECCOMP)` (or `seccomp(2)`
//! when the profile asks for filter flags); `generate` compiles every profile it writes.

use std::io::{Read as _, Seek as _};
use std::os::fd::{FromRawFd as _, OwnedFd};

use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpFilterContext, ScmpSyscall};

use super::enosys_stub::{self, AUDIT_ARCH_X86_64, LastSyscalls, Mode};
use super::load::{Action, LoadPlan};

/// `BPF_MAXINSNS` (`include/uapi/linux/bpf_common.h`): the kernel refuses longer programs.
pub const BPF_MAXINSNS: usize = 4096;

/// A program ready to install.
#[derive(Debug, Clone)]
pub struct CompiledFilter {
    pub program: Vec<libc::sock_filter>,
    /// `SECCOMP_FILTER_FLAG_*` bits; 0 means `prctl(PR_SET_SECCOMP)`, as runc does without flags.
    pub flags: u32,
    /// Rules given to libseccomp (after skipping redundant and unknown ones).
    pub rules: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("libseccomp cannot {step}: {detail}")]
    Libseccomp { step: String, detail: String },
    #[error(
        "the compiled filter has {0} instructions, more than the kernel's limit of 4096; the profile has too many argument rules"
    )]
    TooLong(usize),
    #[error("cannot build runc's ENOSYS stub: {0}")]
    Stub(#[from] enosys_stub::StubError),
}

fn scmp(step: impl Into<String>) -> impl FnOnce(libseccomp::error::SeccompError) -> CompileError {
    let step = step.into();
    move |e| CompileError::Libseccomp {
        step,
        detail: e.to_string(),
    }
}

fn action(a: Action) -> ScmpAction {
    match a {
        Action::KillThread => ScmpAction::KillThread,
        Action::KillProcess => ScmpAction::KillProcess,
        Action::Trap => ScmpAction::Trap,
        Action::Errno(e) => ScmpAction::Errno(i32::from(e)),
        Action::Trace(e) => ScmpAction::Trace(e),
        Action::Allow => ScmpAction::Allow,
        Action::Log => ScmpAction::Log,
        Action::Notify => ScmpAction::Notify,
    }
}

/// The kernel's `AUDIT_ARCH_*` for a libseccomp architecture (`include/uapi/linux/audit.h`), for
/// the architectures runc accepts; x32 shares x86_64's.
fn audit_arch(arch: ScmpArch) -> Option<(u32, Mode)> {
    const LE: u32 = 0x4000_0000;
    const BITS64: u32 = 0x8000_0000;
    const N32: u32 = 0x2000_0000;
    let audit = match arch {
        ScmpArch::X32 => return Some((AUDIT_ARCH_X86_64, Mode::X32)),
        ScmpArch::X8664 => AUDIT_ARCH_X86_64,
        ScmpArch::X86 => 3 | LE,
        ScmpArch::Arm => 40 | LE,
        ScmpArch::Aarch64 => 183 | BITS64 | LE,
        ScmpArch::Mips => 8,
        ScmpArch::Mipsel => 8 | LE,
        ScmpArch::Mips64 => 8 | BITS64,
        ScmpArch::Mips64N32 => 8 | BITS64 | N32,
        ScmpArch::Mipsel64 => 8 | BITS64 | LE,
        ScmpArch::Mipsel64N32 => 8 | BITS64 | LE | N32,
        ScmpArch::Ppc => 20,
        ScmpArch::Ppc64 => 21 | BITS64,
        ScmpArch::Ppc64Le => 21 | BITS64 | LE,
        ScmpArch::S390 => 22,
        ScmpArch::S390X => 22 | BITS64,
        ScmpArch::Riscv64 => 243 | BITS64 | LE,
        ScmpArch::Loongarch64 => 258 | BITS64 | LE,
        _ => return None,
    };
    Some((audit, Mode::Plain))
}

/// runc's `findLastSyscalls`, keyed as its stub reads them.
fn last_syscalls(plan: &LoadPlan, arches: &[ScmpArch]) -> LastSyscalls {
    let mut last = LastSyscalls::new();
    for &arch in arches {
        if let (Some((audit, mode)), Some(n)) = (audit_arch(arch), plan.last_syscall(arch)) {
            last.entry(audit).or_default().insert(mode, n);
        }
    }
    last
}

/// Builds the program for `plan` without loading anything.
///
/// `plan.native` is the machine that will load it; when that is not this one (`generate`
/// checking a profile made for another architecture), libseccomp's own native architecture is
/// taken out of the filter, so the program is the one that machine's runc would build.
pub fn compile(plan: &LoadPlan) -> Result<CompiledFilter, CompileError> {
    let default = action(plan.default);
    let mut ctx = ScmpFilterContext::new(default).map_err(scmp("create a filter"))?;
    let arches = plan
        .scmp_arches()
        .map_err(|detail| CompileError::Libseccomp {
            step: "use the profile's architectures".to_owned(),
            detail,
        })?;
    for &arch in &arches {
        if !ctx.is_arch_present(arch).unwrap_or(false) {
            ctx.add_arch(arch)
                .map_err(scmp(format!("add architecture {arch:?}")))?;
        }
    }
    let here = ScmpArch::native();
    if !arches.contains(&here) {
        ctx.remove_arch(here)
            .map_err(scmp("remove this machine's architecture"))?;
    }
    if plan.rules.len() > 32 {
        // Not fatal in runc either: older libseccomp has no binary tree.
        let _ = ctx.set_ctl_optimize(2);
    }
    // no_new_privs is the caller's decision, as in runc.
    ctx.set_ctl_nnp(false)
        .map_err(scmp("leave no_new_privs alone"))?;
    let mut rules = 0;
    for rule in plan.effective_rules() {
        let Ok(sys) = ScmpSyscall::from_name(&rule.name) else {
            continue;
        };
        let act = action(rule.action);
        let what = || format!("add the rule for {}", rule.name);
        if rule.args.is_empty() {
            ctx.add_rule(act, sys).map_err(scmp(what()))?;
            rules += 1;
            continue;
        }
        let conditions: Vec<ScmpArgCompare> = rule.args.iter().map(|c| c.to_scmp()).collect();
        let mut per_index = [0u8; 6];
        for c in &rule.args {
            per_index[c.index as usize] += 1;
        }
        if per_index.iter().any(|&n| n > 1) {
            // runc: two conditions on one argument cannot be ANDed by libseccomp; each becomes
            // its own rule (so they are ORed).
            for c in conditions {
                ctx.add_rule_conditional(act, sys, &[c])
                    .map_err(scmp(what()))?;
                rules += 1;
            }
        } else {
            ctx.add_rule_conditional(act, sys, &conditions)
                .map_err(scmp(what()))?;
            rules += 1;
        }
    }
    let mut program = if plan.default.permissive_default() {
        Vec::new()
    } else {
        enosys_stub::generate(&last_syscalls(plan, &arches))?
    };
    program.extend(export(&ctx)?);
    if program.len() > BPF_MAXINSNS {
        return Err(CompileError::TooLong(program.len()));
    }
    let flags = plan.flags.iter().fold(0, |acc, f| acc | f.bit());
    Ok(CompiledFilter {
        program,
        flags,
        rules,
    })
}

/// libseccomp's program as instructions (seccomp_export_bpf writes them in host byte order).
fn export(ctx: &ScmpFilterContext) -> Result<Vec<libc::sock_filter>, CompileError> {
    let io = |step: &str| {
        let step = step.to_owned();
        move |e: std::io::Error| CompileError::Libseccomp {
            step,
            detail: e.to_string(),
        }
    };
    // SAFETY: memfd_create with a static, NUL-terminated name; the fd is owned below.
    let raw = unsafe { libc::memfd_create(c"cinch-seccomp".as_ptr(), libc::MFD_CLOEXEC) };
    if raw < 0 {
        return Err(io("create a memory file for the program")(
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: `raw` is a new descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    ctx.export_bpf(&fd).map_err(scmp("export the program"))?;
    let mut file = std::fs::File::from(fd);
    file.rewind().map_err(io("read the program back"))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(io("read the program back"))?;
    Ok(bytes
        .chunks_exact(8)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::super::enosys_stub::tests::run;
    use super::super::load::{Host, resolve};
    use super::super::spec::parse_spec;
    use super::*;
    use crate::Arch;

    fn plan(json: &str) -> LoadPlan {
        let spec = parse_spec(json.as_bytes(), Path::new("p.json")).expect("parses");
        let host = Host {
            native: Arch::native(),
            kernel_release: "6.18.0".to_owned(),
            bounding: BTreeSet::new(),
        };
        resolve(&spec, &host, Path::new("p.json")).expect("loads")
    }

    const RET_ERRNO: u32 = 0x0005_0000;

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_compiled_program_matches_the_verdicts() {
        let p = plan(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],
                "syscalls":[{"names":["read","write","execve","exit_group","clone3"],"action":"SCMP_ACT_ALLOW"},
                            {"names":["getpid"],"action":"SCMP_ACT_ERRNO","errnoRet":22},
                            {"names":["getppid"],"action":"SCMP_ACT_ERRNO"}]}"#,
        );
        let f = compile(&p).expect("compiles");
        assert_eq!(f.flags, 0);
        assert_eq!(f.rules, 6, "getppid equals the default and is skipped");
        let x86_64 = AUDIT_ARCH_X86_64;
        let i386 = 0x4000_0003;
        let allow = enosys_stub::tests::RET_ALLOW;
        for (nr, arch, want, what) in [
            (0, x86_64, allow, "read"),
            (59, x86_64, allow, "execve"),
            (39, x86_64, RET_ERRNO | 22, "getpid with its errnoRet"),
            (110, x86_64, RET_ERRNO | 1, "getppid: the default EPERM"),
            (83, x86_64, RET_ERRNO | 1, "mkdir: the default EPERM"),
            (435, x86_64, allow, "clone3, the highest named"),
            (
                439,
                x86_64,
                enosys_stub::RET_ERRNO_ENOSYS,
                "faccessat2: above it, ENOSYS",
            ),
            (3, i386, allow, "read on x86"),
            (252, i386, allow, "exit_group on x86"),
        ] {
            assert_eq!(run(&f.program, nr, arch), want, "{what}");
            let verdict = p.verdict(
                if arch == x86_64 {
                    Arch::X86_64
                } else {
                    Arch::X86
                },
                nr,
                None,
            );
            assert_eq!(verdict.denies(), want != allow, "{what}: {verdict:?}");
        }
    }

    #[test]
    fn docker_default_compiles_within_the_kernel_limit() {
        let json = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../profile-gen/data/moby-default-29.7.2.json"),
        )
        .expect("moby's default is in the repository");
        let f = compile(&plan(&json)).expect("compiles");
        assert!(f.program.len() < BPF_MAXINSNS);
        assert!(f.rules > 300);
    }
}
