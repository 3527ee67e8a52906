//! Exit codes (docs/CLI.md): 0 success, 1 a finding, 2 usage or input error, 3 the kernel or
//! privileges cannot do what was asked. Errors are classified where they arise and reported once,
//! at the top, as one sentence.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExitKind {
    /// Bad flag, unreadable or malformed file, unknown container: exit 2.
    Input,
    /// Missing capability, kernel feature or version: exit 3.
    Kernel,
}

impl ExitKind {
    pub(crate) fn code(self) -> u8 {
        match self {
            ExitKind::Input => 2,
            ExitKind::Kernel => 3,
        }
    }
}

/// A classified error message; the outermost one found in an error chain decides the exit code.
#[derive(Debug)]
pub(crate) struct Classified {
    pub kind: ExitKind,
    pub message: String,
}

impl fmt::Display for Classified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Classified {}

pub(crate) fn input(message: impl Into<String>) -> anyhow::Error {
    Classified {
        kind: ExitKind::Input,
        message: message.into(),
    }
    .into()
}

pub(crate) fn kernel(message: impl Into<String>) -> anyhow::Error {
    Classified {
        kind: ExitKind::Kernel,
        message: message.into(),
    }
    .into()
}

/// Extension for `Result`s whose error should be reported with a given exit class.
pub(crate) trait Classify<T> {
    /// Exit 2, with `what` said first: "`what`: `cause`".
    fn input_err(self, what: impl FnOnce() -> String) -> anyhow::Result<T>;
}

impl<T, E: fmt::Display> Classify<T> for Result<T, E> {
    fn input_err(self, what: impl FnOnce() -> String) -> anyhow::Result<T> {
        self.map_err(|e| input(format!("{}: {e}", what())))
    }
}

/// The exit code for an error: its classification, or 2 when none was given (an unclassified
/// failure is almost always something about the input or the environment the user can fix).
pub(crate) fn exit_code(err: &anyhow::Error) -> u8 {
    err.chain()
        .find_map(|e| e.downcast_ref::<Classified>())
        .map_or(2, |c| c.kind.code())
}

/// One line: the error and its causes joined, as the user reads it.
pub(crate) fn sentence(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let s = cause.to_string();
        if parts.last().is_some_and(|last| last.contains(&s)) {
            continue;
        }
        parts.push(s);
    }
    parts.join(": ")
}
