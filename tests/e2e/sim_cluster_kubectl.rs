//! The simulated staging cluster (tests/support/cluster) checked against the real clients:
//! the real `kubectl` reads its pods, deployments, PodMetrics (`kubectl top`) and VPAs, is
//! refused with a wrong token, and sees a container the kernel OOM-killed as OOMKilled/137 with
//! a restart; kube-rs lists and watches pods through scaling and deletion; the Service proxy
//! and the cAdvisor `/metrics` answer. Every test also checks that dropping the cluster leaves
//! no process and no cgroup of this test process behind.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::cluster::testkit::{
    kubectl_available, leftover_cgroups, leftover_demo_processes, output_text, run_kubectl,
};
use crate::support::cluster::{
    require_cgroups, ClusterConfig, ContainerTemplate, MetricsMode, PodTemplate, SimCluster, MI,
};
use serde_json::{json, Value};

fn assert_cleaned_up() {
    assert_eq!(
        leftover_cgroups(),
        Vec::<PathBuf>::new(),
        "cgroups left behind"
    );
    assert_eq!(
        leftover_demo_processes(),
        Vec::<u32>::new(),
        "demo-service processes left behind"
    );
}

fn web_template() -> PodTemplate {
    PodTemplate::app(
        ContainerTemplate::app(128 * MI)
            .request(64 * MI)
            .env("DEMO_BASELINE", "24Mi"),
    )
}

fn web_vpa() -> Value {
    let at = "2026-11-20T10:00:00Z";
    json!({
        "apiVersion": "autoscaling.k8s.io/v1",
        "kind": "VerticalPodAutoscaler",
        "metadata": { "name": "web", "namespace": "staging" },
        "spec": {
            "targetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": "web" },
            "updatePolicy": { "updateMode": "Off" }
        },
        "status": {
            "conditions": [
                { "type": "RecommendationProvided", "status": "True", "lastTransitionTime": at },
                { "type": "LowConfidence", "status": "False", "lastTransitionTime": at }
            ],
            "recommendation": { "containerRecommendations": [{
                "containerName": "app",
                "target": { "cpu": "11m", "memory": "26214400" },
                "lowerBound": { "cpu": "10m", "memory": "20Mi" },
                "upperBound": { "cpu": "12m", "memory": "262144k" },
                "uncappedTarget": { "cpu": "11m", "memory": "26214400" }
            }]}
        }
    })
}

/// A plain HTTP GET over a fresh connection; (status code, body).
fn http_get(url: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http URL");
    let (addr, path) = rest
        .split_once('/')
        .map(|(a, p)| (a, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let code = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

/// Mebibytes from a kubectl top cell like "26Mi".
fn mib(cell: &str) -> f64 {
    if let Some(v) = cell.strip_suffix("Mi") {
        v.parse().unwrap_or(0.0)
    } else if let Some(v) = cell.strip_suffix("Gi") {
        v.parse::<f64>().unwrap_or(0.0) * 1024.0
    } else if let Some(v) = cell.strip_suffix("Ki") {
        v.parse::<f64>().unwrap_or(0.0) / 1024.0
    } else {
        cell.parse::<f64>().unwrap_or(0.0) / (1024.0 * 1024.0)
    }
}

#[test]
fn kubectl_reads_pods_deployments_metrics_and_vpas() {
    let test = "kubectl_reads_pods_deployments_metrics_and_vpas";
    if !require_cgroups(test) || !kubectl_available(test) {
        return;
    }
    let started = Instant::now();
    {
        let c = SimCluster::start(ClusterConfig {
            namespace: "staging".to_string(),
            metrics_resolution: Duration::from_secs(1),
            vpa_crd_installed: true,
        });
        c.add_deployment("web", 2, web_template());
        let added = Instant::now();
        c.set_vpa(web_vpa());
        let pods = c.pod_names("web");
        assert_eq!(pods.len(), 2);

        let list = c.kubectl_json(&["get", "pods", "-n", "staging", "-o", "json"]);
        let items = list["items"].as_array().expect("items");
        assert_eq!(items.len(), 2, "{list:#}");
        for p in items {
            let name = p["metadata"]["name"].as_str().unwrap().to_string();
            assert!(pods.contains(&name), "{name} not in {pods:?}");
            assert!(name.starts_with("web-"), "{name}");
            assert_eq!(p["metadata"]["labels"]["app"], "web");
            assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "ReplicaSet");
            let container = &p["spec"]["containers"][0];
            assert_eq!(container["name"], "app");
            assert_eq!(container["resources"]["limits"]["memory"], "128Mi");
            assert_eq!(container["resources"]["requests"]["memory"], "64Mi");
            assert_eq!(
                container["env"][0],
                json!({"name": "DEMO_BASELINE", "value": "24Mi"})
            );
            assert_eq!(p["status"]["phase"], "Running");
            let status = &p["status"]["containerStatuses"][0];
            assert_eq!(status["ready"], true, "{status:#}");
            assert_eq!(status["restartCount"], 0);
            assert!(status["state"]["running"]["startedAt"].is_string());
            assert!(status["containerID"]
                .as_str()
                .unwrap()
                .starts_with("containerd://"));
        }

        let names = c.kubectl_ok(&[
            "get", "pods", "-n", "staging", "-l", "app=web", "-o", "name",
        ]);
        assert_eq!(names.lines().count(), 2, "{names}");
        assert!(names.lines().all(|l| l.starts_with("pod/web-")), "{names}");
        let set_based = c.kubectl_ok(&[
            "get",
            "pods",
            "-n",
            "staging",
            "-l",
            "app in (web,db),pod-template-hash",
            "-o",
            "name",
        ]);
        assert_eq!(set_based.lines().count(), 2, "{set_based}");
        let none = c.kubectl_ok(&[
            "get", "pods", "-n", "staging", "-l", "app!=web", "-o", "name",
        ]);
        assert_eq!(none.trim(), "");

        let table = c.kubectl_ok(&["get", "pods", "-n", "staging"]);
        assert!(table.starts_with("NAME"), "{table}");
        assert!(
            table.contains("READY") && table.contains("1/1") && table.contains("Running"),
            "{table}"
        );

        let d = c.kubectl_json(&["get", "deploy", "web", "-n", "staging", "-o", "json"]);
        assert_eq!(d["spec"]["replicas"], 2, "{d:#}");
        assert_eq!(d["spec"]["selector"]["matchLabels"], json!({"app": "web"}));
        assert_eq!(d["status"]["readyReplicas"], 2);
        let rs = c.kubectl_json(&["get", "rs", "-n", "staging", "-o", "json"]);
        assert_eq!(
            rs["items"][0]["metadata"]["ownerReferences"][0]["name"],
            "web"
        );

        let vpas = c.kubectl_json(&["get", "vpa", "-n", "staging", "-o", "json"]);
        assert_eq!(vpas["kind"], "List");
        let vpa = &vpas["items"][0];
        assert_eq!(vpa["metadata"]["name"], "web", "{vpas:#}");
        assert_eq!(vpa["spec"]["targetRef"]["name"], "web");
        let rec = &vpa["status"]["recommendation"]["containerRecommendations"][0];
        assert_eq!(rec["containerName"], "app");
        assert_eq!(rec["target"]["memory"], "26214400");
        assert_eq!(rec["lowerBound"]["memory"], "20Mi");
        assert_eq!(rec["upperBound"]["memory"], "262144k");
        assert_eq!(
            vpa["status"]["conditions"][0]["type"],
            "RecommendationProvided"
        );
        let vpa_table = c.kubectl_ok(&["get", "vpa", "-n", "staging"]);
        assert!(
            vpa_table.contains("web") && vpa_table.contains("26214400"),
            "{vpa_table}"
        );

        // At least two scrapes of the metrics loop after the pods started.
        std::thread::sleep(Duration::from_millis(2200).saturating_sub(added.elapsed()));
        let top = c.kubectl_ok(&["top", "pod", "-n", "staging", "--containers"]);
        eprintln!("kubectl top pod -n staging --containers:\n{top}");
        let rows: Vec<Vec<&str>> = top
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(rows.len(), 2, "{top}");
        for row in &rows {
            assert!(pods.contains(&row[0].to_string()), "{top}");
            assert_eq!(row[1], "app", "{top}");
            let shown = mib(row[3]);
            let real = c.working_set(row[0], "app").unwrap() as f64 / MI as f64;
            assert!(shown > 20.0 && shown < 128.0, "{top}");
            assert!(
                (shown - real).abs() < 8.0,
                "top says {shown} MiB, the cgroup {real:.1} MiB"
            );
        }

        c.set_metrics_mode(MetricsMode::Unavailable503);
        let out = c.kubectl(&["top", "pod", "-n", "staging"]);
        assert!(!out.status.success(), "{}", output_text(&out));
        c.set_metrics_mode(MetricsMode::NotFound404);
        let out = c.kubectl(&["top", "pod", "-n", "staging"]);
        assert!(!out.status.success(), "{}", output_text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Metrics API not available"),
            "{}",
            output_text(&out)
        );
        c.set_metrics_mode(MetricsMode::Normal);

        let bad = c.work_dir().join("bad-kubeconfig");
        let text = std::fs::read_to_string(c.kubeconfig_path()).unwrap();
        std::fs::write(&bad, text.replace(c.token(), "not-the-token")).unwrap();
        let out = run_kubectl(&bad, c.work_dir(), &["get", "pods", "-n", "staging"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{}", output_text(&out));
        assert!(
            err.contains("Unauthorized") || err.contains("You must be logged in"),
            "{}",
            output_text(&out)
        );

        let (code, body) = http_get(&format!("{}/healthz", c.service_url("web")));
        assert_eq!((code, body.trim()), (200, "ok"));

        let (code, text) = http_get(&c.metrics_url());
        assert_eq!(code, 200);
        for p in &pods {
            assert!(
                text.lines()
                    .any(|l| l.starts_with("container_memory_working_set_bytes{")
                        && l.contains("container=\"app\"")
                        && l.contains(&format!("pod=\"{p}\""))),
                "{text}"
            );
        }
        assert!(
            text.lines()
                .any(|l| l.starts_with("container_memory_working_set_bytes{container=\"\",")),
            "{text}"
        );
        assert!(
            text.contains("image=\"registry.k8s.io/pause:3.9\""),
            "{text}"
        );

        let log = c.kubectl_ok(&["logs", &pods[0], "-n", "staging"]);
        assert!(log.contains("listening on 127.0.0.1:"), "{log}");

        // `kubectl get pods -w` (a watch of Tables) sees a new replica come up.
        let mut watch = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(c.kubeconfig_path())
            .arg("--cache-dir")
            .arg(c.work_dir().join("kube-cache"))
            .args(["get", "pods", "-n", "staging", "-w"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !c.requests().iter().any(|r| r.contains("watch=")) {
            assert!(Instant::now() < deadline, "kubectl never started watching");
            std::thread::sleep(Duration::from_millis(50));
        }
        c.scale("web", 3);
        std::thread::sleep(Duration::from_millis(500));
        let _ = watch.kill();
        let out = watch.wait_with_output().unwrap();
        let seen = String::from_utf8_lossy(&out.stdout);
        let new_pod = c
            .pod_names("web")
            .into_iter()
            .find(|p| !pods.contains(p))
            .unwrap();
        assert!(
            seen.lines()
                .any(|l| l.starts_with(&new_pod) && l.contains("1/1") && l.contains("Running")),
            "{}",
            output_text(&out)
        );
    }
    assert_cleaned_up();
    eprintln!("{test} took {:?}", started.elapsed());
}

#[test]
fn kubectl_sees_an_oom_killed_container() {
    let test = "kubectl_sees_an_oom_killed_container";
    if !require_cgroups(test) || !kubectl_available(test) {
        return;
    }
    {
        let c = SimCluster::start(ClusterConfig::default());
        let hog = ContainerTemplate::app(64 * MI)
            .env("DEMO_GROW_AFTER", "1s")
            .env("DEMO_GROW_PER_SEC", "64Mi");
        c.add_deployment("hog", 1, PodTemplate::app(hog));
        let pod = c.pod_names("hog").remove(0);
        let deadline = Instant::now() + Duration::from_secs(8);
        while c.restarts(&pod) == 0 {
            assert!(
                Instant::now() < deadline,
                "no OOM kill within 8 s:\n{}",
                c.pod_log(&pod)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let p = c.kubectl_json(&["get", "pod", &pod, "-n", "staging", "-o", "json"]);
        let s = &p["status"]["containerStatuses"][0];
        assert!(s["restartCount"].as_i64().unwrap() >= 1, "{s:#}");
        let terminated = &s["lastState"]["terminated"];
        assert_eq!(terminated["reason"], "OOMKilled", "{s:#}");
        assert_eq!(terminated["exitCode"], 137);
        assert!(terminated["containerID"]
            .as_str()
            .unwrap()
            .starts_with("containerd://"));
        assert!(terminated["finishedAt"].is_string());
    }
    assert_cleaned_up();
}

/// A kube-rs client for the cluster's kubeconfig.
async fn kube_client(kubeconfig: &Path) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig).expect("read the kubeconfig");
    let mut cfg =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .expect("kubeconfig to client config");
    // kube 5 retries 429/503/504 up to 15 times with back-off growing to minutes by default;
    // these checks want to see the 503 itself.
    cfg.default_retry = false;
    kube::Client::try_from(cfg).expect("kube client")
}

#[test]
fn kube_rs_lists_watches_and_reads_metrics() {
    use futures::StreamExt as _;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, ApiResource, DynamicObject, ListParams};
    use kube::runtime::watcher::{self, Event};

    let test = "kube_rs_lists_watches_and_reads_metrics";
    if !require_cgroups(test) {
        return;
    }
    {
        let c = SimCluster::start(ClusterConfig::default());
        c.add_deployment("web", 2, web_template());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let client = rt.block_on(kube_client(c.kubeconfig_path()));
        let pods: Api<Pod> = Api::namespaced(client.clone(), "staging");
        let list = rt
            .block_on(pods.list(&ListParams::default().labels("app=web")))
            .unwrap();
        assert_eq!(list.items.len(), 2);
        assert!(list.metadata.resource_version.is_some());
        let deployment = rt
            .block_on(Api::<Deployment>::namespaced(client.clone(), "staging").get("web"))
            .unwrap();
        assert_eq!(deployment.spec.unwrap().replicas, Some(2));

        // A raw watch from the list's resourceVersion: bookmarks parse, timeoutSeconds ends it.
        let raw_api = pods.clone();
        let from = list.metadata.resource_version.clone().unwrap();
        let raw = rt.spawn(async move {
            use kube::api::{WatchEvent, WatchParams};
            let started = Instant::now();
            let params = WatchParams::default().labels("app=web").timeout(3);
            let mut stream = raw_api.watch(&params, &from).await.unwrap().boxed();
            let mut kinds = Vec::new();
            while let Some(ev) = stream.next().await {
                kinds.push(match ev.unwrap() {
                    WatchEvent::Added(_) => "added",
                    WatchEvent::Modified(_) => "modified",
                    WatchEvent::Deleted(_) => "deleted",
                    WatchEvent::Bookmark(_) => "bookmark",
                    WatchEvent::Error(e) => panic!("watch error {e:?}"),
                });
            }
            (kinds, started.elapsed())
        });

        // The watcher (list, then watch from the list's resourceVersion) through scale and delete.
        let (tx, rx) = std::sync::mpsc::channel::<(String, String)>();
        let watched = pods.clone();
        rt.spawn(async move {
            let mut events =
                watcher::watcher(watched, watcher::Config::default().labels("app=web")).boxed();
            while let Some(ev) = events.next().await {
                let item = match ev {
                    Ok(Event::Apply(p)) => {
                        ("apply".to_string(), p.metadata.name.unwrap_or_default())
                    }
                    Ok(Event::Delete(p)) => {
                        ("delete".to_string(), p.metadata.name.unwrap_or_default())
                    }
                    Ok(Event::InitDone) => ("init-done".to_string(), String::new()),
                    Ok(_) => continue,
                    Err(e) => ("error".to_string(), e.to_string()),
                };
                if tx.send(item).is_err() {
                    return;
                }
            }
        });
        let next = |want: &dyn Fn(&(String, String)) -> bool| {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let ev = rx.recv_timeout(left).expect("watch event in time");
                assert_ne!(ev.0, "error", "{ev:?}");
                if want(&ev) {
                    return ev;
                }
            }
        };
        next(&|e| e.0 == "init-done");
        c.scale("web", 3);
        let before: Vec<String> = list
            .items
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();
        let added = next(&|e| e.0 == "apply" && !before.contains(&e.1));
        let victim = before[0].clone();
        let replacement = c.delete_pod(&victim);
        next(&|e| e.0 == "delete" && e.1 == victim);
        next(&|e| e.0 == "apply" && e.1 == replacement);
        assert_eq!(c.pod_names("web").len(), 3);
        assert!(c.pod_names("web").contains(&added.1));

        let (kinds, took) = rt.block_on(raw).unwrap();
        assert!(kinds.contains(&"bookmark"), "{kinds:?}");
        assert!(
            kinds.contains(&"added") && kinds.contains(&"deleted"),
            "{kinds:?}"
        );
        assert!(
            took >= Duration::from_millis(2500) && took < Duration::from_secs(8),
            "{took:?}"
        );

        // PodMetrics as the gate reads them: DynamicObject through kube-rs.
        std::thread::sleep(Duration::from_millis(1200));
        let resource = ApiResource {
            group: "metrics.k8s.io".into(),
            version: "v1beta1".into(),
            api_version: "metrics.k8s.io/v1beta1".into(),
            kind: "PodMetrics".into(),
            plural: "pods".into(),
        };
        let metrics: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), "staging", &resource);
        let m = rt
            .block_on(metrics.list(&ListParams::default().labels("app=web")))
            .unwrap();
        assert!(!m.items.is_empty());
        for item in &m.items {
            let parsed: support::cluster::metrics::PodMetrics =
                serde_json::from_value(serde_json::to_value(item).unwrap()).unwrap();
            assert_eq!(parsed.containers[0].name, "app");
            assert!(parsed.containers[0].usage.contains_key("memory"));
        }
        c.set_metrics_mode(MetricsMode::Unavailable503);
        match rt.block_on(metrics.list(&ListParams::default())) {
            Err(kube::Error::Api(s)) => assert_eq!(s.code, 503, "{s:?}"),
            other => panic!("expected 503, got {other:?}"),
        }

        // RBAC denial and a wrong token are real Status errors.
        c.forbid("list", "pods");
        match rt.block_on(pods.list(&ListParams::default())) {
            Err(kube::Error::Api(s)) => assert_eq!((s.code, s.reason.as_str()), (403, "Forbidden")),
            other => panic!("expected 403, got {other:?}"),
        }
        c.allow("list", "pods");
        let bad = tempfile::NamedTempFile::new().unwrap();
        let text = std::fs::read_to_string(c.kubeconfig_path()).unwrap();
        std::fs::write(bad.path(), text.replace(c.token(), "wrong")).unwrap();
        let bad_client = rt.block_on(kube_client(bad.path()));
        match rt
            .block_on(Api::<Pod>::namespaced(bad_client, "staging").list(&ListParams::default()))
        {
            Err(kube::Error::Api(s)) => assert_eq!(s.code, 401),
            other => panic!("expected 401, got {other:?}"),
        }
        rt.shutdown_background();
    }
    assert_cleaned_up();
}

#[test]
fn statefulset_and_one_growing_replica() {
    let test = "statefulset_and_one_growing_replica";
    if !require_cgroups(test) {
        return;
    }
    {
        let c = SimCluster::start(ClusterConfig::default());
        c.add_statefulset_with("db", 2, web_template(), |slot| {
            if slot == 1 {
                vec![("DEMO_GROW_PER_SEC".to_string(), "16Mi".to_string())]
            } else {
                Vec::new()
            }
        });
        assert_eq!(
            c.pod_names("db"),
            vec!["db-0".to_string(), "db-1".to_string()]
        );
        std::thread::sleep(Duration::from_millis(2000));
        let steady = c.working_set("db-0", "app").unwrap();
        let growing = c.working_set("db-1", "app").unwrap();
        assert!(
            growing > steady + 16 * MI,
            "db-0 {steady} B, db-1 {growing} B"
        );
        // A deleted ordinal comes back under the same name; the per-slot env comes with it.
        assert_eq!(c.delete_pod("db-1"), "db-1");
        assert_eq!(c.restarts("db-1"), 0);
        c.scale("db", 1);
        assert_eq!(c.pod_names("db"), vec!["db-0".to_string()]);
        let (code, _) = http_get(&format!("{}/healthz", c.service_url("db")));
        assert_eq!(code, 200);
    }
    assert_cleaned_up();
}
