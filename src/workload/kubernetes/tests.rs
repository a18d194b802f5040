//! Unit tests for workload resolution: selectors, quantities, pods, rollout notes, filters.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::json;

use super::*;

fn pod(name: &str, limit: &str, request: &str, restarts: i32) -> Pod {
    serde_json::from_value(json!({
        "metadata": { "name": name, "namespace": "staging", "labels": { "app": "web" } },
        "spec": { "containers": [
            { "name": "app", "image": "web:1",
              "resources": { "limits": { "memory": limit, "cpu": "500m" }, "requests": { "memory": request } },
              "env": [ { "name": "GOMEMLIMIT", "value": "900MiB" },
                       { "name": "SECRET", "valueFrom": { "secretKeyRef": { "name": "s", "key": "k" } } } ] },
            { "name": "sidecar", "image": "proxy:1" }
        ] },
        "status": {
            "phase": "Running",
            "conditions": [ { "type": "Ready", "status": "True" } ],
            "containerStatuses": [
                { "name": "app", "image": "web:1", "imageID": "", "ready": true, "restartCount": restarts },
                { "name": "sidecar", "image": "proxy:1", "imageID": "", "ready": true, "restartCount": 0 }
            ]
        }
    }))
    .unwrap()
}

fn template(limit: u64) -> Vec<ContainerResources> {
    vec![ContainerResources {
        name: "app".into(),
        limit: Some(limit),
        request: Some(512 << 20),
        env: vec![],
    }]
}

const GI: u64 = 1 << 30;

#[test]
fn selector_strings() {
    let sel: LabelSelector = serde_json::from_value(json!({
        "matchLabels": { "app": "web", "tier": "api" },
        "matchExpressions": [
            { "key": "env", "operator": "In", "values": ["staging", "qa"] },
            { "key": "canary", "operator": "DoesNotExist" },
            { "key": "zone", "operator": "NotIn", "values": ["a"] },
            { "key": "team", "operator": "Exists" }
        ]
    }))
    .unwrap();
    assert_eq!(
        label_selector_string(&sel).unwrap(),
        "app=web,tier=api,env in (staging,qa),!canary,zone notin (a),team"
    );
    assert!(label_selector_string(&LabelSelector::default())
        .unwrap_err()
        .contains("every pod"));
    let bad: LabelSelector = serde_json::from_value(json!({
        "matchExpressions": [ { "key": "a", "operator": "Gt", "values": ["1"] } ]
    }))
    .unwrap();
    assert!(label_selector_string(&bad).unwrap_err().contains("`Gt`"));
}

#[test]
fn pod_info_reads_limits_env_restarts_and_readiness() {
    let info = pod_info(&pod("web-1", "1Gi", "512Mi", 2)).unwrap();
    assert_eq!(info.name, "web-1");
    assert!(info.ready);
    assert_eq!(info.restart_counts.get("app"), Some(&2));
    let app = &info.containers[0];
    assert_eq!((app.limit, app.request), (Some(GI), Some(512 << 20)));
    assert_eq!(
        app.env,
        vec![("GOMEMLIMIT".to_string(), "900MiB".to_string())]
    );
    assert_eq!(
        (info.containers[1].limit, info.containers[1].request),
        (None, None)
    );
}

#[test]
fn applied_resources_win_over_spec() {
    let mut p = pod("web-1", "1Gi", "512Mi", 0);
    let status = p
        .status
        .as_mut()
        .unwrap()
        .container_statuses
        .as_mut()
        .unwrap();
    status[0].resources =
        Some(serde_json::from_value(json!({ "limits": { "memory": "2Gi" } })).unwrap());
    let info = pod_info(&p).unwrap();
    assert_eq!(info.containers[0].limit, Some(2 * GI));
    assert_eq!(info.containers[0].request, Some(512 << 20));
}

#[test]
fn bad_quantity_names_pod_container_and_field() {
    let e = pod_info(&pod("web-1", "1 gig", "512Mi", 0))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("pod web-1, container app: resources.limits.memory: "),
        "{e}"
    );
}

#[test]
fn cluster_quantities_in_every_spelling() {
    assert_eq!(cluster_quantity("22244Ki").unwrap(), 22244 * 1024);
    assert_eq!(cluster_quantity("380258472").unwrap(), 380258472);
    assert_eq!(cluster_quantity("262144k").unwrap(), 262144000);
    assert_eq!(cluster_quantity("0.4Gi").unwrap(), 429496730);
    assert_eq!(cluster_quantity("104857600500m").unwrap(), 104857601);
    assert!(cluster_quantity("12 mi").is_err());
}

#[test]
fn assemble_notes_rollout_and_skips_finished_pods() {
    let mut evicted = pod("web-0", "1Gi", "512Mi", 0);
    let st = evicted.status.as_mut().unwrap();
    st.phase = Some("Failed".into());
    st.reason = Some("Evicted".into());
    let pods = vec![
        pod("web-2", "512Mi", "512Mi", 0),
        pod("web-1", "1Gi", "512Mi", 1),
        evicted,
    ];
    let w = assemble(
        "deployment/web".into(),
        "staging",
        "app=web".into(),
        template(GI),
        pods,
        &[],
    )
    .unwrap();
    let names: Vec<&str> = w.pods.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["web-1", "web-2"]);
    assert_eq!(w.notes.len(), 2, "{:?}", w.notes);
    assert_eq!(
        w.notes[0],
        "pod web-0 is Failed (Evicted) and is not measured"
    );
    assert!(w.notes[1].starts_with(
        "pod web-2: container app has limit 512 MiB / request 512 MiB, the deployment/web template has limit 1 GiB / request 512 MiB"
    ));
}

#[test]
fn assemble_filters_containers_and_names_missing_ones() {
    let w = assemble(
        "deployment/web".into(),
        "staging",
        "app=web".into(),
        template(GI),
        vec![pod("web-1", "1Gi", "512Mi", 0)],
        &["app".to_string()],
    )
    .unwrap();
    assert_eq!(w.pods[0].containers.len(), 1);
    assert_eq!(w.pods[0].restart_counts.len(), 1);

    let e = assemble(
        "deployment/web".into(),
        "staging",
        "app=web".into(),
        template(GI),
        vec![pod("web-1", "1Gi", "512Mi", 0)],
        &["app".to_string(), "worker".to_string()],
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        "container `worker` in no pod of deployment/web in staging (its containers: app, sidecar); fix workload.kubernetes.containers"
    );
}

#[test]
fn assemble_without_pods() {
    let e = assemble(
        "deployment/web".into(),
        "staging",
        "app=web".into(),
        vec![],
        vec![],
        &[],
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        "deployment/web in staging has no pods (is it scaled to 0?)"
    );
    let e = assemble(
        "pods with selector app=web".into(),
        "staging",
        "app=web".into(),
        vec![],
        vec![],
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("no pods in staging match the selector app=web"),
        "{e}"
    );
}

#[test]
fn bare_selector_compares_pods_with_the_first() {
    let w = assemble(
        "pods with selector app=web".into(),
        "staging",
        "app=web".into(),
        vec![],
        vec![pod("a", "1Gi", "1Gi", 0), pod("b", "2Gi", "1Gi", 0)],
        &[],
    )
    .unwrap();
    assert_eq!(w.notes.len(), 1);
    assert!(w.notes[0].starts_with("pod b: container app has limit 2 GiB"));
}

#[test]
fn pods_regex_is_anchored_and_escaped() {
    assert_eq!(
        pods_regex(&["web-2".into(), "web-1".into(), "web-1".into()]),
        "^(?:web-1|web-2)$"
    );
    assert_eq!(pods_regex(&["a.b".into()]), "^(?:a[.]b)$");
    assert_eq!(pods_regex(&[]), "^$");
}

#[test]
fn kinds_for_vpa_target_refs() {
    assert_eq!(
        workload_kind_name(&WorkloadRef::StatefulSet("db".into())),
        Some(("StatefulSet", "db"))
    );
    assert_eq!(
        workload_kind_name(&WorkloadRef::Selector("a=b".into())),
        None
    );
}

fn pod_list(pods: Vec<Pod>) -> String {
    json!({ "kind": "PodList", "apiVersion": "v1", "metadata": { "resourceVersion": "1" }, "items": pods })
        .to_string()
}

fn deployment() -> String {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": "web", "namespace": "staging" },
        "spec": {
            "selector": { "matchLabels": { "app": "web" } },
            "template": {
                "metadata": { "labels": { "app": "web" } },
                "spec": { "containers": [ { "name": "app", "image": "web:1",
                    "resources": { "limits": { "memory": "1Gi" }, "requests": { "memory": "512Mi" } } } ] }
            }
        }
    })
    .to_string()
}

fn k8s_spec(workload: WorkloadRef) -> KubernetesSpec {
    KubernetesSpec {
        namespace: "staging".into(),
        workload,
        containers: vec!["app".into()],
    }
}

#[tokio::test]
async fn resolves_a_deployment_through_the_api() {
    use fake_api::route;
    let api = fake_api::start(vec![
        route(
            "/apis/apps/v1/namespaces/staging/deployments/web",
            200,
            deployment(),
        ),
        route(
            "/api/v1/namespaces/staging/pods",
            200,
            pod_list(vec![pod("web-1", "1Gi", "512Mi", 0)]),
        ),
    ])
    .await;
    let w = resolve(
        &api.client,
        &k8s_spec(WorkloadRef::Deployment("web".into())),
    )
    .await
    .unwrap();
    assert_eq!(
        (w.description.as_str(), w.selector.as_str()),
        ("deployment/web", "app=web")
    );
    assert_eq!(w.template, template(GI));
    assert_eq!(w.pods.len(), 1);
    assert!(w.notes.is_empty(), "{:?}", w.notes);
    let reqs = api.requests.lock().unwrap();
    assert_eq!(
        reqs[0],
        "GET /apis/apps/v1/namespaces/staging/deployments/web"
    );
    assert!(
        reqs[1].starts_with("GET /api/v1/namespaces/staging/pods?"),
        "{}",
        reqs[1]
    );
    assert!(reqs[1].contains("labelSelector=app%3Dweb"), "{}", reqs[1]);
}

#[tokio::test]
async fn api_failures_name_the_workload_or_the_verb() {
    use fake_api::{route, status};
    let api = fake_api::start(vec![route(
        "/api/v1/namespaces/staging/pods",
        403,
        status(
            403,
            "Forbidden",
            "pods is forbidden: User \"ci\" cannot list resource \"pods\"",
        ),
    )])
    .await;
    let e = resolve(
        &api.client,
        &k8s_spec(WorkloadRef::StatefulSet("db".into())),
    )
    .await
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "statefulset/db not found in namespace `staging`: check the name in the scenario and --namespace"
    );
    let e = resolve(
        &api.client,
        &k8s_spec(WorkloadRef::Selector("app=web".into())),
    )
    .await
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("RBAC forbids `list` on `pods` in namespace `staging`"),
        "{e}"
    );
}
