//! Capture: the layer between the probe and the commands. Each capture loads the probe for one
//! kind of target, polls until the target ends ([`poll`]), and turns what the probe holds into
//! Recordings in memory ([`snapshot`]); `record` writes them, `verify` checks them.
//!
//! - [`command`]: `-- COMMAND`, started by cinch and recorded from its execve;
//! - [`attach`]: `--container` and `--pid`, what already runs;
//! - [`new_containers`]: `--new-containers`, every container that starts, from its runtime's
//!   seccomp install.

mod attach;
mod command;
mod new_containers;
mod poll;
mod snapshot;

pub(crate) use attach::{capture_container, capture_pid};
pub(crate) use command::{Captured, capture_command};
pub(crate) use new_containers::{
    Finished, NewContainers, SLOTS, Watcher, capture_new_containers, watch_config,
};
pub(crate) use poll::{Flow, Status, exit_code, poll};
