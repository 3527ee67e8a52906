//! The profile readers: `profile::parse_profile` (`cinch diff`, `cinch report`) and
//! `seccomp_spec::parse_spec` (`cinch run`, `cinch verify`). Any bytes give a profile or an error,
//! never a panic, and whatever reads is reported on without a panic.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use profile_gen::profile::parse_profile;
use profile_gen::report;
use profile_gen::seccomp_spec::parse_spec;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.json");
    match parse_profile(data, path) {
        Ok(p) => {
            for arch in &p.architectures {
                let _ = p.allowed_on(*arch);
            }
            let _ = p.unknown_names();
            let _ = p.arg_filtered_names();
            let r = report::build(&p, None);
            let _ = r.render_text();
            let _ = r.render_markdown();
            let _ = r.render_json();
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    if let Err(e) = parse_spec(data, path) {
        let _ = e.to_string();
    }
});
