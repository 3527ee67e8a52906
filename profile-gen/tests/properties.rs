//! Property tests: merging recordings is a join (commutative, associative, idempotent), every
//! generated profile compiles with libseccomp, and a profile never allows a name that is not in
//! the inputs or the chosen runtime baseline (the only other name is clone3's ENOSYS rule).

#![allow(
    unused_crate_dependencies,
    reason = "an integration test links every dependency of its package, used or not"
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use proptest::prelude::*;

use profile_gen::Arch;
use profile_gen::baseline::{self, Runtime, Scope};
use profile_gen::formats::Format;
use profile_gen::generate::{
    BaselineChoice, DefaultErrno, GenerateError, GenerateOptions, generate_observed,
    name_observations,
};
use profile_gen::kernel_issued;
use profile_gen::observed::{ArgEvidence, CapCheckKey, CapEvidence, ContainerStart, Observed};
use profile_gen::profile::{Target, parse_profile};
use profile_gen::{arg_rules, arguments};

fn arch() -> impl Strategy<Value = Arch> {
    prop_oneof![Just(Arch::X86_64), Just(Arch::X86), Just(Arch::Aarch64)]
}

fn cap_key() -> impl Strategy<Value = CapCheckKey> {
    (
        prop_oneof![Just(0u32), Just(10u32), Just(21u32), Just(41u32)],
        any::<bool>(),
        proptest::option::of((Just(Arch::X86_64), 0u32..60)),
        prop_oneof![Just("chown_ok".to_owned()), Just("__inet_bind".to_owned())],
        proptest::option::of(Just("vm-overcommit".to_owned())),
    )
        .prop_map(|(cap, granted, syscall, caller, not_a_need)| CapCheckKey {
            cap,
            granted,
            syscall,
            caller,
            not_a_need,
        })
}

fn evidence() -> impl Strategy<Value = CapEvidence> {
    (
        0u64..100,
        proptest::collection::btree_set("[a-c]{1,2}", 0..3),
    )
        .prop_map(|(count, comms)| CapEvidence {
            count,
            comms,
            syscall_names: BTreeSet::new(),
        })
}

fn file() -> impl Strategy<Value = PathBuf> {
    prop_oneof![
        Just(PathBuf::from("a.json")),
        Just(PathBuf::from("b.json")),
        Just(PathBuf::from("c.json"))
    ]
}

fn arg_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("socket"),
        Just("clone"),
        Just("ioctl"),
        Just("personality"),
        Just("mmap"),
        Just("unshare"),
    ]
    .prop_map(str::to_owned)
}

/// Argument values that matter somewhere: address families, namespace bits, TIOCSTI, W|X,
/// personality's all-ones.
fn arg_value() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..48,
        Just(0x1000_0000),
        Just(0x0002_0000),
        Just(0x5412),
        Just(0x0040_0000),
        Just(0xffff_ffff),
    ]
}

fn arg_evidence() -> impl Strategy<Value = ArgEvidence> {
    prop_oneof![
        3 => proptest::collection::btree_set(arg_value(), 1..5).prop_map(ArgEvidence::Known),
        1 => Just(ArgEvidence::Unknown(["no values".to_owned()].into())),
    ]
}

fn container_start() -> impl Strategy<Value = ContainerStart> {
    (
        file(),
        prop_oneof![Just("docker"), Just("podman")],
        prop_oneof![Just("web"), Just("db")],
        any::<bool>(),
    )
        .prop_map(|(recording, engine, image, observed)| ContainerStart {
            recording,
            engine: engine.to_owned(),
            name: format!("{image}-1"),
            image: image.to_owned(),
            command: vec!["/srv/app".to_owned()],
            observed,
            entrypoint_observed: false,
        })
}

prop_compose! {
    fn observed()(
        hosts in proptest::collection::btree_set(prop_oneof![Just(Arch::X86_64), Just(Arch::Aarch64)], 1..3),
        syscalls in proptest::collection::btree_map(
            arch(),
            // Numbers up to 1000: most are real syscalls, some are unknown to every table.
            proptest::collection::btree_map(0u32..1000, proptest::collection::btree_set(Just("recorded_name".to_owned()), 0..2), 0..40),
            0..3,
        ),
        capabilities in proptest::collection::btree_map(cap_key(), evidence(), 0..6),
        container_starts in proptest::collection::btree_set(container_start(), 0..3),
        arguments in proptest::collection::btree_map((arch(), arg_name()), arg_evidence(), 0..4),
        lost_syscalls in proptest::collection::btree_map(file(), 1u64..10, 0..2),
        warnings in proptest::collection::btree_map(file(), proptest::collection::btree_set("[a-z]{1,5}", 1..3), 0..2),
    ) -> Observed {
        Observed { hosts, nodes: Default::default(), syscalls, capabilities, arguments, argument_comms: Default::default(), capability_proofs: Default::default(), inherited_handlers: Default::default(), secrets: Default::default(), privileged_execs: Default::default(), privileged_execs_unknown: Default::default(), writes: Default::default(), writes_unknown: Default::default(), volumes: Default::default(), credentials: Default::default(), credentials_unknown: Default::default(), usages: Default::default(), usage_unknown: Default::default(), endpoints: Default::default(), endpoints_unknown: Default::default(), reads: Default::default(), images: Default::default(), secret_files: Default::default(), reads_unknown: Default::default(), container_starts, lost_syscalls, warnings }
    }
}

fn options() -> impl Strategy<Value = GenerateOptions> {
    (
        prop_oneof![
            Just(BaselineChoice::Auto),
            Just(BaselineChoice::None),
            Just(BaselineChoice::Use(Runtime::Runc)),
            Just(BaselineChoice::Use(Runtime::Crun)),
        ],
        prop_oneof![Just(DefaultErrno::Eperm), Just(DefaultErrno::Enosys)],
    )
        .prop_map(|(baseline, default_errno)| GenerateOptions {
            baseline,
            default_errno,
        })
}

fn names_in(rendered: &[u8]) -> BTreeSet<String> {
    let v: serde_json::Value = serde_json::from_slice(rendered).expect("rendered JSON parses");
    v["syscalls"]
        .as_array()
        .expect("syscalls")
        .iter()
        .flat_map(|r| {
            r["names"]
                .as_array()
                .expect("names")
                .iter()
                .map(|n| n.as_str().expect("string").to_owned())
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn merge_is_commutative(a in observed(), b in observed()) {
        prop_assert_eq!(a.merge(&b), b.merge(&a));
    }

    #[test]
    fn merge_is_associative(a in observed(), b in observed(), c in observed()) {
        prop_assert_eq!(a.merge(&b).merge(&c), a.merge(&b.merge(&c)));
    }

    #[test]
    fn merge_is_idempotent(a in observed(), b in observed()) {
        prop_assert_eq!(&a.merge(&a), &a);
        let ab = a.merge(&b);
        prop_assert_eq!(ab.merge(&b), ab);
    }

    #[test]
    fn generated_profiles_validate_and_stay_within_inputs(obs in observed(), opts in options()) {
        let named = name_observations(&obs);
        let nameable = named.by_arch.values().any(|s| !s.is_empty());
        match generate_observed(obs.clone(), vec![PathBuf::from("a.json")], &opts) {
            Err(GenerateError::EmptyRecording { .. }) => prop_assert_eq!(obs.syscall_count(), 0),
            Err(GenerateError::NothingNamed { .. }) => prop_assert!(!nameable),
            Err(e) => prop_assert!(false, "unexpected error: {}", e),
            Ok(generated) => {
                prop_assert!(nameable);
                // Compiled with libseccomp for every architecture (generate refuses otherwise).
                prop_assert_eq!(&generated.validated.compiled, &generated.profile.architectures);
                let mut permitted: BTreeSet<String> = named.by_arch.values().flatten().cloned().collect();
                let chosen = match opts.baseline {
                    BaselineChoice::Use(rt) => Some((rt, Scope::Whole)),
                    BaselineChoice::Auto if !obs.uncovered_starts().is_empty() => Some((Runtime::Runc, Scope::Whole)),
                    BaselineChoice::Auto if !obs.container_starts.is_empty() => Some((Runtime::Runc, Scope::Varies)),
                    _ => None,
                };
                if let Some((rt, scope)) = chosen {
                    permitted.extend(baseline::baseline(rt).calls(scope).iter().cloned());
                }
                // A recorded clone3 is answered with ENOSYS; glibc's fallback clone is allowed.
                if permitted.contains("clone3") {
                    permitted.insert("clone".to_owned());
                }
                // The syscalls the kernel makes a process issue, only where a rule asks for them,
                // and always restart_syscall.
                let required = kernel_issued::required(&generated.profile.architectures, &named.by_arch, &obs.inherited_handlers);
                let kernel: BTreeSet<String> = required.values().flatten().map(|n| (*n).to_owned()).collect();
                prop_assert!(generated.profile.allow.contains("restart_syscall"));
                prop_assert!(generated.profile.kernel_issued.iter().all(|n| kernel.contains(n) && !permitted.contains(n)));
                permitted.extend(kernel);
                for format in [Format::Docker, Format::Oci, Format::Kubernetes] {
                    let rendered = generated.render(format, Path::new("p.json"), None).expect("renders");
                    prop_assert_eq!(rendered.profile.last(), Some(&b'\n'));
                    let names = names_in(&rendered.profile);
                    let extra: Vec<&String> = names.iter().filter(|n| !permitted.contains(*n) && n.as_str() != "clone3").collect();
                    prop_assert!(extra.is_empty(), "names not in the inputs or baseline: {:?}", extra);
                    // What the file allows, read back, is exactly the generated allow list.
                    let loaded = parse_profile(&rendered.profile, Path::new("p.json"), &Target::new("6.18.0", None)).expect("reads back");
                    prop_assert_eq!(loaded.allowed_names(), generated.profile.allow.clone());
                    // ... and loads as a runtime loads it, allowing per architecture what the
                    // generator allowed there.
                    prop_assert_eq!(&loaded.load_error, &None);
                    prop_assert_eq!(&loaded.allowed, &generated.allowed_by_arch());
                }
                // Observed arches and hosts are all in the profile, nothing else.
                let expected: BTreeSet<Arch> = obs.hosts.iter().copied()
                    .chain(named.by_arch.iter().filter(|(_, s)| !s.is_empty()).map(|(a, _)| *a))
                    .collect();
                prop_assert_eq!(&generated.profile.architectures, &expected);
            }
        }
    }

    /// Never wider than Docker's default: for the capabilities kept, every argument value the
    /// profile allows of an argument-sensitive syscall is one Docker's default allows, or one
    /// the recordings observed (and `generate` names those).
    #[test]
    fn never_wider_than_dockers_default(obs in observed()) {
        let Ok(generated) = generate_observed(obs.clone(), vec![PathBuf::from("a.json")], &GenerateOptions::default()) else {
            return Ok(());
        };
        let kept = &generated.caps.settings.cap_add;
        for (name, decision) in &generated.arguments {
            let entry = arguments::ARG_SYSCALLS.iter().find(|a| a.name == name).expect("in the table");
            let docker = arg_rules::docker_conditions(name, kept);
            let observed: BTreeSet<u64> = obs.arguments.iter()
                .filter(|((_, n), _)| n == name)
                .flat_map(|(_, e)| match e { ArgEvidence::Known(v) => v.clone(), ArgEvidence::Unknown(_) => BTreeSet::new() })
                .collect();
            let alternatives = generated.profile.conditions.get(name).cloned().unwrap_or_default();
            prop_assert_eq!(&alternatives, &decision.alternatives);
            for v in (0u64..48).chain([0x1000_0000, 0x0002_0000, 0x5412, 0x0040_0000, 0xffff_ffff, 6, 2, 4]) {
                let v = v & entry.mask;
                if arg_rules::allows(&alternatives, entry.index, entry.mask, v) != Some(true) {
                    continue;
                }
                let docker_ok = docker.as_ref().is_some_and(|alts| arg_rules::allows(alts, entry.index, entry.mask, v) == Some(true));
                // A syscall Docker's default refuses outright, made by the workload with values
                // that are not all known, stays allowed (and the summary names it).
                let made = generated.named.by_arch.values().any(|n| n.contains(name));
                let seen = observed.contains(&v)
                    || (docker.is_none() && made)
                    // Memory protections: every value without both bits is allowed when W+X was
                    // never seen, and Docker allows mmap bare anyway.
                    || entry.kind == arguments::Kind::NoWriteExec;
                let named = decision.beyond_docker.contains(&v) || docker_ok;
                prop_assert!(docker_ok || seen, "{} allows {:#x}, which Docker's default refuses and nobody observed: {:?}", name, v, decision);
                prop_assert!(named || entry.kind == arguments::Kind::NoWriteExec || matches!(decision.decision, arg_rules::Decision::Bare { .. }), "{} {:#x} beyond Docker's default is not named", name, v);
            }
        }
    }
}
