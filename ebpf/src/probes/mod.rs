pub mod caps;
pub mod doctor;
pub mod lifecycle;
pub mod syscalls;
