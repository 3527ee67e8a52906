use crate::cli::DoctorArgs;

pub fn run(_args: DoctorArgs) -> anyhow::Result<u8> {
    Err(crate::error::input("`cinch doctor` is not built yet"))
}
