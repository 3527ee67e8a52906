pub mod caps;
pub mod empty;
pub mod lifecycle;
pub mod syscalls;
