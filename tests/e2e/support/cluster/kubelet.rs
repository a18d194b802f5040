//! The rig's kubelet loop (every 200 ms): it reaps exited containers — OOMKilled with exit code
//! 137 when the cgroup's oom_kill counter rose, else Error (or Completed) with the exit code or
//! 128 + signal — records `lastState.terminated`, keeps the exited instance's last reading for
//! cAdvisor a few seconds, and restarts the container with a CrashLoopBackOff scaled down 10×
//! (at once, then 1 s, 2 s, 4 s … at most 10 s; reset after a minute of running), counting the
//! restart when the new instance starts. It probes `/healthz` of running containers that are
//! not ready yet; a pod is Ready when all its containers are and it is not terminating.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::procs::start_instance;
use super::state::{ContainerRt, Instance, Shared, Stale, State, Terminated};

const TICK: Duration = Duration::from_millis(200);
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// An exited instance's series stay in cAdvisor output this long.
const STALE_FOR: Duration = Duration::from_secs(5);
/// A container that ran this long before crashing restarts without back-off.
const BACKOFF_RESET: chrono::TimeDelta = chrono::TimeDelta::seconds(60);
const MAX_BACKOFF_SECS: u64 = 10;

/// Record how an instance ended, schedule the restart, keep its last reading for cAdvisor.
fn record_exit(c: &mut ContainerRt, inst: Instance, status: ExitStatus) {
    let now = Utc::now();
    let reading = inst.cgroup.read().ok();
    let oom = reading.is_some_and(|r| r.oom_kills > 0);
    let (reason, exit_code) = if oom {
        ("OOMKilled", 137)
    } else if let Some(code) = status.code() {
        (if code == 0 { "Completed" } else { "Error" }, code)
    } else {
        ("Error", 128 + status.signal().unwrap_or(0))
    };
    c.last_terminated = Some(Terminated {
        reason: reason.to_string(),
        exit_code,
        started: inst.started,
        finished: now,
        container_id: inst.id.clone(),
    });
    c.ready = false;
    if now - inst.started > BACKOFF_RESET {
        c.crash_streak = 0;
    }
    let delay = match c.crash_streak {
        0 => 0,
        n => (1u64 << (n - 1).min(8)).min(MAX_BACKOFF_SECS),
    };
    c.crash_streak += 1;
    c.backoff_secs = delay;
    c.restart_at = Some(Instant::now() + Duration::from_secs(delay));
    c.stale = Some(Stale {
        id: inst.id.clone(),
        reading: reading.unwrap_or_default(),
        until: Instant::now() + STALE_FOR,
    });
    // The process is gone, so this only removes the empty cgroup.
    let _ = inst.cgroup.remove();
}

struct ProbeTarget {
    pod: String,
    container: usize,
    id: String,
    port: u16,
}

/// One supervisor pass under the lock; returns the containers to probe.
fn tick(shared: &Shared, st: &mut State) -> Vec<ProbeTarget> {
    if st.shutting_down {
        return Vec::new();
    }
    let ns = shared.cfg.namespace.clone();
    let names: Vec<String> = st.pods.keys().cloned().collect();
    let mut probes = Vec::new();
    for name in names {
        let Some(mut pod) = st.pods.remove(&name) else {
            continue;
        };
        let mut changed = false;
        if pod.deleting.is_none() {
            for (i, c) in pod.containers.iter_mut().enumerate() {
                if c.stale.as_ref().is_some_and(|s| s.until <= Instant::now()) {
                    c.stale = None;
                }
                if let Some(inst) = c.inst.as_mut() {
                    match inst.child.try_wait() {
                        Ok(Some(status)) => {
                            if let Some(inst) = c.inst.take() {
                                record_exit(c, inst, status);
                            }
                            changed = true;
                        }
                        Ok(None) if !c.ready => probes.push(ProbeTarget {
                            pod: name.clone(),
                            container: i,
                            id: inst.id.clone(),
                            port: c.port,
                        }),
                        _ => {}
                    }
                }
                if c.inst.is_none() && c.restart_at.is_some_and(|t| t <= Instant::now()) {
                    match start_instance(shared, st, &name, c) {
                        Ok(inst) => {
                            c.inst = Some(inst);
                            c.restart_at = None;
                            c.restart_count += 1;
                            changed = true;
                        }
                        Err(e) => {
                            eprintln!("sim-cluster: restarting {name}/{}: {e}", c.tpl.name);
                            c.restart_at = Some(Instant::now() + Duration::from_secs(1));
                        }
                    }
                }
            }
        }
        st.pods.insert(name.clone(), pod);
        if changed {
            st.refresh_pod(&ns, &name);
        }
    }
    probes
}

/// GET /healthz answered with 2xx within the probe timeout.
async fn probe(port: u16) -> bool {
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut buf = [0u8; 16];
        let mut got = 0;
        while got < 12 {
            let n = s.read(&mut buf[got..]).await.ok()?;
            if n == 0 {
                break;
            }
            got += n;
        }
        Some(buf[..got].starts_with(b"HTTP/1.1 2") || buf[..got].starts_with(b"HTTP/1.0 2"))
    };
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, attempt).await,
        Ok(Some(true))
    )
}

/// The supervisor loop; ends when the cluster shuts down.
pub(super) async fn supervise(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.subscribe();
    let ns = shared.cfg.namespace.clone();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        let probes = shared.update(|st| tick(&shared, st));
        if probes.is_empty() {
            continue;
        }
        let results = futures::future::join_all(probes.iter().map(|p| probe(p.port))).await;
        shared.update(|st| {
            for (p, ok) in probes.iter().zip(results) {
                if !ok {
                    continue;
                }
                let Some(pod) = st.pods.get_mut(&p.pod) else {
                    continue;
                };
                if pod.deleting.is_some() {
                    continue;
                }
                if let Some(c) = pod.containers.get_mut(p.container) {
                    if c.inst.as_ref().is_some_and(|i| i.id == p.id) && !c.ready {
                        c.ready = true;
                        st.refresh_pod(&ns, &p.pod);
                    }
                }
            }
        });
    }
}
