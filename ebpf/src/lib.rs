//! Empty on purpose: the probes are the `cinch` binary target (built for bpfel-unknown-none by
//! `tracer/build.rs`); this library target only lets the tracer declare a build-dependency, so
//! cargo rebuilds the object when the probes change.
#![no_std]
