//! Which container a process is in, from `/proc/PID/cgroup`. Engines name the cgroup after the
//! container id: `/docker/<id>` or `docker-<id>.scope` (Docker, cgroupfs or systemd driver),
//! `libpod-<id>.scope` (Podman), `cri-containerd-<id>.scope` / `crio-<id>.scope` (CRI),
//! `/<namespace>/<id>` (containerd, nerdctl).

use super::Engine;

/// The engine and 64-hex container id in the text of a `/proc/PID/cgroup` file, if the process
/// is in a container's cgroup.
pub(crate) fn container_in_cgroup(text: &str) -> Option<(Engine, String)> {
    parse(text)
}

fn parse(text: &str) -> Option<(Engine, String)> {
    for line in text.lines() {
        let path = line.splitn(3, ':').nth(2)?;
        for part in path.split('/').rev() {
            let (engine, rest) = if let Some(r) = part.strip_prefix("docker-") {
                (Engine::Docker, r)
            } else if let Some(r) = part.strip_prefix("libpod-") {
                (Engine::Podman, r)
            } else if let Some(r) = part.strip_prefix("cri-containerd-") {
                (Engine::Containerd, r)
            } else if let Some(r) = part.strip_prefix("crio-") {
                (Engine::Crio, r)
            } else if is_id(part) {
                let engine = if path.contains("/docker/") || path.starts_with("/docker") {
                    Engine::Docker
                } else if path.contains("libpod") {
                    Engine::Podman
                } else {
                    Engine::Containerd
                };
                (engine, part)
            } else {
                continue;
            };
            let id = rest.strip_suffix(".scope").unwrap_or(rest);
            if is_id(id) {
                return Some((engine, id.to_owned()));
            }
        }
    }
    None
}

fn is_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "9df17d790aeb26064a5dd68c88d45f39cb2b4beb159522340f8f9c06ca5e209c";

    #[test]
    fn engines_by_cgroup_path() {
        let cases = [
            (format!("0::/docker/{ID}\n"), Engine::Docker),
            (
                format!("0::/system.slice/docker-{ID}.scope\n"),
                Engine::Docker,
            ),
            (
                format!("0::/machine.slice/libpod-{ID}.scope/container\n"),
                Engine::Podman,
            ),
            (
                format!("0::/kubepods.slice/kubepods-pod1.slice/cri-containerd-{ID}.scope\n"),
                Engine::Containerd,
            ),
            (
                format!("0::/kubepods.slice/crio-{ID}.scope\n"),
                Engine::Crio,
            ),
            (
                format!("4:memory:/default/{ID}\n0::/default/{ID}\n"),
                Engine::Containerd,
            ),
        ];
        for (text, engine) in cases {
            assert_eq!(parse(&text), Some((engine, ID.to_owned())), "{text}");
        }
        // Read from inside a cgroup namespace (the agent's pod): the path is relative to it.
        let relative = format!(
            "0::/../../kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-containerd-{ID}.scope\n"
        );
        assert_eq!(parse(&relative), Some((Engine::Containerd, ID.to_owned())));
        assert_eq!(parse("0::/user.slice/session-1.scope\n"), None);
        assert_eq!(parse("0::/\n"), None);
    }
}
