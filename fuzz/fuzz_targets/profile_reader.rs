//! The profile reader, `seccomp::spec`, and what is built on it: `profile::parse_profile` (the
//! profile as loaded, for `cinch diff` and `cinch report`). Any bytes give a profile or an error,
//! never a panic, and whatever reads is reported on without a panic.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use profile_gen::profile::{Target, parse_profile};
use profile_gen::report;
use profile_gen::seccomp::spec::parse_spec;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.json");
    match parse_profile(data, path, &Target::new("6.18.0", None)) {
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
