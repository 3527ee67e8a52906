//! `cinch recording-profile [-o PATH]`: the permissive seccomp profile to run a container under
//! while recording it, so that a user with only the binary can record containers.

use std::io::Write as _;

use crate::cli::RecordingProfileArgs;
use crate::error::input;

pub(super) fn run(args: RecordingProfileArgs) -> anyhow::Result<u8> {
    let bytes = profile_gen::formats::recording_profile();
    match &args.output {
        Some(path) => crate::output::write_file(path, &bytes)?,
        None => std::io::stdout()
            .lock()
            .write_all(&bytes)
            .map_err(|e| input(format!("cannot print the profile on stdout: {e}")))?,
    }
    Ok(0)
}
