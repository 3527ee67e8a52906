//! `cinch bench-floor` (hidden): the empty `sys_enter` program, attached like the recorder's,
//! held until SIGINT/SIGTERM. Prints `ready` on stdout once attached.

use std::io::Write as _;

use anyhow::Context as _;

use crate::signals;

pub(super) fn run() -> anyhow::Result<u8> {
    signals::install().context("installing signal handlers")?;
    let _floor = crate::probe::attach_floor()?;
    println!("ready");
    std::io::stdout().flush().context("stdout")?;
    while signals::received().is_none() {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Ok(0)
}
