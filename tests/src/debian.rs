//! Debian roots and images from the package mirror: `debootstrap --variant=minbase` of a
//! suite with the packages a test needs, imported into Docker (no registry is reachable here).

use std::path::PathBuf;
use std::process::{Command, Stdio};

const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";

/// `CINCH_DEBIAN_MIRROR`, else the host's apt source for `suite`, else any Debian archive it
/// uses, else deb.debian.org.
pub fn mirror(suite: &str) -> String {
    if let Some(m) = std::env::var("CINCH_DEBIAN_MIRROR")
        .ok()
        .filter(|m| !m.trim().is_empty())
    {
        return m.trim().to_owned();
    }
    let mut texts = Vec::new();
    if let Ok(t) = std::fs::read_to_string("/etc/apt/sources.list") {
        texts.push(t);
    }
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        // apt reads these two kinds only (not `.save` and the like).
        let mut paths: Vec<PathBuf> = dir
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "list" || e == "sources"))
            .collect();
        paths.sort();
        for p in paths {
            if let Ok(t) = std::fs::read_to_string(&p) {
                texts.push(t);
            }
        }
    }
    let sources: Vec<(String, Vec<String>)> = texts.iter().flat_map(|t| apt_sources(t)).collect();
    sources
        .iter()
        .find(|(_, suites)| suites.iter().any(|s| s == suite))
        .or_else(|| {
            sources
                .iter()
                .find(|(uri, _)| uri.trim_end_matches('/').ends_with("/debian"))
        })
        .map(|(uri, _)| uri.clone())
        .unwrap_or_else(|| DEFAULT_MIRROR.to_owned())
}

/// (URI, suites) of each `deb` source in a sources.list (one-line) or .sources (deb822) text.
fn apt_sources(text: &str) -> Vec<(String, Vec<String>)> {
    let mut found = Vec::new();
    // One-line format: `deb [options] URI SUITE COMPONENTS...`.
    for line in text.lines().map(str::trim) {
        let Some(rest) = line.strip_prefix("deb ") else {
            continue;
        };
        let mut rest = rest.trim_start();
        if rest.starts_with('[') {
            let Some(end) = rest.find(']') else { continue };
            rest = &rest[end + 1..];
        }
        let mut words = rest.split_whitespace();
        if let (Some(uri), Some(suite)) = (words.next(), words.next()) {
            found.push((uri.to_owned(), vec![suite.to_owned()]));
        }
    }
    // deb822: stanzas separated by blank lines, with Types, URIs and Suites fields.
    for stanza in text.split("\n\n") {
        let field = |name: &str| -> Vec<String> {
            stanza
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.trim().eq_ignore_ascii_case(name).then_some(v)
                })
                .map(|v| v.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default()
        };
        if !field("Types").iter().any(|t| t == "deb") {
            continue;
        }
        let suites = field("Suites");
        for uri in field("URIs") {
            found.push((uri, suites.clone()));
        }
    }
    found
}

/// The Debian release test images are built from.
pub const SUITE: &str = "bookworm";

/// Docker image `name` (`repository:tag`): a minimal Debian [`SUITE`] with `packages`, built
/// with debootstrap and `docker import` unless the daemon has it already. `config` are
/// `docker import --change` instructions (`CMD ...`). Built once per daemon: the tests reuse it.
pub fn image(name: &str, packages: &[&str], config: &[&str]) -> Result<String, String> {
    let docker = crate::docker::Docker::try_ensure()?;
    if docker
        .cmd(&["image", "inspect", "--format", "{{.Id}}", name])
        .status
        .success()
    {
        return Ok(name.to_owned());
    }
    let dir = tempfile::tempdir().map_err(|e| format!("creating a temporary directory: {e}"))?;
    let root = dir.path().join("root");
    let mirror = mirror(SUITE);
    let out = Command::new("debootstrap")
        .args([
            "--variant=minbase",
            &format!("--include={}", packages.join(",")),
        ])
        .arg(SUITE)
        .arg(&root)
        .arg(&mirror)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running debootstrap: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "debootstrap of {SUITE} with {} from {mirror} failed ({}): {}",
            packages.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    // The root's apt caches are of no use in an image.
    for sub in ["var/cache/apt/archives", "var/lib/apt/lists"] {
        let _ = Command::new("find")
            .arg(root.join(sub))
            .args(["-mindepth", "1", "-delete"])
            .status();
    }
    let mut import = Command::new("sh");
    import
        .arg("-c")
        .arg(r#"root=$1; name=$2; shift 2; tar --numeric-owner -C "$root" -c . | docker import "$@" - "$name""#)
        .arg("sh")
        .arg(&root)
        .arg(name);
    for c in config {
        import.arg("--change").arg(c);
    }
    let out = import
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running docker import: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "docker import {name} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apt_sources_in_both_formats() {
        let one_line = "\
# comment
deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main
deb-src http://src.example/debian bookworm main
deb https://packages.example/apt cloud-sdk-bookworm main
";
        assert_eq!(
            apt_sources(one_line),
            [
                (
                    "http://mirror.example/debian".to_owned(),
                    vec!["bookworm".to_owned()]
                ),
                (
                    "https://packages.example/apt".to_owned(),
                    vec!["cloud-sdk-bookworm".to_owned()]
                ),
            ]
        );
        let deb822 = "\
Types: deb
URIs: http://deb.example/debian
Suites: bookworm bookworm-updates
Components: main

Types: deb-src
URIs: http://src.example/debian
Suites: bookworm
";
        assert_eq!(
            apt_sources(deb822),
            [(
                "http://deb.example/debian".to_owned(),
                vec!["bookworm".to_owned(), "bookworm-updates".to_owned()]
            )]
        );
    }
}
