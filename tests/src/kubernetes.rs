//! Kubernetes manifests checked offline against the API's schemas: the `kubernetes-validate`
//! package from PyPI (it carries the schemas of each Kubernetes release), installed by
//! `cargo xtask setup` into a virtual environment of its own.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

/// The virtual environment `cargo xtask setup` installs it into.
pub const VENV: &str = "/opt/cinch-dev/kubernetes-validate";
/// The release installed; its newest schemas are the Kubernetes release of the same number.
pub const VERSION: &str = "1.37.0";

/// The command, when it is installed.
pub fn command() -> Option<std::path::PathBuf> {
    let bin = Path::new(VENV).join("bin/kubernetes-validate");
    bin.is_file().then_some(bin)
}

/// Whether `kubernetes-validate` is there, for `require`.
pub fn available() -> bool {
    command().is_some()
}

/// Validates every document of `yaml` strictly (unknown fields are errors) against the API
/// schemas of the Kubernetes release `kubernetes-validate` defaults to; `Err` carries what it
/// said.
pub fn validate(yaml: &str) -> Result<String, String> {
    let bin = command().ok_or_else(|| {
        format!("{VENV}/bin/kubernetes-validate is not installed (cargo xtask setup installs it)")
    })?;
    let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    let file = dir.path().join("manifest.yaml");
    std::fs::File::create(&file)
        .and_then(|mut f| f.write_all(yaml.as_bytes()))
        .map_err(|e| format!("writing {}: {e}", file.display()))?;
    let out = Command::new(&bin)
        .args(["--strict", "--no-warn"])
        .arg(&file)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running {}: {e}", bin.display()))?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(said)
    } else {
        Err(format!("{}:\n{said}\n{yaml}", out.status))
    }
}
