//! What trying to attach a program came to, classified by the error the kernel returned, and
//! the error as one line.

use std::error::Error as StdError;

use aya::programs::ProgramError;

/// What trying a rung came to.
#[derive(Debug)]
pub(crate) enum Outcome {
    Works,
    /// Not tried, on purpose.
    Skipped(String),
    /// EPERM/EACCES: the kernel has the hook but will not let us use it.
    Refused(String),
    /// The hook or the program type does not exist in this kernel, or what it needs is missing.
    Unavailable(String),
    Failed(String),
}

impl Outcome {
    pub(crate) fn works(&self) -> bool {
        matches!(self, Outcome::Works)
    }

    /// Why it does not work: None when it does.
    pub(crate) fn reason(&self) -> Option<&str> {
        match self {
            Outcome::Works => None,
            Outcome::Skipped(e)
            | Outcome::Refused(e)
            | Outcome::Unavailable(e)
            | Outcome::Failed(e) => Some(e),
        }
    }

    /// "works", "refused (EPERM: ...)", ...
    pub(crate) fn describe(&self) -> String {
        match self {
            Outcome::Works => "works".to_owned(),
            Outcome::Skipped(e) => format!("skipped ({e})"),
            Outcome::Refused(e) => format!("refused ({e})"),
            Outcome::Unavailable(e) => format!("not available ({e})"),
            Outcome::Failed(e) => format!("failed ({e})"),
        }
    }

    /// Classifies a load or attach result by the OS error in it.
    pub(crate) fn of(result: Result<(), ProgramError>) -> Outcome {
        let err = match result {
            Ok(()) => return Outcome::Works,
            Err(e) => e,
        };
        let text = match &err {
            // The verifier log is empty for a refused load and long for a rejected program:
            // keep the line where the verifier says why (the last one, before its statistics);
            // the whole log goes to -vv.
            ProgramError::LoadError {
                io_error,
                verifier_log,
            } => {
                let log = verifier_log.to_string();
                tracing::debug!(log = %log, "verifier log");
                let why = log
                    .lines()
                    .map(str::trim)
                    .take_while(|l| !l.starts_with("verification time"))
                    .filter(|l| !l.is_empty())
                    .last();
                match why {
                    Some(last) => format!("BPF_PROG_LOAD: {io_error}; verifier: {last}"),
                    None => format!("BPF_PROG_LOAD: {io_error}"),
                }
            }
            _ => error_text(&err),
        };
        match os_error(&err) {
            Some(libc::EPERM | libc::EACCES) => Outcome::Refused(text),
            Some(libc::ENOENT | libc::EOPNOTSUPP | ENOTSUPP | libc::ENODEV | libc::ESRCH) => {
                Outcome::Unavailable(text)
            }
            _ => Outcome::Failed(text),
        }
    }
}

/// ENOTSUPP (524) is kernel-internal but does reach user space from BPF_PROG_LOAD and
/// BPF_LINK_CREATE when a hook type is not built in.
const ENOTSUPP: i32 = 524;

/// The error and its causes on one line, with a verifier log cut to its first lines.
pub(crate) fn error_text(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        let s = e.to_string();
        let s: String = s.lines().take(3).collect::<Vec<_>>().join(" / ");
        let s = if s.len() > 300 {
            let cut = (0..=300)
                .rev()
                .find(|&i| s.is_char_boundary(i))
                .unwrap_or(0);
            format!("{}...", &s[..cut])
        } else {
            s
        };
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = e.source();
    }
    parts.join(": ")
}

/// The first OS error in an error chain.
fn os_error(err: &(dyn StdError + 'static)) -> Option<i32> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(code) = io.raw_os_error() {
                return Some(code);
            }
            if io.kind() == std::io::ErrorKind::NotFound {
                return Some(libc::ENOENT);
            }
        }
        cur = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classified_by_errno() {
        let syscall = |errno| {
            Err(ProgramError::SyscallError(aya::sys::SyscallError {
                call: "bpf_prog_load",
                io_error: std::io::Error::from_raw_os_error(errno),
            }))
        };
        assert!(matches!(
            Outcome::of(syscall(libc::EPERM)),
            Outcome::Refused(_)
        ));
        assert!(matches!(
            Outcome::of(syscall(libc::ENOENT)),
            Outcome::Unavailable(_)
        ));
        assert!(matches!(
            Outcome::of(syscall(ENOTSUPP)),
            Outcome::Unavailable(_)
        ));
        assert!(matches!(
            Outcome::of(syscall(libc::EINVAL)),
            Outcome::Failed(_)
        ));
        assert!(Outcome::of(Ok(())).works());
    }
}
