//! oomgate: a CI load-test gate. It drives a staged ramp-and-hold load at a service, samples the
//! memory of every container the whole time, and fails when peak usage comes within the
//! headroom of the limit, a container is OOM-killed, or the load misses its thresholds.
//!
//! Data flows one way: scenario → load driver ∥ memory sampler → `Run` → judge → `Verdict` →
//! reporters. `app` wires the subcommands; `main.rs` only parses arguments and maps errors to
//! exit codes.

pub mod analysis;
pub mod app;
pub mod cli;
pub mod cluster;
pub mod comment;
pub mod demo_service;
pub mod fuzz_entry;
pub mod judge;
pub mod k6;
pub mod load;
pub mod logging;
pub mod memory;
pub mod model;
pub mod redact;
pub mod report;
pub mod run;
pub mod scenario;
pub mod stdout_guard;
pub mod units;
pub mod workload;
