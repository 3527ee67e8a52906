//! Golden tests: the hand-written recordings in `profiles/testdata/*.json` and their expected
//! outputs in `profiles/testdata/golden/`, compared byte for byte.
//!
//! Regenerate every golden file (and the derived Docker-default data) with one command:
//!
//! ```sh
//! CINCH_BLESS=1 cargo test -p profile-gen golden
//! ```
//!
//! Never edit a golden file by hand; review the regenerated diff instead. The Docker-default data
//! (`profile-gen/data/docker-default-x86_64.json`) is embedded at build time, so after it changes
//! run the command a second time: the first run rewrites it, the second rebuilds with it and
//! rewrites the summaries that quote it.

#![allow(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package, used or not"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use profile_gen::baseline::Runtime;
use profile_gen::formats::Format;
use profile_gen::generate::{BaselineChoice, DefaultErrno, GenerateOptions, generate};
use profile_gen::read_recording;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../profiles/testdata")
}

struct Case {
    name: &'static str,
    recordings: &'static [&'static str],
    opts: GenerateOptions,
    formats: &'static [Format],
    extras: bool,
}

const ALL: &[Format] = &[Format::Docker, Format::Oci, Format::Kubernetes, Format::Spo];

fn cases() -> Vec<Case> {
    let default = GenerateOptions::default();
    vec![
        Case {
            name: "web",
            recordings: &["web.json"],
            opts: default,
            formats: ALL,
            extras: true,
        },
        Case {
            name: "attach",
            recordings: &["attach.json"],
            opts: default,
            formats: ALL,
            extras: true,
        },
        Case {
            name: "merged",
            recordings: &["web.json", "attach.json"],
            opts: default,
            formats: ALL,
            extras: true,
        },
        Case {
            name: "web.enosys",
            recordings: &["web.json"],
            opts: GenerateOptions {
                default_errno: DefaultErrno::Enosys,
                ..default
            },
            formats: &[Format::Docker, Format::Oci],
            extras: false,
        },
        Case {
            name: "attach.baseline-none",
            recordings: &["attach.json"],
            opts: GenerateOptions {
                baseline: BaselineChoice::None,
                ..default
            },
            formats: &[Format::Docker],
            extras: true,
        },
        Case {
            name: "attach.baseline-crun",
            recordings: &["attach.json"],
            opts: GenerateOptions {
                baseline: BaselineChoice::Use(Runtime::Crun),
                ..default
            },
            formats: &[Format::Docker],
            extras: true,
        },
    ]
}

fn outputs(case: &Case) -> BTreeMap<String, Vec<u8>> {
    let recs: Vec<_> = case
        .recordings
        .iter()
        .map(|f| {
            let rec = read_recording(&testdata().join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
            // Relative names keep the summaries independent of the checkout location.
            (PathBuf::from(f), rec)
        })
        .collect();
    let generated = generate(&recs, &case.opts).unwrap_or_else(|e| panic!("{}: {e}", case.name));
    let mut out = BTreeMap::new();
    for format in case.formats {
        let ext = if *format == Format::Spo {
            "yaml"
        } else {
            "json"
        };
        let file = format!("{}.{}.{ext}", case.name, format.as_str());
        let rendered = generated
            .render(
                *format,
                Path::new(&file),
                Some(case.name.split('.').next().unwrap_or("x")),
            )
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        out.insert(file.clone(), rendered.profile);
        if let Some(manifest) = rendered.manifest {
            out.insert(
                format!("{}.kubernetes-pod.yaml", case.name),
                manifest.into_bytes(),
            );
        }
    }
    if case.extras {
        out.insert(
            format!("{}.caps.json", case.name),
            generated.caps.settings.to_json(),
        );
        let mut summary = generated.summary().join("\n");
        summary.push('\n');
        out.insert(format!("{}.summary.txt", case.name), summary.into_bytes());
    }
    out
}

#[test]
fn golden_outputs() {
    let dir = testdata().join("golden");
    let bless = std::env::var("CINCH_BLESS").is_ok_and(|v| v == "1");
    let mut expected_files = Vec::new();
    let mut failures = Vec::new();
    for case in cases() {
        for (file, bytes) in outputs(&case) {
            let path = dir.join(&file);
            expected_files.push(file.clone());
            if bless {
                std::fs::write(&path, &bytes)
                    .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
                continue;
            }
            match std::fs::read(&path) {
                Ok(on_disk) if on_disk == bytes => {}
                Ok(on_disk) => failures.push(format!(
                    "{file} differs:\n--- golden\n{}\n--- now\n{}",
                    String::from_utf8_lossy(&on_disk),
                    String::from_utf8_lossy(&bytes)
                )),
                Err(e) => failures.push(format!("{file}: {e}")),
            }
        }
    }
    let on_disk: Vec<String> = std::fs::read_dir(&dir)
        .expect("golden dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    for stale in on_disk.iter().filter(|f| !expected_files.contains(f)) {
        if bless {
            std::fs::remove_file(dir.join(stale))
                .unwrap_or_else(|e| panic!("removing {stale}: {e}"));
        } else {
            failures.push(format!("{stale} is no longer produced by any case"));
        }
    }
    assert!(
        failures.is_empty(),
        "golden files differ; if the change is intended run `CINCH_BLESS=1 cargo test -p profile-gen golden` and review the diff\n{}",
        failures.join("\n\n")
    );
}

/// The same recordings in any order give byte-identical files.
#[test]
fn golden_order_does_not_matter() {
    let read = |f: &str| {
        (
            PathBuf::from(f),
            read_recording(&testdata().join(f)).expect("reads"),
        )
    };
    let a = generate(
        &[read("web.json"), read("attach.json")],
        &GenerateOptions::default(),
    )
    .expect("generates");
    let b = generate(
        &[read("attach.json"), read("web.json"), read("web.json")],
        &GenerateOptions::default(),
    )
    .expect("generates");
    for format in ALL {
        let out = Path::new("x.json");
        assert_eq!(
            a.render(*format, out, Some("x")).expect("renders"),
            b.render(*format, out, Some("x")).expect("renders"),
            "{format:?}"
        );
    }
    assert_eq!(a.caps.settings.to_json(), b.caps.settings.to_json());
}
