//! `cinch diff OLD NEW` on any two inputs (profiles or recordings, any mix): the first two bytes
//! say where OLD ends. Never a panic; a side compared with itself never drifts.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use profile_gen::diff::{diff, parse_side};
use profile_gen::profile::Target;

fuzz_target!(|data: &[u8]| {
    let Some((head, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let split = usize::from(u16::from_le_bytes(*head)).min(rest.len());
    let (old, new) = rest.split_at(split);
    let target = Target::new("6.18.0", None);
    let (Ok(old), Ok(new)) = (
        parse_side(old, Path::new("old.json"), &target),
        parse_side(new, Path::new("new.json"), &target),
    ) else {
        return;
    };
    let same = diff(old.clone(), old.clone());
    assert!(!same.drift, "a side drifted from itself: {:?}", same.added);
    let d = diff(old, new);
    let _ = d.render_text();
    let _ = d.render_markdown();
    let _ = d.render_json();
});
