use crate::cli::ReportArgs;

pub fn run(_args: ReportArgs) -> anyhow::Result<u8> {
    Err(crate::error::input("`cinch report` is not built yet"))
}
