use crate::cli::DiffArgs;

pub fn run(_args: DiffArgs) -> anyhow::Result<u8> {
    Err(crate::error::input("`cinch diff` is not built yet"))
}
