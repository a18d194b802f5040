//! The restart watcher: for the whole run it watches the workload's pods (a `kube::runtime`
//! watcher on the label selector, re-listing with back-off after errors) and reports pods that
//! appear, pods that go, and every container restart, with OOM kills told apart by the
//! container's terminated reason. The diffing is [`RestartTracker`], pure and unit-tested: it
//! remembers per pod and container how many restarts it has accounted for, so an OOM kill seen
//! in `state.terminated` before the kubelet restarts the container is counted once, and
//! restarts a pod already had when it was first seen are not counted. The orchestrator reads
//! the [`WatchUpdate`]s from a channel and aborts the task when the run ends. A watch the API
//! server refuses (401, or 403: RBAC does not grant `list`/`watch` on pods) is not retried: the
//! run could not see restarts or OOM kills, so the watcher reports the error, stops the load
//! with that reason (the run ends early and cannot pass) and ends; [`check_watch_access`] is the
//! same question asked up front, for a preflight.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ContainerStateTerminated, ContainerStatus, Pod};
use kube::api::{Api, ListParams, WatchEvent, WatchParams};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::cluster::{classify, classify_status, status_code, ClusterError};
use crate::model::{RestartEvent, RestartReason, Timestamp};
use crate::workload::kubernetes::{pod_info, PodInfo};

/// What the watcher saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchUpdate {
    /// A pod not known before (with its containers' limits), e.g. a replacement pod.
    PodSeen(PodInfo),
    /// A pod was deleted (or is missing after a re-list).
    PodGone(String),
    /// A container restarted or was OOM-killed during the run.
    Restart(RestartEvent),
    /// The watch failed; it is retried with back-off.
    Error(String),
}

/// Starts watching the pods matching `selector` in `namespace`. `initial` are the pods already
/// known (from `resolve`); their current restart counts are the baseline. Abort the handle to
/// stop; the task also ends when the receiver is dropped.
pub fn watch_restarts(
    client: kube::Client,
    namespace: String,
    selector: String,
    initial: &[PodInfo],
) -> (mpsc::Receiver<WatchUpdate>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(256);
    let mut tracker = RestartTracker::new(initial, Utc::now());
    let handle = tokio::spawn(async move {
        let api = Api::<Pod>::namespaced(client, &namespace);
        let config = watcher::Config::default().labels(&selector);
        let mut stream = watcher::watcher(api, config).default_backoff().boxed();
        let mut last_error: Option<String> = None;
        while let Some(item) = stream.next().await {
            let updates = match item {
                Ok(Event::Init) => {
                    tracker.init_start();
                    Vec::new()
                }
                Ok(Event::InitApply(pod)) | Ok(Event::Apply(pod)) => {
                    last_error = None;
                    tracker.apply(&pod, Utc::now())
                }
                Ok(Event::InitDone) => tracker.init_done(),
                Ok(Event::Delete(pod)) => {
                    let name = pod.metadata.name.unwrap_or_default();
                    tracker.delete(&name).into_iter().collect()
                }
                Err(e) if refused(&e) => {
                    // Retrying cannot help, and a run that cannot see restarts must not pass.
                    let message = format!("watching pods: {}", watch_error(e, &namespace));
                    log::error!("{message}");
                    let reason = format!("the restart watcher cannot follow the pods ({message})");
                    crate::load::stop_running_load(&reason);
                    if tx.send(WatchUpdate::Error(message)).await.is_err() {
                        return;
                    }
                    // The refusal usually comes before the load tool has started, and Goose
                    // clears a stop request when it starts: repeat it until the run ends (the
                    // orchestrator aborts this task) so the load really stops.
                    loop {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        if tx.is_closed() {
                            return;
                        }
                        crate::load::stop_running_load(&reason);
                    }
                }
                Err(e) => {
                    let message = format!("watching pods: {}", watch_error(e, &namespace));
                    if last_error.as_deref() == Some(message.as_str()) {
                        Vec::new()
                    } else {
                        log::debug!("{message}");
                        last_error = Some(message.clone());
                        vec![WatchUpdate::Error(message)]
                    }
                }
            };
            for update in updates {
                if tx.send(update).await.is_err() {
                    return;
                }
            }
        }
    });
    (rx, handle)
}

/// The API server refused the watcher's list or watch (401 or 403).
fn refused(err: &watcher::Error) -> bool {
    let code = match err {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => status_code(e),
        watcher::Error::WatchError(status) => Some(status.code),
        _ => None,
    };
    matches!(code, Some(401 | 403))
}

/// Whether the credentials may list and watch the pods matching `selector` in `namespace`, as
/// the watcher will: a list and a one-second watch. The error names the verb and the rule.
pub async fn check_watch_access(
    client: &kube::Client,
    namespace: &str,
    selector: &str,
) -> Result<(), ClusterError> {
    let api = Api::<Pod>::namespaced(client.clone(), namespace);
    let list = api
        .list(&ListParams::default().labels(selector).limit(1))
        .await
        .map_err(|e| classify(e, "list", "pods", namespace))?;
    let version = list.metadata.resource_version.unwrap_or_default();
    let stream = api
        .watch(
            &WatchParams::default().labels(selector).timeout(1),
            &version,
        )
        .await
        .map_err(|e| classify(e, "watch", "pods", namespace))?;
    let mut stream = stream.boxed();
    match tokio::time::timeout(Duration::from_secs(3), stream.next()).await {
        Ok(Some(Err(e))) => Err(classify(e, "watch", "pods", namespace)),
        Ok(Some(Ok(WatchEvent::Error(status)))) => Err(classify_status(
            status.code,
            &status.message,
            "watch",
            "pods",
            namespace,
        )),
        _ => Ok(()),
    }
}

fn watch_error(err: watcher::Error, namespace: &str) -> String {
    match err {
        watcher::Error::InitialListFailed(e) => classify(e, "list", "pods", namespace).to_string(),
        watcher::Error::WatchStartFailed(e) | watcher::Error::WatchFailed(e) => {
            classify(e, "watch", "pods", namespace).to_string()
        }
        watcher::Error::WatchError(status) => {
            classify_status(status.code, &status.message, "watch", "pods", namespace).to_string()
        }
        other => other.to_string(),
    }
}

/// Restarts accounted for, per pod and container; turns pod snapshots into updates.
#[derive(Debug, Clone)]
pub struct RestartTracker {
    /// Terminations that finished before this are from before the run.
    since: Timestamp,
    counted: BTreeMap<String, BTreeMap<String, i32>>,
    /// Pods seen since the watcher's last (re-)list began, while one is running.
    listing: Option<BTreeSet<String>>,
}

impl RestartTracker {
    /// `initial` pods are known: no `PodSeen` for them, their restart counts are the baseline.
    pub fn new(initial: &[PodInfo], since: Timestamp) -> Self {
        let counted = initial
            .iter()
            .map(|p| (p.name.clone(), p.restart_counts.clone()))
            .collect();
        RestartTracker {
            since,
            counted,
            listing: None,
        }
    }

    /// The names of the pods currently known.
    pub fn pods(&self) -> impl Iterator<Item = &str> {
        self.counted.keys().map(String::as_str)
    }

    /// A pod was added or changed. `now` stamps restarts whose finish time is unknown.
    pub fn apply(&mut self, pod: &Pod, now: Timestamp) -> Vec<WatchUpdate> {
        let name = pod.metadata.name.clone().unwrap_or_default();
        if let Some(listing) = &mut self.listing {
            listing.insert(name.clone());
        }
        let mut updates = Vec::new();
        let known = self.counted.contains_key(&name);
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if !known && matches!(phase, Some("Succeeded") | Some("Failed")) {
            // A finished pod (e.g. evicted before the run) is not measured; `resolve` skips
            // those too.
            return updates;
        }
        if !known && phase == Some("Pending") {
            // Not running yet (scheduling, pulling images): its coverage is counted from the
            // moment it runs, when the next update of it arrives.
            return updates;
        }
        if !known {
            match pod_info(pod) {
                Ok(info) => updates.push(WatchUpdate::PodSeen(info)),
                Err(e) => updates.push(WatchUpdate::Error(e.to_string())),
            }
        }
        let since = self.since;
        let counted = self.counted.entry(name.clone()).or_default();
        let statuses = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_deref())
            .unwrap_or_default();
        for status in statuses {
            let restarts = status.restart_count;
            let entry = counted.entry(status.name.clone());
            let count = match entry {
                std::collections::btree_map::Entry::Vacant(v) => v.insert(restarts),
                std::collections::btree_map::Entry::Occupied(o) => {
                    let count = o.into_mut();
                    if restarts > *count {
                        let event = restart_event(&name, status, now);
                        for _ in *count..restarts {
                            updates.push(WatchUpdate::Restart(event.clone()));
                        }
                        *count = restarts;
                    }
                    count
                }
            };
            // Killed now, not restarted yet: count it at once; the restart that follows is
            // then already accounted for.
            if let Some(t) = terminated(status.state.as_ref()).filter(|t| is_oom(t)) {
                if *count == restarts {
                    *count = restarts + 1;
                    let finished = finished_at(t);
                    if finished.is_none_or(|f| f >= since) {
                        updates.push(WatchUpdate::Restart(RestartEvent {
                            pod: name.clone(),
                            container: status.name.clone(),
                            at: finished.unwrap_or(now),
                            reason: RestartReason::OomKilled,
                            exit_code: Some(t.exit_code),
                        }));
                    }
                }
            }
        }
        updates
    }

    /// A pod was deleted.
    pub fn delete(&mut self, name: &str) -> Option<WatchUpdate> {
        self.counted
            .remove(name)
            .map(|_| WatchUpdate::PodGone(name.to_string()))
    }

    /// The watcher (re-)lists: the pods listed until [`Self::init_done`] are all there are.
    pub fn init_start(&mut self) {
        self.listing = Some(BTreeSet::new());
    }

    /// The list is complete: known pods it did not contain are gone.
    pub fn init_done(&mut self) -> Vec<WatchUpdate> {
        let Some(listed) = self.listing.take() else {
            return Vec::new();
        };
        let gone: Vec<String> = self
            .counted
            .keys()
            .filter(|name| !listed.contains(*name))
            .cloned()
            .collect();
        gone.iter().filter_map(|name| self.delete(name)).collect()
    }
}

fn terminated(
    state: Option<&k8s_openapi::api::core::v1::ContainerState>,
) -> Option<&ContainerStateTerminated> {
    state.and_then(|s| s.terminated.as_ref())
}

fn is_oom(t: &ContainerStateTerminated) -> bool {
    t.reason.as_deref() == Some("OOMKilled")
}

fn finished_at(t: &ContainerStateTerminated) -> Option<Timestamp> {
    super::kubernetes::k8s_time(t.finished_at.as_ref()?)
}

/// The restart a rising restart count stands for, described by the last termination.
fn restart_event(pod: &str, status: &ContainerStatus, now: Timestamp) -> RestartEvent {
    let last = terminated(status.last_state.as_ref());
    let current = terminated(status.state.as_ref());
    let reason = if last.is_some_and(is_oom) || current.is_some_and(is_oom) {
        RestartReason::OomKilled
    } else {
        RestartReason::Other(
            last.and_then(|t| t.reason.clone())
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| "restarted".to_string()),
        )
    };
    RestartEvent {
        pod: pod.to_string(),
        container: status.name.clone(),
        at: last.and_then(finished_at).unwrap_or(now),
        reason,
        exit_code: last.map(|t| t.exit_code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::{json, Value};
    use std::time::Duration;

    fn t(sec: u32) -> Timestamp {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, sec).unwrap()
    }

    fn rfc(sec: u32) -> String {
        t(sec).to_rfc3339()
    }

    /// A pod `web-1` whose `app` container has `restarts`, the given current state and last state.
    fn pod(name: &str, restarts: i32, state: Value, last: Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": { "name": name },
            "spec": { "containers": [ { "name": "app", "image": "web:1",
                "resources": { "limits": { "memory": "1Gi" } } } ] },
            "status": { "containerStatuses": [ {
                "name": "app", "image": "web:1", "imageID": "", "ready": true,
                "restartCount": restarts, "state": state, "lastState": last } ] }
        }))
        .unwrap()
    }

    fn running() -> Value {
        json!({ "running": { "startedAt": rfc(30) } })
    }

    fn killed(reason: &str, code: i32, sec: u32) -> Value {
        json!({ "terminated": { "exitCode": code, "reason": reason, "finishedAt": rfc(sec),
                                "containerID": "containerd://abc" } })
    }

    fn seeded(restarts: i32) -> RestartTracker {
        let info = PodInfo {
            name: "web-1".into(),
            containers: vec![],
            restart_counts: [("app".to_string(), restarts)].into(),
            ready: true,
            created: None,
        };
        RestartTracker::new(&[info], t(0))
    }

    fn restarts(updates: &[WatchUpdate]) -> Vec<&RestartEvent> {
        updates
            .iter()
            .filter_map(|u| match u {
                WatchUpdate::Restart(e) => Some(e),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn oom_killed_restart() {
        let mut tr = seeded(0);
        assert!(tr
            .apply(&pod("web-1", 0, running(), Value::Null), t(5))
            .is_empty());
        let u = tr.apply(
            &pod("web-1", 1, running(), killed("OOMKilled", 137, 20)),
            t(40),
        );
        assert_eq!(
            u,
            vec![WatchUpdate::Restart(RestartEvent {
                pod: "web-1".into(),
                container: "app".into(),
                at: t(20),
                reason: RestartReason::OomKilled,
                exit_code: Some(137),
            })]
        );
        // The same snapshot again changes nothing.
        assert!(tr
            .apply(
                &pod("web-1", 1, running(), killed("OOMKilled", 137, 20)),
                t(41)
            )
            .is_empty());
    }

    #[test]
    fn restart_for_another_reason() {
        let mut tr = seeded(2);
        let u = tr.apply(&pod("web-1", 3, running(), killed("Error", 1, 25)), t(40));
        let r = restarts(&u);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].reason, RestartReason::Other("Error".into()));
        assert_eq!((r[0].exit_code, r[0].at), (Some(1), t(25)));
        // Without a last state: "restarted", stamped now.
        let u = tr.apply(&pod("web-1", 4, running(), Value::Null), t(50));
        let r = restarts(&u);
        assert_eq!(r[0].reason, RestartReason::Other("restarted".into()));
        assert_eq!((r[0].exit_code, r[0].at), (None, t(50)));
    }

    #[test]
    fn one_event_per_increment() {
        let mut tr = seeded(0);
        let u = tr.apply(
            &pod("web-1", 2, running(), killed("OOMKilled", 137, 20)),
            t(40),
        );
        assert_eq!(restarts(&u).len(), 2);
    }

    #[test]
    fn new_pods_are_seen_and_their_old_restarts_not_counted() {
        let mut tr = seeded(0);
        let u = tr.apply(
            &pod("web-2", 3, running(), killed("OOMKilled", 137, 20)),
            t(40),
        );
        assert_eq!(u.len(), 1);
        let WatchUpdate::PodSeen(info) = &u[0] else {
            panic!("{u:?}")
        };
        assert_eq!(info.name, "web-2");
        assert_eq!(info.containers[0].limit, Some(1 << 30));
        assert_eq!(info.restart_counts.get("app"), Some(&3));
        let u = tr.apply(
            &pod("web-2", 4, running(), killed("OOMKilled", 137, 45)),
            t(50),
        );
        assert_eq!(restarts(&u).len(), 1);
        let mut names: Vec<&str> = tr.pods().collect();
        names.sort_unstable();
        assert_eq!(names, ["web-1", "web-2"]);
    }

    #[test]
    fn a_pending_pod_is_seen_once_it_runs() {
        let mut tracker = seeded(0);
        let waiting = json!({ "waiting": { "reason": "ContainerCreating" } });
        let mut p = pod("web-2", 0, waiting, json!({}));
        p.status.as_mut().unwrap().phase = Some("Pending".into());
        assert!(
            tracker.apply(&p, t(40)).is_empty(),
            "not seen while pending"
        );
        p.status.as_mut().unwrap().phase = Some("Running".into());
        let u = tracker.apply(&p, t(41));
        assert!(
            matches!(&u[..], [WatchUpdate::PodSeen(info)] if info.name == "web-2"),
            "{u:?}"
        );
    }

    #[test]
    fn oom_seen_before_the_restart_counts_once() {
        let mut tr = seeded(0);
        let u = tr.apply(
            &pod("web-1", 0, killed("OOMKilled", 137, 20), Value::Null),
            t(21),
        );
        let r = restarts(&u);
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].at, &r[0].reason), (t(20), &RestartReason::OomKilled));
        // Still dead on the next update: nothing new.
        assert!(tr
            .apply(
                &pod("web-1", 0, killed("OOMKilled", 137, 20), Value::Null),
                t(22)
            )
            .is_empty());
        // The kubelet restarts it: already counted.
        let back = pod("web-1", 1, running(), killed("OOMKilled", 137, 20));
        assert!(tr.apply(&back, t(30)).is_empty());
        // A second kill later counts again, once.
        let again = pod(
            "web-1",
            1,
            killed("OOMKilled", 137, 50),
            killed("OOMKilled", 137, 20),
        );
        assert_eq!(restarts(&tr.apply(&again, t(51))).len(), 1);
        let back = pod("web-1", 2, running(), killed("OOMKilled", 137, 50));
        assert!(tr.apply(&back, t(59)).is_empty());
    }

    #[test]
    fn a_kill_from_before_the_run_is_not_counted() {
        let mut tr = RestartTracker::new(&[], t(30));
        let u = tr.apply(
            &pod("web-1", 0, killed("OOMKilled", 137, 10), Value::Null),
            t(31),
        );
        assert!(restarts(&u).is_empty(), "{u:?}");
        assert!(tr
            .apply(
                &pod("web-1", 1, running(), killed("OOMKilled", 137, 10)),
                t(40)
            )
            .is_empty());
    }

    /// A plain-HTTP stand-in for the API server: lists `web-1` (restartCount 1) and `web-2`,
    /// then one watch with `web-1` OOM-killed and `web-2` deleted; later watches hang.
    async fn fake_api() -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let obj = |p: Pod, rv: &str| {
            let mut v = serde_json::to_value(p).unwrap();
            v["apiVersion"] = json!("v1");
            v["kind"] = json!("Pod");
            v["metadata"]["resourceVersion"] = json!(rv);
            v
        };
        let list =
            json!({ "kind": "PodList", "apiVersion": "v1", "metadata": { "resourceVersion": "10" },
            "items": [ obj(pod("web-1", 1, running(), Value::Null), "5"),
                       obj(pod("web-2", 0, running(), Value::Null), "6") ] })
            .to_string();
        let events = format!(
            "{}\n{}\n",
            json!({ "type": "MODIFIED", "object": obj(pod("web-1", 2, running(), killed("OOMKilled", 137, 20)), "11") }),
            json!({ "type": "DELETED", "object": obj(pod("web-2", 0, running(), Value::Null), "12") })
        );
        tokio::spawn(async move {
            let mut watches = 0;
            loop {
                let (mut sock, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 8192];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).into_owned();
                assert!(head.contains("labelSelector=app%3Dweb"), "{head}");
                let body = if head.contains("watch=true") {
                    watches += 1;
                    if watches > 1 {
                        tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            drop(sock);
                        });
                        continue;
                    }
                    events.clone()
                } else {
                    list.clone()
                };
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                sock.write_all(reply.as_bytes()).await.ok();
                sock.shutdown().await.ok();
            }
        });
        port
    }

    #[tokio::test]
    async fn watcher_reports_new_pods_restarts_and_deletions() {
        let port = fake_api().await;
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config");
        std::fs::write(
            &config,
            format!(
                "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\nusers: [{{name: u, user: {{token: t}}}}]\ncontexts: [{{name: x, context: {{cluster: c, user: u}}}}]\ncurrent-context: x\n"
            ),
        )
        .unwrap();
        let access = crate::cluster::ClusterAccess {
            kubeconfig: Some(config),
            context: None,
        };
        let client = crate::cluster::connect(&access)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let initial = [PodInfo {
            name: "web-1".into(),
            containers: vec![],
            restart_counts: [("app".to_string(), 1)].into(),
            ready: true,
            created: None,
        }];
        let (mut rx, handle) = watch_restarts(client, "staging".into(), "app=web".into(), &initial);
        let mut got = Vec::new();
        while got.len() < 3 {
            let next = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
            got.push(
                next.expect("an update within 10 s")
                    .expect("the channel is open"),
            );
        }
        handle.abort();
        assert!(
            matches!(&got[0], WatchUpdate::PodSeen(p) if p.name == "web-2"),
            "{got:?}"
        );
        assert!(
            matches!(&got[1], WatchUpdate::Restart(e) if e.pod == "web-1" && e.reason == RestartReason::OomKilled),
            "{got:?}"
        );
        assert_eq!(got[2], WatchUpdate::PodGone("web-2".into()));
    }

    #[test]
    fn finished_pods_are_not_new_pods() {
        let mut tr = seeded(0);
        let mut evicted = pod("web-9", 0, killed("Evicted", 137, 10), Value::Null);
        evicted.status.as_mut().unwrap().phase = Some("Failed".into());
        assert!(tr.apply(&evicted, t(20)).is_empty());
        assert_eq!(tr.pods().collect::<Vec<_>>(), ["web-1"]);
    }

    #[test]
    fn deleted_and_relisted_pods_are_gone() {
        let mut tr = seeded(0);
        tr.apply(&pod("web-2", 0, running(), Value::Null), t(1));
        assert_eq!(
            tr.delete("web-2"),
            Some(WatchUpdate::PodGone("web-2".into()))
        );
        assert_eq!(tr.delete("web-2"), None);
        tr.apply(&pod("web-3", 0, running(), Value::Null), t(2));
        tr.init_start();
        tr.apply(&pod("web-3", 0, running(), Value::Null), t(3));
        assert_eq!(tr.init_done(), vec![WatchUpdate::PodGone("web-1".into())]);
        assert!(tr.init_done().is_empty());
    }
}
