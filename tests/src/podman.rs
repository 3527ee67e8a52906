//! Podman for the end-to-end tier. Podman needs no daemon; `cargo xtask setup` installs it and
//! writes /etc/containers/containers.conf with container rlimits this machine allows and the
//! runc runtime. Its image is the Docker test image, copied over with `docker save | podman
//! load`, so it too is built here and never pulled.

use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use crate::docker::{BUSYBOX_IMAGE, busybox_image};
use crate::require;

/// The busybox test image as Podman names it.
pub const PODMAN_BUSYBOX_IMAGE: &str = "localhost/cinch-test/busybox:latest";

/// `podman ARGS...`, its output collected.
pub fn podman(args: &[&str]) -> Output {
    Command::new("podman")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("running podman {args:?}: {e} (install it with cargo xtask setup)")
        })
}

/// Podman answers and its configuration lets containers start here; else skips (panics under
/// CI=true) with the reason.
pub fn require_podman(test_name: &str) -> bool {
    let works = Command::new("podman")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let configured = std::fs::read_to_string("/etc/containers/containers.conf")
        .is_ok_and(|c| c.contains("default_ulimits"));
    require(
        test_name,
        works && configured,
        "podman is missing or /etc/containers/containers.conf lacks default_ulimits (run cargo xtask setup)",
    )
}

/// The busybox test image in Podman's store, loaded once from Docker's.
pub fn podman_busybox_image() -> String {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            if !podman(&["image", "exists", PODMAN_BUSYBOX_IMAGE])
                .status
                .success()
            {
                let docker_image = busybox_image();
                assert_eq!(docker_image, BUSYBOX_IMAGE);
                let dir = tempfile::tempdir().expect("creating a temporary directory");
                let tar = dir.path().join("busybox.tar");
                let tar = tar.to_str().expect("utf-8 path");
                let save = Command::new("docker")
                    .args(["save", "-o", tar, BUSYBOX_IMAGE])
                    .output()
                    .expect("docker save");
                assert!(
                    save.status.success(),
                    "docker save: {}",
                    String::from_utf8_lossy(&save.stderr)
                );
                let load = podman(&["load", "-i", tar]);
                assert!(
                    load.status.success(),
                    "podman load: {}",
                    String::from_utf8_lossy(&load.stderr)
                );
            }
            PODMAN_BUSYBOX_IMAGE.to_owned()
        })
        .clone()
}
