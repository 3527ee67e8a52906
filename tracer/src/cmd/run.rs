//! `cinch run --profile P [--caps S | --cap-add CAP...] [--user UID[:GID]] -- COMMAND`: COMMAND
//! under the profile, loaded as runc loads it, with only the kept capabilities.
//!
//! Everything that can fail for a reason the user can fix (the profile, the settings, the command
//! name) is checked before anything changes, and everything execve needs (argument and
//! environment arrays, the message for a failed execve) is built before the filter is installed:
//! after it, every syscall is filtered, and an allocation could need one the profile denies.
//! cinch then executes COMMAND in its own place, so COMMAND's exit status (or signal) is what the
//! caller sees.

use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt as _;

use profile_gen::Arch;
use profile_gen::naming;
use profile_gen::seccomp::compile::compile;

use crate::cli::RunArgs;
use crate::enforce;
use crate::enforce::privileges::{self, Identity};
use crate::error::{input, kernel};
use crate::spawn;

pub(super) fn run(args: RunArgs) -> anyhow::Result<u8> {
    let kept = privileges::kept_capabilities(args.caps.as_deref(), &args.cap_add)?;
    let plan = enforce::load_plan(&args.profile, &kept.caps)?;
    let native = Arch::native();
    if let Some(nr) = naming::syscall_number(native, "execve") {
        let verdict = plan.verdict(native, nr, Some("execve"));
        if verdict.denies() {
            return Err(input(format!(
                "{} does not allow execve (under it execve {}), so COMMAND could not even start; a container runtime needs it too: allow execve",
                args.profile.display(),
                verdict.describe()
            )));
        }
    }
    let identity = args.user.as_deref().map(Identity::resolve).transpose()?;
    let program = &args.command[0];
    let Some(path) = spawn::resolve(program) else {
        eprintln!("cinch: command not found or not executable: {program}");
        return Ok(127);
    };
    let exec = Exec::prepare(&path, &args.command)?;
    let compiled = compile(&plan).map_err(|e| input(format!("{}: {e}", args.profile.display())))?;
    tracing::info!(
        profile = %args.profile.display(),
        default = %plan.default.describe(),
        architectures = ?plan.architectures,
        rules = compiled.rules,
        instructions = compiled.program.len(),
        skipped = ?plan.skipped,
        kept = ?kept.caps.iter().map(|c| c.docker_name()).collect::<Vec<_>>(),
        no_new_privs = privileges::needs_no_new_privs(&kept.caps),
        "enforcing"
    );
    for name in &plan.skipped {
        eprintln!(
            "cinch: warning: {} names `{name}`, which libseccomp {} does not know; skipped, as runc skips it (the syscall is denied)",
            args.profile.display(),
            naming::libseccomp_version()
        );
    }
    // Rust ignores SIGPIPE in its own processes, and an ignored signal stays ignored across
    // execve: COMMAND gets the dispositions and mask cinch was started with, as it would have
    // without cinch. Done before the filter: rt_sigaction may not be allowed.
    crate::signals::restore_inherited();
    privileges::apply(&kept.caps, identity.as_ref())?;
    enforce::install(&compiled).map_err(|e| {
        kernel(format!(
            "the kernel refused the seccomp filter from {}: {e}",
            args.profile.display()
        ))
    })?;
    Ok(exec.exec())
}

/// execve's arguments and the failure message, built while allocating is still allowed.
struct Exec {
    path: CString,
    _argv: Vec<CString>,
    _env: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    env_ptrs: Vec<*const libc::c_char>,
    message: Vec<u8>,
}

fn cstring(s: &OsStr) -> anyhow::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| input(format!("{s:?} contains a NUL byte")))
}

impl Exec {
    fn prepare(path: &std::path::Path, argv: &[String]) -> anyhow::Result<Exec> {
        let path_c = cstring(path.as_os_str())?;
        let argv_c: Vec<CString> = argv
            .iter()
            .map(|a| cstring(OsStr::new(a)))
            .collect::<anyhow::Result<_>>()?;
        let env_c: Vec<CString> = std::env::vars_os()
            .filter_map(|(k, v)| {
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                CString::new(kv).ok()
            })
            .collect();
        let ptrs = |v: &[CString]| {
            v.iter()
                .map(|c| c.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect::<Vec<_>>()
        };
        Ok(Exec {
            argv_ptrs: ptrs(&argv_c),
            env_ptrs: ptrs(&env_c),
            path: path_c,
            _argv: argv_c,
            _env: env_c,
            message: format!(
                "cinch: executing {} failed under the profile: errno ",
                path.display()
            )
            .into_bytes(),
        })
    }

    /// Replaces cinch with COMMAND. Returns only when execve failed: then it reports on stderr
    /// (if the profile lets it write) and exits 127 (not found) or 126, as a shell does.
    fn exec(&self) -> u8 {
        // SAFETY: NUL-terminated strings and NULL-terminated arrays, all owned by `self`.
        unsafe {
            libc::execve(
                self.path.as_ptr(),
                self.argv_ptrs.as_ptr(),
                self.env_ptrs.as_ptr(),
            )
        };
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        let mut digits = [0u8; 12];
        let mut n = digits.len() - 1;
        digits[n] = b'\n';
        let mut v = errno.unsigned_abs();
        loop {
            n -= 1;
            digits[n] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 || n == 0 {
                break;
            }
        }
        // SAFETY: writing owned buffers to stderr; failures are ignored (the profile may deny it).
        unsafe {
            libc::write(2, self.message.as_ptr().cast(), self.message.len());
            libc::write(2, digits[n..].as_ptr().cast(), digits.len() - n);
            libc::_exit(if errno == libc::ENOENT { 127 } else { 126 })
        }
    }
}
