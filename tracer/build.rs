//! Builds the eBPF object (`ebpf/`, target bpfel-unknown-none, nightly + build-std) with
//! aya-build and leaves it in OUT_DIR for `include_bytes_aligned!`.
//!
//! With `AYA_BUILD_SKIP=1` an empty stub is written instead, so `cargo check` and clippy work on
//! machines without the BPF toolchain; the binary then refuses to record, saying why.

use std::{env, fs, path::PathBuf};

use anyhow::{Context as _, anyhow};
// A build dependency only so that cargo_metadata finds the eBPF package and cargo rebuilds when
// it changes; aya-build compiles it for bpfel-unknown-none itself.
use cinch_ebpf as _;

const OBJECT: &str = "cinch";

fn main() -> anyhow::Result<()> {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").ok_or_else(|| anyhow!("OUT_DIR not set"))?);
    println!("cargo:rerun-if-env-changed=AYA_BUILD_SKIP");
    let skip = env::var("AYA_BUILD_SKIP").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    if skip {
        // aya-build also honours the variable; the stub keeps include_bytes! compiling.
        fs::write(out_dir.join(OBJECT), []).context("writing the stub eBPF object")?;
        return Ok(());
    }
    let cargo_metadata::Package {
        name,
        manifest_path,
        ..
    } = ebpf_package()?;
    let root_dir = manifest_path
        .parent()
        .ok_or_else(|| anyhow!("eBPF manifest has no parent directory"))?;
    aya_build::build_ebpf(
        [aya_build::Package {
            name: name.as_str(),
            root_dir: root_dir.as_str(),
            ..Default::default()
        }],
        aya_build::Toolchain::Nightly,
    )
    .context("building the eBPF object (run `cargo xtask setup` to install the BPF toolchain, or set AYA_BUILD_SKIP=1 to build without it)")
}

fn ebpf_package() -> anyhow::Result<cargo_metadata::Package> {
    let metadata = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .exec()
        .context("cargo metadata")?;
    metadata
        .packages
        .into_iter()
        .find(|p| p.name.as_str() == "cinch-ebpf")
        .ok_or_else(|| anyhow!("cinch-ebpf package not found in the workspace"))
}
