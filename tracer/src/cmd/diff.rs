//! `cinch diff OLD NEW`: exit 0 when NEW needs nothing OLD does not allow, 1 on drift.

use std::io::Write as _;
use std::path::Path;

use profile_gen::allowlist::read_cap_settings;
use profile_gen::diff::{self, SideKind, read_side};
use profile_gen::profile::Target;

use crate::cli::{DiffArgs, DiffFormat};
use crate::error::input;

pub(super) fn run(args: DiffArgs) -> anyhow::Result<u8> {
    let kernel = crate::procfs::kernel_release();
    // A profile side is read as a runtime here loads it for the capabilities its settings keep
    // (without settings: Docker's default set).
    let side = |path: &Path, caps: Option<&Path>, flag: &str| -> anyhow::Result<diff::Side> {
        let settings = caps
            .map(|p| read_cap_settings(p).map_err(|e| input(e.to_string())))
            .transpose()?;
        let target = Target::new(&kernel, settings.as_ref());
        let side = read_side(path, &target).map_err(|e| input(e.to_string()))?;
        match &settings {
            Some(_) if side.kind == SideKind::Recording => Err(input(format!(
                "{flag} goes with a profile, but {} is a recording, whose capabilities are the ones it observed; drop {flag}",
                path.display()
            ))),
            Some(s) => Ok(side.with_settings(s)),
            None => Ok(side),
        }
    };
    let old = side(&args.old, args.old_caps.as_deref(), "--old-caps")?;
    let new = side(&args.new, args.new_caps.as_deref(), "--new-caps")?;
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
