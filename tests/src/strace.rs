//! Ground truth for syscall recordings: the names `strace -f` sees, per architecture.
//!
//! strace is run with `--quiet=attach,exit,thread-execve` rather than `-qq`: `-qq` also hides the
//! `[ Process PID=N runs in 32 bit mode. ]` lines, and without them an i386 process's syscalls
//! cannot be told from x86_64 ones.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, ExitStatus, Stdio};

/// Syscall names per architecture (`"x86_64"`, `"x86"`, `"x32"`).
pub type SyscallSets = BTreeMap<String, BTreeSet<String>>;

/// What one strace run saw.
#[derive(Debug)]
pub struct StraceRun {
    /// The traced command's exit status (strace exits with it).
    pub status: ExitStatus,
    pub syscalls: SyscallSets,
    /// strace's raw output, for failure messages.
    pub log: String,
}

/// Runs `cmd` under `strace -f` and returns the syscall names per architecture. Panics when
/// strace cannot run or the command fails; use [`strace_run`] to see a failing command's status.
pub fn strace_syscalls(cmd: &[&str]) -> SyscallSets {
    let run = strace_run(cmd);
    assert!(
        run.status.success(),
        "{cmd:?} under strace exited with {}",
        run.status
    );
    run.syscalls
}

/// Runs `cmd` under `strace -f`, whatever its exit status.
pub fn strace_run(cmd: &[&str]) -> StraceRun {
    assert!(!cmd.is_empty(), "strace_run needs a command");
    let dir = tempfile::tempdir().expect("creating a temporary directory");
    let log_path = dir.path().join("strace.log");
    let status = Command::new("strace")
        .args(["-f", "--quiet=attach,exit,thread-execve", "-o"])
        .arg(&log_path)
        .arg("--")
        .args(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "running strace ({e}); install it with `cargo xtask setup` (Debian package strace)"
            )
        });
    let log = std::fs::read_to_string(&log_path)
        .unwrap_or_else(|e| panic!("reading strace's output {}: {e}", log_path.display()));
    StraceRun {
        status,
        syscalls: parse(&log),
        log,
    }
}

const NATIVE: &str = "x86_64";

/// Parses `strace -f -o FILE` output (every line starts with the pid).
///
/// - a syscall line is `PID name(args...) = ret` or `PID name(args... <unfinished ...>`; the name
///   is the token before the first `(`;
/// - `PID <... name resumed>...` continues a call already counted;
/// - `PID +++ exited with 0 +++`, `PID --- SIGCHLD {...} ---` are not syscalls;
/// - `PID [ Process PID=N runs in 32 bit mode. ]` says which table PID's next calls use.
///
/// strace does not announce a new process's mode unless it differs from the mode strace
/// assumed for it (the mode of the process it was forked from, roughly the last one seen), so a
/// new pid starts in the mode of its parent when the fork's return value was seen, else in the
/// mode of the last process that made a call.
pub fn parse(log: &str) -> SyscallSets {
    let mut out = SyscallSets::new();
    let mut mode: BTreeMap<u32, String> = BTreeMap::new();
    let mut last = NATIVE.to_owned();
    for line in log.lines() {
        let (pid, rest) = split_pid(line);
        let rest = rest.trim_start();
        if let Some(arch) = personality(rest) {
            mode.insert(pid, arch.clone());
            last = arch;
            continue;
        }
        if rest.starts_with("+++") || rest.starts_with("---") {
            continue;
        }
        let arch = mode.entry(pid).or_insert_with(|| last.clone()).clone();
        last = arch.clone();
        if let Some(resumed) = rest.strip_prefix("<...") {
            // `<... clone resumed>...) = 123`: the child inherits the parent's mode.
            if resumed.split_whitespace().next().is_some_and(is_fork) {
                inherit(&mut mode, &arch, rest);
            }
            continue;
        }
        let Some(open) = rest.find('(') else {
            continue;
        };
        let name = &rest[..open];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        if is_fork(name) {
            inherit(&mut mode, &arch, rest);
        }
        out.entry(arch).or_default().insert(name.to_owned());
    }
    out
}

fn split_pid(line: &str) -> (u32, &str) {
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    match line[..digits].parse() {
        Ok(pid) => (pid, &line[digits..]),
        Err(_) => (0, line),
    }
}

/// `[ Process PID=123 runs in 32 bit mode. ]` → "x86". Also accepts `PID 123`.
fn personality(rest: &str) -> Option<String> {
    let after = rest.strip_prefix("[ Process PID")?;
    let mode = after.split(" runs in ").nth(1)?;
    let mode = mode.strip_suffix(" mode. ]").unwrap_or(mode).trim();
    Some(
        match mode {
            "64 bit" => NATIVE,
            "32 bit" => "x86",
            "x32" => "x32",
            other => other,
        }
        .to_owned(),
    )
}

fn is_fork(name: &str) -> bool {
    matches!(name, "clone" | "clone3" | "fork" | "vfork")
}

/// Gives the child named by a fork's return value (`... = 123`) the parent's mode, unless strace
/// already said otherwise.
fn inherit(mode: &mut BTreeMap<u32, String>, arch: &str, line: &str) {
    let Some((_, ret)) = line.rsplit_once(") = ") else {
        return;
    };
    let child = ret.split_whitespace().next().and_then(|r| r.parse().ok());
    if let Some(child) = child {
        mode.entry(child).or_insert_with(|| arch.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    /// A shell running an i386 program that forks, then a 64-bit `ls`; trimmed from real strace
    /// 6.1 output on x86_64.
    const MIXED: &str = r#"21305 execve("/bin/sh", ["/bin/sh", "-c", "/tmp/t32; ls /"], 0x7ffd /* 35 vars */) = 0
21305 brk(NULL)                         = 0x55d0
21305 vfork( <unfinished ...>
21306 execve("/tmp/t32", ["/tmp/t32"], 0x55d0 /* 35 vars */ <unfinished ...>
21305 <... vfork resumed>)              = 21306
21305 wait4(-1,  <unfinished ...>
21306 <... execve resumed>)             = 0
21306 [ Process PID=21306 runs in 32 bit mode. ]
21306 brk(NULL)                         = 0x9283000
21306 set_thread_area({entry_number=-1, base_addr=0x9283380}) = 0 (entry_number=12)
21306 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x92833e8) = 21307
21307 set_robust_list(0x92833ec, 12)    = 0
21306 getppid()                         = 21305
21307 getuid32()                        = 0
21307 exit_group(0)                     = ?
21307 +++ exited with 0 +++
21306 exit_group(0)                     = ?
21305 <... wait4 resumed>[{WIFEXITED(s) && WEXITSTATUS(s) == 0}], 0, NULL) = 21306
21305 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=21306, si_uid=0} ---
21305 vfork( <unfinished ...>
21308 execve("/usr/bin/ls", ["ls", "/"], 0x55d0 /* 35 vars */ <unfinished ...>
21305 <... vfork resumed>)              = 21308
21308 <... execve resumed>)             = 0
21308 [ Process PID=21308 runs in 64 bit mode. ]
21308 getdents64(3, 0x5601 /* 20 entries */, 32768) = 512
21308 exit_group(0)                     = ?
21305 --- SIGTERM {si_signo=SIGTERM, si_code=SI_USER, si_pid=21305, si_uid=0} ---
21305 +++ killed by SIGTERM +++
"#;

    #[test]
    fn splits_architectures() {
        let got = parse(MIXED);
        assert_eq!(
            got["x86"],
            set(&[
                "brk",
                "clone",
                "exit_group",
                "getppid",
                "getuid32",
                "set_robust_list",
                "set_thread_area"
            ])
        );
        assert_eq!(
            got["x86_64"],
            set(&[
                "brk",
                "execve",
                "exit_group",
                "getdents64",
                "vfork",
                "wait4"
            ])
        );
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn a_child_of_a_compat_process_is_compat_even_when_its_lines_come_first() {
        // The child's first line arrives before the parent's clone returns.
        let log = "\
10 [ Process PID=10 runs in 32 bit mode. ]
10 clone(child_stack=NULL, flags=SIGCHLD <unfinished ...>
11 getpid()                         = 11
10 <... clone resumed>)             = 11
10 waitpid(11,  <unfinished ...>
11 _exit(0)                         = ?
";
        let got = parse(log);
        assert_eq!(got["x86"], set(&["_exit", "clone", "getpid", "waitpid"]));
        assert!(!got.contains_key("x86_64"));
    }

    #[test]
    fn a_fork_return_value_sets_the_child_mode_before_it_runs() {
        // A 64-bit parent forks after a 32-bit process made the last call: the child follows its
        // parent, not the last caller.
        let log = "\
1 clone(child_stack=NULL, flags=SIGCHLD) = 3
2 [ Process PID=2 runs in 32 bit mode. ]
2 getpid()                         = 2
3 getppid()                        = 1
";
        let got = parse(log);
        assert_eq!(got["x86_64"], set(&["clone", "getppid"]));
        assert_eq!(got["x86"], set(&["getpid"]));
    }

    #[test]
    fn ignores_signals_exits_and_odd_lines() {
        let log = "\
5 --- SIGSEGV {si_signo=SIGSEGV, si_code=SEGV_MAPERR, si_addr=NULL} ---
5 +++ killed by SIGSEGV (core dumped) +++
5 +++ superseded by execve in pid 6 +++
5 ????( <unfinished ...>
5 syscall_0x1ff(0x1, 0x2)          = -1 ENOSYS (Function not implemented)
5 read(0, \"(\", 1)                  = 1
";
        let got = parse(log);
        assert_eq!(got["x86_64"], set(&["read", "syscall_0x1ff"]));
    }

    #[test]
    fn lines_without_a_pid() {
        let got = parse("openat(AT_FDCWD, \"/etc/passwd\", O_RDONLY) = 3\nclose(3) = 0\n");
        assert_eq!(got["x86_64"], set(&["close", "openat"]));
    }

    #[test]
    fn personality_lines() {
        assert_eq!(
            personality("[ Process PID=7 runs in 32 bit mode. ]").as_deref(),
            Some("x86")
        );
        assert_eq!(
            personality("[ Process PID 7 runs in 64 bit mode. ]").as_deref(),
            Some("x86_64")
        );
        assert_eq!(
            personality("[ Process PID=7 runs in x32 mode. ]").as_deref(),
            Some("x32")
        );
        assert_eq!(personality("read(0, \"\", 1) = 0"), None);
    }
}
