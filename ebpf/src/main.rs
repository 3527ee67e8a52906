//! cinch's kernel side. Tiny on purpose: filter, count, and emit rare events; never strings,
//! never names. Numbers become names in userspace (`profile-gen`).

#![no_std]
#![no_main]
// BPF has atomic add but no core::sync::atomic types; the intrinsic is what they lower to.
#![feature(core_intrinsics)]
#![expect(
    internal_features,
    reason = "atomic_xadd is the only atomic add on the bpf target"
)]

mod maps;
mod probes;

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // SAFETY: the verifier rejects any program that could reach this.
    unsafe { core::hint::unreachable_unchecked() }
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
