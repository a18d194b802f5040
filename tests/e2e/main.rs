//! The integration tests: one test crate, so the rigs in `support/` (the simulated cluster, the
//! Prometheus and auth-proxy helpers, ~6,000 lines) and the report fixtures compile once, and
//! the suite links one binary instead of one per file (the layout ripgrep uses). Each module is
//! one former `tests/*.rs` file; a test is named `module::test`, e.g.
//! `local_gate::healthy_demo_passes_and_report_matches_schema`.
//!
//! State that lives in a `static` is per process: once per test under nextest (each test runs
//! in its own process, as CI runs the suite), once for the whole crate under `cargo test`. The
//! one such state is the real control plane of `real_cluster` (started on first use, taken down
//! at exit). A test that needs something only in its child processes passes it on the
//! `Command` (e.g. an environment variable), never through this process's environment.

mod report_fixtures;
mod support;

mod advice_gate;
mod analysis_gate;
mod bad_input;
mod fail_closed_cluster;
mod fail_closed_coverage;
mod fail_closed_input;
mod fail_closed_load;
mod fail_closed_local;
mod fail_closed_reads;
mod fail_closed_run;
mod fuzz_corpus;
mod hostile_names;
mod install_and_comment;
mod k6_gate;
mod k6_reader;
mod kubernetes_gate;
mod least_privilege;
mod local_gate;
mod real_cluster;
mod reports_analysis;
mod reports_render;
mod secrets;
mod sim_cluster_kubectl;
mod soak;
mod untrusted_strings;
