//! The recording reader (`cinch generate`, `cinch diff`): any bytes give a recording or an error,
//! never a panic. A recording that reads must survive a round trip unchanged, and the profile
//! generated from it must allow nothing that was not recorded.

#![no_main]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use profile_gen::formats::Format;
use profile_gen::generate::{self, BaselineChoice, DefaultErrno, GenerateOptions};
use profile_gen::recording::parse_recording;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.json");
    let rec = match parse_recording(data, path) {
        Ok(rec) => rec,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let json = serde_json::to_vec(&rec).expect("a recording that was read serializes");
    let again = parse_recording(&json, path).expect("a recording cinch wrote reads back");
    assert_eq!(again, rec, "the recording changed in a round trip");

    let opts = GenerateOptions {
        baseline: BaselineChoice::None,
        default_errno: DefaultErrno::Eperm,
    };
    let Ok(generated) = generate::generate(&[(PathBuf::from("fuzz.json"), rec)], &opts) else {
        return;
    };
    let recorded: BTreeSet<&String> = generated.named.by_arch.values().flatten().collect();
    for name in &generated.profile.allow {
        assert!(
            recorded.contains(name),
            "the profile allows {name}, which was not recorded"
        );
    }
    for format in [Format::Docker, Format::Oci, Format::Spo] {
        let out = generated
            .render(format, Path::new("seccomp.json"), None)
            .expect("a validated profile renders");
        let target = profile_gen::profile::Target::new("6.18.0", None);
        let back =
            profile_gen::profile::parse_profile(&out.profile, Path::new("seccomp.json"), &target)
                .expect("a profile cinch wrote reads back");
        for arch in &back.architectures {
            for name in back.allowed_on(*arch) {
                assert!(
                    recorded.contains(&name),
                    "the {format:?} profile read back allows {name} on {arch}, which was not recorded"
                );
            }
        }
    }
    let _ = generated.summary();
});
