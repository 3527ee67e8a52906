//! Starting the command to record: forked, then held until the tracer has registered its pid,
//! so the recording starts exactly at the command's own execve and misses nothing after it.

use std::ffi::{CString, OsStr};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use nix::errno::Errno;
use nix::unistd::{ForkResult, Gid, Pid, Uid};

use crate::error::input;

/// `--user UID[:GID]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct User {
    pub uid: u32,
    pub gid: u32,
}

impl User {
    /// Numbers, or a user name from /etc/passwd (its primary group unless `:GID` is given).
    pub(crate) fn parse(s: &str) -> anyhow::Result<User> {
        let (u, g) = match s.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (s, None),
        };
        let (uid, primary) = match u.parse::<u32>() {
            Ok(uid) => (uid, None),
            Err(_) => {
                let user = nix::unistd::User::from_name(u)
                    .ok()
                    .flatten()
                    .ok_or_else(|| input(format!("--user {s:?}: no user named {u:?}")))?;
                (user.uid.as_raw(), Some(user.gid.as_raw()))
            }
        };
        let gid = match g {
            Some(g) => match g.parse::<u32>() {
                Ok(gid) => gid,
                Err(_) => nix::unistd::Group::from_name(g)
                    .ok()
                    .flatten()
                    .ok_or_else(|| input(format!("--user {s:?}: no group named {g:?}")))?
                    .gid
                    .as_raw(),
            },
            None => primary.unwrap_or(uid),
        };
        Ok(User { uid, gid })
    }
}

/// Resolves COMMAND like execvp would, before forking, so that the child makes exactly one
/// execve (as under `strace -f`) and a missing command is reported without starting anything.
pub(crate) fn resolve(program: &str) -> Option<PathBuf> {
    let is_exec =
        |p: &Path| p.is_file() && nix::unistd::access(p, nix::unistd::AccessFlags::X_OK).is_ok();
    if program.contains('/') {
        let p = PathBuf::from(program);
        return is_exec(&p).then_some(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| is_exec(p))
}

/// A forked child waiting for [`HeldChild::release`] before it execs.
pub(crate) struct HeldChild {
    pub pid: Pid,
    go: Option<OwnedFd>,
    exec_err: OwnedFd,
}

fn cstring(s: &OsStr) -> anyhow::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| input(format!("{s:?} contains a NUL byte")))
}

/// Forks the child. Everything the child needs is prepared here, before fork: after it the child
/// only makes async-signal-safe calls.
pub(crate) fn fork_held(
    program: &Path,
    argv: &[String],
    user: Option<User>,
) -> anyhow::Result<HeldChild> {
    let path = cstring(program.as_os_str())?;
    let args: Vec<CString> = argv
        .iter()
        .map(|a| cstring(OsStr::new(a)))
        .collect::<anyhow::Result<_>>()?;
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv)
        })
        .filter_map(Result::ok)
        .collect();
    let (go_r, go_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("creating a pipe")?;
    let (err_r, err_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("creating a pipe")?;

    // SAFETY: the child only calls async-signal-safe functions (sigaction, sigprocmask, read,
    // setgroups, setgid, setuid, execve, write, _exit) on data prepared above.
    match unsafe { nix::unistd::fork() }.context("fork")? {
        ForkResult::Child => {
            drop(go_w);
            drop(err_r);
            let code = child_exec(&go_r, &err_w, &path, &args, &env, user);
            // SAFETY: _exit is async-signal-safe; never return into the parent's code.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(go_r);
            drop(err_w);
            Ok(HeldChild {
                pid: child,
                go: Some(go_w),
                exec_err: err_r,
            })
        }
    }
}

fn child_exec(
    go: &OwnedFd,
    err: &OwnedFd,
    path: &CString,
    args: &[CString],
    env: &[CString],
    user: Option<User>,
) -> i32 {
    // cinch's handlers and Rust's ignored SIGPIPE are cinch's, not the command's: it starts with
    // the dispositions and mask cinch was started with, as it would have without cinch.
    crate::signals::restore_inherited();
    let mut byte = [0u8; 1];
    // EOF (the tracer died or gave up) means: do not run.
    if !matches!(nix::unistd::read(go, &mut byte), Ok(1)) {
        return 127;
    }
    let fail = |stage: u8, e: Errno| {
        let mut msg = [0u8; 5];
        msg[0] = stage;
        msg[1..].copy_from_slice(&(e as i32).to_ne_bytes());
        let _ = nix::unistd::write(err, &msg);
        127
    };
    if let Some(u) = user {
        let gid = Gid::from_raw(u.gid);
        if let Err(e) = nix::unistd::setgroups(&[gid]) {
            return fail(b'g', e);
        }
        if let Err(e) = nix::unistd::setgid(gid) {
            return fail(b'g', e);
        }
        if let Err(e) = nix::unistd::setuid(Uid::from_raw(u.uid)) {
            return fail(b'u', e);
        }
    }
    let e = nix::unistd::execve(path, args, env)
        .err()
        .unwrap_or(Errno::UnknownErrno);
    fail(b'x', e)
}

impl HeldChild {
    /// Lets the child exec. Returns an error when the exec (or dropping privileges) failed.
    pub(crate) fn release(&mut self, program: &Path) -> anyhow::Result<()> {
        if let Some(go) = self.go.take() {
            nix::unistd::write(&go, b"g").context("releasing the command")?;
        }
        let mut msg = [0u8; 5];
        // The pipe is close-on-exec: EOF means the exec succeeded.
        let n = loop {
            match nix::unistd::read(&self.exec_err, &mut msg) {
                Err(Errno::EINTR) => continue,
                other => break other.context("waiting for the command to start")?,
            }
        };
        if n == 0 {
            return Ok(());
        }
        let errno = Errno::from_raw(i32::from_ne_bytes([msg[1], msg[2], msg[3], msg[4]]));
        let what = match msg[0] {
            b'g' => "setting the group for --user".to_owned(),
            b'u' => "setting the user for --user".to_owned(),
            _ => format!("executing {}", program.display()),
        };
        Err(ExecFailed(format!("{what}: {}", errno.desc())).into())
    }
}

/// The command could not be started: `record` exits 127, like a shell.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct ExecFailed(pub String);
