use crate::cli::GenerateArgs;

pub fn run(_args: GenerateArgs) -> anyhow::Result<u8> {
    Err(crate::error::input("`cinch generate` is not built yet"))
}
