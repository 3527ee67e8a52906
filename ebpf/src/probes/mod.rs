pub mod lifecycle;
pub mod syscalls;
