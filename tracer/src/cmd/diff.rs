//! `cinch diff OLD NEW`: exit 0 when NEW needs nothing OLD does not allow, 1 on drift.

use std::io::Write as _;

use profile_gen::caps::read_cap_settings;
use profile_gen::diff::{self, read_side};

use crate::cli::{DiffArgs, DiffFormat};
use crate::error::input;

pub fn run(args: DiffArgs) -> anyhow::Result<u8> {
    let mut old = read_side(&args.old).map_err(|e| input(e.to_string()))?;
    let mut new = read_side(&args.new).map_err(|e| input(e.to_string()))?;
    if let Some(path) = &args.old_caps {
        old = old.with_settings(&read_cap_settings(path).map_err(|e| input(e.to_string()))?);
    }
    if let Some(path) = &args.new_caps {
        new = new.with_settings(&read_cap_settings(path).map_err(|e| input(e.to_string()))?);
    }
    for side in [&old, &new] {
        if !side.unknown_names.is_empty() {
            let names: Vec<&str> = side.unknown_names.iter().map(String::as_str).collect();
            eprintln!(
                "cinch: warning: {} names syscalls no syscall table knows ({}); they are not compared, and runtimes skip them too",
                side.path.display(),
                names.join(", ")
            );
        }
    }
    let d = diff::diff(old, new);
    let text = match args.format {
        DiffFormat::Text => d.render_text(),
        DiffFormat::Markdown => d.render_markdown(),
        DiffFormat::Json => d.render_json(),
    };
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .map_err(|e| input(format!("cannot print the diff on stdout: {e}")))?;
    Ok(if d.drift { 1 } else { 0 })
}
