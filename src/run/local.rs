//! A local workload for a run: start the service under its memory cgroup, watch its process
//! (an exit during the run is an event), hand its memory source to `measure`, and stop it and
//! remove its cgroup afterwards, whatever happened.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::{mpsc, Mutex};

use super::{interrupted_wait, measure, Prepared, RunContext, RunResult, WorkloadEvent};
use crate::load::LoadDriver;
use crate::memory::resident::{Processes, ResidentFloor};
use crate::memory::sampler::Sampler;
use crate::scenario::{LocalWorkloadSpec, Scenario};
use crate::units::format_bytes;
use crate::workload::local::{LocalSpec, LocalWorkload};

pub(super) async fn execute(
    sc: &Scenario,
    local: &LocalWorkloadSpec,
    ctx: &RunContext,
    driver: Box<dyn LoadDriver>,
) -> Result<RunResult> {
    let spec = LocalSpec {
        command: local.command.clone(),
        env: local.env.clone(),
        ready_url: local.ready_url.clone(),
        ready_timeout: local.ready_timeout,
        limit: local.limit,
        name: local.container.clone(),
    };
    log::info!(
        "starting {} under a {} memory limit",
        local
            .command
            .first()
            .map(String::as_str)
            .unwrap_or("the service"),
        local.limit.map(format_bytes).unwrap_or_else(|| "no".into())
    );
    let workload = tokio::select! {
        w = LocalWorkload::start(&spec) => w.with_context(|| format!("starting workload.local from {}", sc.file.display()))?,
        _ = interrupted_wait() => anyhow::bail!("interrupted while starting the service"),
    };
    for note in workload.notes() {
        log::warn!("{note}");
    }
    let mut sampler = Sampler::new();
    sampler.declare("local", &local.container, local.limit, local.request);
    let prepared = Prepared {
        source: Box::new(ResidentFloor::new(
            workload.memory_source(),
            match workload.cgroup_path() {
                Some(dir) => Processes::Cgroup(dir.to_path_buf()),
                None => Processes::Tree(workload.pid()),
            },
        )),
        sampler,
        events: mpsc::channel(1).1,
        stop_on_oom: true,
        limit_enforced: workload.limit_enforced(),
        notes: workload.notes().to_vec(),
        workload: format!("local service {}", local.container),
        vpa: None,
        env: vec![(local.container.clone(), local.env.clone())],
        baseline: ctx.baseline.clone(),
        allowed: local
            .limit
            .map(|l| {
                vec![(
                    local.container.clone(),
                    crate::model::allowed_peak(l, sc.policy.headroom),
                )]
            })
            .unwrap_or_default(),
    };
    // Watch the process: its exit during the run is an event.
    let shared = Arc::new(Mutex::new(Some(workload)));
    let (tx, rx) = mpsc::channel(8);
    let watcher = {
        let shared = Arc::clone(&shared);
        let container = local.container.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let status = match shared.lock().await.as_mut() {
                    Some(w) => w.try_exit_status(),
                    None => return,
                };
                if let Some(status) = status {
                    let _ = tx
                        .send(WorkloadEvent::ServiceExited {
                            container,
                            status: status.to_string(),
                            code: status.code(),
                        })
                        .await;
                    return;
                }
            }
        })
    };
    let result = measure(
        sc,
        driver,
        Prepared {
            events: rx,
            ..prepared
        },
    )
    .await;
    watcher.abort();
    let workload = shared.lock().await.take();
    if let Some(w) = workload {
        if let Err(e) = w.shutdown().await {
            log::warn!("stopping the service: {e}");
        }
    }
    result
}
