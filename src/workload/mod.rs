//! What is measured: a local service oomgate starts itself under a memory cgroup (`local.rs`),
//! with its limit optionally read offline from a Kubernetes manifest (`manifest.rs`).

pub mod kubernetes;
pub mod local;
pub mod manifest;
mod process_group;
pub mod restart_history;
pub mod restarts;
pub mod vpa;
