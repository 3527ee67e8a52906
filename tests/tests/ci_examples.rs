//! The ready-to-copy CI files in examples/ci are valid YAML and carry the drift gate: record,
//! generate, diff in markdown into the job summary, and the recordings kept as artifacts. They
//! install cinch from its Debian package (`cargo xtask dist`), checksum verified, never by
//! building it on the runner.

#![allow(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package, used or not"
)]

use cinch_tests::workspace_root;
use serde_norway::Value;

fn load(name: &str) -> (String, Value) {
    let path = workspace_root().join("examples/ci").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let value =
        serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{name} is not valid YAML: {e}"));
    (text, value)
}

fn all_scripts(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Sequence(items) => items.iter().for_each(|i| all_scripts(i, out)),
        Value::Mapping(m) => m.values().for_each(|i| all_scripts(i, out)),
        _ => {}
    }
}

fn assert_gate(name: &str, v: &Value) {
    let mut strings = Vec::new();
    all_scripts(v, &mut strings);
    let script = strings.join("\n");
    // `cinch record` may be spelled `sudo "$(command -v cinch)" record` on hosted runners.
    for needed in [
        "cinch",
        " record -o ",
        "cinch generate -o",
        "--caps-out",
        "cinch diff --format markdown",
        "--old-caps",
    ] {
        assert!(script.contains(needed), "{name} lacks {needed:?}");
    }
    for needed in ["apt-get install", ".deb", "sha256sum -c"] {
        assert!(
            script.contains(needed),
            "{name} does not install the package ({needed:?})"
        );
    }
    // Building on the runner needs the nightly, rust-src, bpf-linker and LLVM there.
    assert!(
        !script.contains("cargo install"),
        "{name} builds cinch on the runner"
    );
}

#[test]
fn github_actions_example() {
    let (_, v) = load("github-actions.yml");
    let steps = v["jobs"]["seccomp-drift"]["steps"]
        .as_sequence()
        .expect("steps");
    assert!(steps.iter().any(|s| {
        s["run"]
            .as_str()
            .is_some_and(|r| r.contains("$GITHUB_STEP_SUMMARY"))
    }));
    assert!(steps.iter().any(|s| {
        s["uses"]
            .as_str()
            .is_some_and(|u| u.starts_with("actions/upload-artifact"))
    }));
    assert_gate("github-actions.yml", &v);
}

#[test]
fn gitlab_ci_example() {
    let (_, v) = load("gitlab-ci.yml");
    let job = &v["seccomp-drift"];
    assert!(job["script"].as_sequence().is_some_and(|s| !s.is_empty()));
    assert_eq!(job["artifacts"]["when"].as_str(), Some("always"));
    assert_gate("gitlab-ci.yml", &v);
}
