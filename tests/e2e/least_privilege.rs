//! Least privilege, end to end: the simulated staging cluster enforces the shipped
//! `ci-templates/kubernetes/rbac.yaml` like kube-apiserver's RBAC (a token bound to that Role
//! gets 403 for anything else, checked with the real kubectl), the real `oomgate` binary checks
//! and runs a deployment with a VPA using exactly that Role, its requests are exactly what the
//! Role grants, and every variant of the Role with one rule — or one verb or resource of a
//! rule — removed makes oomgate stop with an RBAC error naming the verb, the resource and the
//! rule to add.

use crate::support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::support::cluster::rbac::{parse_manifest, request_info};
use crate::support::cluster::testkit::{kubectl_available, output_text, run_kubectl};
use crate::support::cluster::{
    require_cgroups, ClusterConfig, ContainerTemplate, PodTemplate, SimCluster, MI,
};
use crate::support::{run_bounded, text};

const RBAC_YAML: &str = include_str!("../../ci-templates/kubernetes/rbac.yaml");
const USER: &str = "system:serviceaccount:staging:oomgate";

/// A scenario for `workload` (e.g. `deployment: web`) with the metrics-api source and, with
/// `vpa`, `policy.vpa` (auto); `url` is the load target.
fn scenario(cluster: &SimCluster, workload: &str, url: &str, vpa: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let vpa = if vpa {
        "\n  vpa: { name: auto, tolerance: 50% }"
    } else {
        ""
    };
    let text = format!(
        r#"name: least-privilege
target: {{ url: "{url}" }}
load:
  stages: [{{ duration: 2s, users: 2 }}, {{ duration: 6s, users: 2 }}]
  requests:
    - {{ name: work, path: /api/work, expect_status: 200 }}
  think_time: 10ms..30ms
workload:
  kubernetes:
    namespace: {ns}
    {workload}
    containers: [app]
memory:
  source: metrics-api
  interval: 1s
policy:
  headroom: 20%{vpa}
"#,
        ns = cluster.namespace(),
    );
    std::fs::write(dir.path().join("scenario.yaml"), text).unwrap();
    dir
}

fn scenario_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("scenario.yaml")
}

fn template() -> PodTemplate {
    PodTemplate::app(
        ContainerTemplate::app(256 * MI)
            .request(32 * MI)
            .env("DEMO_BASELINE", "24Mi"),
    )
}

/// Deployment `web` (2 replicas) with a confident VPA targeting it; waits for metrics.
fn web_with_vpa(cluster: &SimCluster) {
    cluster.add_deployment("web", 2, template());
    cluster.set_vpa(serde_json::json!({
        "metadata": { "name": "web" },
        "spec": { "targetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": "web" },
                  "updatePolicy": { "updateMode": "Off" } },
        "status": {
            "conditions": [
                { "type": "RecommendationProvided", "status": "True", "lastTransitionTime": "2026-11-20T10:00:00Z" },
                { "type": "LowConfidence", "status": "False", "lastTransitionTime": "2026-11-20T10:00:00Z" }
            ],
            "recommendation": { "containerRecommendations": [ {
                "containerName": "app",
                "lowerBound": { "cpu": "10m", "memory": "24Mi" },
                "target": { "cpu": "11m", "memory": "32Mi" },
                "uncappedTarget": { "cpu": "11m", "memory": "32Mi" },
                "upperBound": { "cpu": "12m", "memory": "64Mi" }
            } ] }
        }
    }));
    // metrics-server lists a pod only after its first scrapes.
    std::thread::sleep(Duration::from_millis(2500));
}

fn check(dir: &tempfile::TempDir, kubeconfig: &Path) -> Output {
    run_bounded(
        Command::new(support::oomgate()).args([
            "check",
            scenario_path(dir).to_str().unwrap(),
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ]),
        Duration::from_secs(30),
    )
}

fn run(dir: &tempfile::TempDir, kubeconfig: &Path) -> (Output, serde_json::Value) {
    let out = dir.path().join("report");
    let o = run_bounded(
        Command::new(support::oomgate()).args([
            "run",
            scenario_path(dir).to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
        ]),
        Duration::from_secs(120),
    );
    let report = std::fs::read_to_string(out.join("report.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    (o, report)
}

/// (verb, API group, resource) of every request made with a Role token since decision `from`;
/// panics on a denied one.
fn requests_since(cluster: &SimCluster, from: usize) -> BTreeSet<Pair> {
    let decisions = cluster.rbac_decisions();
    let mut seen = BTreeSet::new();
    for d in &decisions[from..] {
        let a = &d.attributes;
        assert!(d.allowed, "denied: {}", a.describe());
        if a.resource_request {
            assert_eq!(a.namespace, "staging", "{}", a.describe());
            seen.insert((
                a.verb.clone(),
                a.api_group.clone(),
                a.resource_with_subresource(),
            ));
        } else {
            seen.insert((a.verb.clone(), "path".to_string(), a.path.clone()));
        }
    }
    seen
}

fn set(items: &[(&str, &str, &str)]) -> BTreeSet<Pair> {
    items
        .iter()
        .map(|(v, g, r)| (v.to_string(), g.to_string(), r.to_string()))
        .collect()
}

/// Every (verb, group, resource) the shipped Role grants.
fn granted_pairs() -> BTreeSet<Pair> {
    let grant = parse_manifest(RBAC_YAML, "staging").unwrap();
    let mut pairs = BTreeSet::new();
    for rule in &grant.rules {
        for g in rule.api_groups.as_deref().unwrap_or_default() {
            for r in rule.resources.as_deref().unwrap_or_default() {
                for v in &rule.verbs {
                    pairs.insert((v.clone(), g.clone(), r.clone()));
                }
            }
        }
    }
    pairs
}

#[test]
fn the_shipped_role_is_enough_for_check_and_run_and_grants_only_what_they_use() {
    if !require_cgroups("the_shipped_role_is_enough_for_check_and_run") {
        return;
    }
    let cluster = SimCluster::start(ClusterConfig::default());
    web_with_vpa(&cluster);
    let token = cluster.issue_token_for_role(RBAC_YAML);
    let kubeconfig = cluster.kubeconfig_for_token(&token);
    let dir = scenario(
        &cluster,
        "deployment: web",
        &cluster.service_url("web"),
        true,
    );

    let c = check(&dir, &kubeconfig);
    assert_eq!(c.status.code(), Some(0), "{}", text(&c));
    let out = String::from_utf8_lossy(&c.stdout);
    assert!(out.contains("VPA web: recommendation present"), "{out}");
    assert!(out.contains("live sample"), "{out}");
    let check_requests = requests_since(&cluster, 0);
    assert_eq!(
        check_requests,
        set(&[
            ("get", "path", "/version"),
            ("get", "apps", "deployments"),
            ("list", "", "pods"),
            ("watch", "", "pods"),
            ("list", "metrics.k8s.io", "pods"),
            ("list", "autoscaling.k8s.io", "verticalpodautoscalers"),
        ]),
        "oomgate check's requests"
    );

    let mark = cluster.rbac_decisions().len();
    let (o, r) = run(&dir, &kubeconfig);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(r["verdict"], "pass", "{r:#}");
    assert_eq!(r["vpa"]["state"], "recommendation", "{r:#}");
    let run_requests = requests_since(&cluster, mark);
    assert_eq!(
        run_requests,
        set(&[
            ("get", "apps", "deployments"),
            ("list", "", "pods"),
            ("watch", "", "pods"),
            ("list", "metrics.k8s.io", "pods"),
            ("list", "autoscaling.k8s.io", "verticalpodautoscalers"),
        ]),
        "oomgate run's requests"
    );

    // The Role grants exactly that, plus `get` on the other workload kinds oomgate gates.
    let used: BTreeSet<_> = check_requests
        .union(&run_requests)
        .filter(|(_, g, _)| g != "path")
        .cloned()
        .collect();
    let other_kinds = set(&[
        ("get", "apps", "statefulsets"),
        ("get", "apps", "daemonsets"),
    ]);
    let expected: BTreeSet<_> = used.union(&other_kinds).cloned().collect();
    assert_eq!(granted_pairs(), expected);
}

/// (verb, API group, resource).
type Pair = (String, String, String);

/// A variant of the Role: its name, the manifest, and the pairs it no longer grants.
type Variant = (String, String, Vec<Pair>);

/// The Role variants: every rule removed, then every verb and every resource of a rule that
/// has more than one removed. Each comes with the (verb, group, resource) it no longer grants.
fn variants() -> Vec<Variant> {
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(RBAC_YAML).unwrap();
    let role = docs.iter().position(|d| d["kind"] == "Role").unwrap();
    let rules = docs[role]["rules"].as_array().unwrap().clone();
    let render = |rules: Vec<serde_json::Value>| {
        let mut docs = docs.clone();
        docs[role]["rules"] = serde_json::Value::Array(rules);
        docs.iter()
            .map(|d| serde_saphyr::to_string(d).unwrap())
            .collect::<Vec<_>>()
            .join("---\n")
    };
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    };
    let mut out = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let groups = strings(&rule["apiGroups"]);
        let resources = strings(&rule["resources"]);
        let verbs = strings(&rule["verbs"]);
        let lost = |verbs: &[String], resources: &[String]| {
            let mut l = Vec::new();
            for g in &groups {
                for r in resources {
                    for v in verbs {
                        l.push((v.clone(), g.clone(), r.clone()));
                    }
                }
            }
            l
        };
        let mut without = rules.clone();
        without.remove(i);
        out.push((
            format!("rule {i} removed"),
            render(without),
            lost(&verbs, &resources),
        ));
        for field in ["verbs", "resources"] {
            let values = if field == "verbs" { &verbs } else { &resources };
            if values.len() < 2 {
                continue;
            }
            for (j, value) in values.iter().enumerate() {
                let mut rules = rules.clone();
                let seq = rules[i][field].as_array_mut().unwrap();
                seq.remove(j);
                let l = if field == "verbs" {
                    lost(std::slice::from_ref(value), &resources)
                } else {
                    lost(&verbs, std::slice::from_ref(value))
                };
                out.push((
                    format!("rule {i} without {field} {value}"),
                    render(rules),
                    l,
                ));
            }
        }
    }
    out
}

/// `RBAC forbids `VERB` on `RESOURCE[.GROUP]` … rule {apiGroups: ["G"], resources: ["R"], verbs:
/// ["V"]}`: oomgate's message for a denied request.
fn assert_rbac_error(output: &str, (verb, group, resource): &Pair) {
    let qualified = if group.is_empty() {
        resource.clone()
    } else {
        format!("{resource}.{group}")
    };
    let denied = format!(
        "RBAC forbids `{verb}` on `{qualified}` in namespace `staging` for user \"{USER}\""
    );
    let rule = format!(
        "add the rule {{apiGroups: [\"{group}\"], resources: [\"{resource}\"], verbs: [\"{verb}\"]}} to the Role"
    );
    assert!(
        output.contains(&denied) && output.contains(&rule),
        "expected `{denied}` and `{rule}` in:\n{output}"
    );
}

#[test]
fn removing_any_rule_verb_or_resource_of_the_role_stops_oomgate_with_an_rbac_error() {
    if !require_cgroups("removing_any_rule_of_the_role") {
        return;
    }
    let cluster = SimCluster::start(ClusterConfig::default());
    web_with_vpa(&cluster);
    cluster.add_statefulset("db", 1, template());
    std::thread::sleep(Duration::from_millis(1500));
    let web = scenario(
        &cluster,
        "deployment: web",
        &cluster.service_url("web"),
        true,
    );
    let db = scenario(
        &cluster,
        "statefulset: db",
        &cluster.service_url("db"),
        false,
    );
    let agent = scenario(
        &cluster,
        "daemonset: agent",
        &cluster.service_url("web"),
        false,
    );

    // With the whole Role: the deployment and the stateful set pass, the daemon set (the rig
    // has none) is not found, which proves the `get` was allowed.
    let full = cluster.kubeconfig_for_token(&cluster.issue_token_for_role(RBAC_YAML));
    for dir in [&web, &db] {
        let c = check(dir, &full);
        assert_eq!(c.status.code(), Some(0), "{}", text(&c));
    }
    let c = check(&agent, &full);
    assert_eq!(c.status.code(), Some(2), "{}", text(&c));
    assert!(
        text(&c).contains("daemonset/agent not found in namespace `staging`"),
        "{}",
        text(&c)
    );

    let variants = variants();
    // 4 rules, pods' 2 verbs, apps' 3 resources.
    assert_eq!(variants.len(), 9, "{variants:?}");
    let mut checked = BTreeSet::new();
    for (name, yaml, lost) in &variants {
        let kubeconfig = cluster.kubeconfig_for_token(&cluster.issue_token_for_role(yaml));
        // The first pair the variant loses is the first request of oomgate's it denies.
        let pair = &lost[0];
        let dir = match (pair.1.as_str(), pair.2.as_str()) {
            ("apps", "statefulsets") => &db,
            ("apps", "daemonsets") => &agent,
            _ => &web,
        };
        let c = check(dir, &kubeconfig);
        let all = text(&c);
        assert_eq!(c.status.code(), Some(2), "{name}: {all}");
        assert_rbac_error(&all, pair);
        checked.extend(lost.iter().cloned());
    }
    // Every pair the Role grants was shown to be needed by check.
    let expected = granted_pairs();
    assert_eq!(checked, expected);

    // `run` with the pods rule removed stops before any load with the same error (exit 2).
    let (_, no_pods, lost) = &variants[0];
    assert_eq!(lost[0], ("list".into(), "".into(), "pods".into()));
    let kubeconfig = cluster.kubeconfig_for_token(&cluster.issue_token_for_role(no_pods));
    let (o, _) = run(&web, &kubeconfig);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_rbac_error(&text(&o), &lost[0]);

    // `run` without `list` on VPAs, with policy.vpa set, stops before any load (exit 2).
    let (_, no_vpa, lost) = variants.last().unwrap();
    assert_eq!(lost[0].2, "verticalpodautoscalers");
    let kubeconfig = cluster.kubeconfig_for_token(&cluster.issue_token_for_role(no_vpa));
    let (o, _) = run(&web, &kubeconfig);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_rbac_error(&text(&o), &lost[0]);

    // `run` without `watch` on pods could not see restarts: it stops before any load (exit 2).
    let (_, no_watch, lost) = variants
        .iter()
        .find(|(name, _, _)| name.ends_with("without verbs watch"))
        .unwrap();
    let kubeconfig = cluster.kubeconfig_for_token(&cluster.issue_token_for_role(no_watch));
    let (o, _) = run(&web, &kubeconfig);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_rbac_error(&text(&o), &lost[0]);
}

#[test]
fn the_rig_authorizes_role_tokens_like_kube_apiserver() {
    // Request attributes as kube-apiserver's RequestInfoFactory derives them.
    let cases = [
        (
            "GET",
            "/api/v1/namespaces/staging/pods",
            None,
            "list  pods  staging ",
        ),
        (
            "GET",
            "/api/v1/namespaces/staging/pods",
            Some("watch=true&labelSelector=app%3Dweb"),
            "watch  pods  staging ",
        ),
        (
            "GET",
            "/api/v1/namespaces/staging/pods",
            Some("watch=false"),
            "list  pods  staging ",
        ),
        (
            "GET",
            "/api/v1/watch/namespaces/staging/pods",
            None,
            "watch  pods  staging ",
        ),
        (
            "GET",
            "/api/v1/namespaces/staging/pods/web-1",
            None,
            "get  pods  staging web-1",
        ),
        (
            "GET",
            "/api/v1/namespaces/staging/pods/web-1/log",
            None,
            "get  pods/log  staging web-1",
        ),
        (
            "DELETE",
            "/api/v1/namespaces/staging/pods/web-1",
            None,
            "delete  pods  staging web-1",
        ),
        (
            "DELETE",
            "/api/v1/namespaces/staging/pods",
            None,
            "deletecollection  pods  staging ",
        ),
        (
            "POST",
            "/api/v1/namespaces/staging/pods",
            None,
            "create  pods  staging ",
        ),
        (
            "PATCH",
            "/apis/apps/v1/namespaces/staging/deployments/web",
            None,
            "patch apps deployments  staging web",
        ),
        (
            "GET",
            "/apis/apps/v1/namespaces/staging/deployments",
            Some("fieldSelector=metadata.name%3Dweb"),
            "list apps deployments  staging web",
        ),
        (
            "GET",
            "/apis/metrics.k8s.io/v1beta1/namespaces/staging/pods",
            None,
            "list metrics.k8s.io pods  staging ",
        ),
        (
            "GET",
            "/apis/metrics.k8s.io/v1beta1/nodes",
            None,
            "list metrics.k8s.io nodes   ",
        ),
        ("GET", "/api/v1/pods", None, "list  pods   "),
        (
            "GET",
            "/api/v1/namespaces/staging",
            None,
            "get  namespaces  staging staging",
        ),
        ("GET", "/api/v1/namespaces", None, "list  namespaces   "),
    ];
    for (method, path, query, want) in cases {
        let a = request_info(method, path, query);
        assert!(a.resource_request, "{path}");
        let got = format!(
            "{} {} {} {} {} {}",
            a.verb,
            a.api_group,
            a.resource_with_subresource(),
            "",
            a.namespace,
            a.name
        );
        assert_eq!(
            got.replace("  ", " "),
            want.replace("  ", " "),
            "{method} {path}"
        );
    }
    for path in [
        "/api",
        "/api/v1",
        "/apis",
        "/apis/apps/v1",
        "/version",
        "/openapi/v2",
        "/metrics",
    ] {
        assert!(!request_info("GET", path, None).resource_request, "{path}");
    }

    // The shipped manifest: one ServiceAccount bound to the Role in the namespace it is applied in.
    let grant = parse_manifest(RBAC_YAML, "staging").unwrap();
    assert_eq!(grant.user, USER);
    assert_eq!(grant.role, "oomgate-reader");
    let allows = |method: &str, path: &str, query: Option<&str>| {
        grant.allows(&request_info(method, path, query))
    };
    assert!(allows("GET", "/api/v1/namespaces/staging/pods", None));
    assert!(allows(
        "GET",
        "/api/v1/namespaces/staging/pods",
        Some("watch=1")
    ));
    assert!(!allows(
        "GET",
        "/api/v1/namespaces/staging/pods/web-1",
        None
    ));
    assert!(!allows("GET", "/api/v1/namespaces/prod/pods", None));
    assert!(!allows("GET", "/api/v1/pods", None));
    assert!(allows(
        "GET",
        "/apis/apps/v1/namespaces/staging/deployments/web",
        None
    ));
    assert!(!allows(
        "GET",
        "/apis/apps/v1/namespaces/staging/replicasets/web-1",
        None
    ));
    assert!(!allows(
        "GET",
        "/apis/apps/v1/namespaces/staging/deployments",
        Some("watch=true")
    ));
    assert!(allows("GET", "/version", None) && allows("GET", "/apis/apps/v1", None));
    assert!(!allows("GET", "/metrics", None));
    assert!(parse_manifest("kind: Role\nmetadata: { name: x }\n", "staging").is_err());

    // The real kubectl against the rig, with a kubeconfig holding the Role-bound token.
    if !kubectl_available("the_rig_authorizes_role_tokens_like_kube_apiserver") {
        return;
    }
    let cluster = SimCluster::start(ClusterConfig::default());
    let token = cluster.issue_token_for_role(RBAC_YAML);
    let kubeconfig = cluster.kubeconfig_for_token(&token);
    let cache = cluster.work_dir().join("role-kube-cache");
    let kubectl = |args: &[&str]| run_kubectl(&kubeconfig, &cache, args);
    let ok = |args: &[&str]| {
        let o = kubectl(args);
        assert!(o.status.success(), "kubectl {args:?}: {}", output_text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let denied = |args: &[&str], why: &str| {
        let o = kubectl(args);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(
            !o.status.success(),
            "kubectl {args:?} succeeded: {}",
            output_text(&o)
        );
        assert!(
            err.contains("Forbidden") && err.contains(why),
            "kubectl {args:?}: expected Forbidden and `{why}`:\n{}",
            output_text(&o)
        );
    };
    ok(&["get", "pods"]);
    ok(&["get", "--raw", "/version"]);
    ok(&[
        "get",
        "--raw",
        "/apis/metrics.k8s.io/v1beta1/namespaces/staging/pods",
    ]);
    ok(&[
        "get",
        "--raw",
        "/apis/autoscaling.k8s.io/v1/namespaces/staging/verticalpodautoscalers",
    ]);
    // `get` on a deployment is allowed: the answer is the rig's NotFound, not a 403.
    let o = kubectl(&["get", "deployment", "web"]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("NotFound"),
        "{}",
        output_text(&o)
    );
    denied(
        &["get", "--raw", "/api/v1/namespaces/staging/secrets"],
        &format!("secrets is forbidden: User \"{USER}\" cannot list resource \"secrets\" in API group \"\" in the namespace \"staging\""),
    );
    denied(
        &["delete", "pod", "web-1", "--wait=false"],
        &format!("pods \"web-1\" is forbidden: User \"{USER}\" cannot delete resource \"pods\" in API group \"\" in the namespace \"staging\""),
    );
    denied(&["get", "pods", "-n", "prod"], "in the namespace \"prod\"");
    denied(
        &["get", "pods", "-A"],
        "cannot list resource \"pods\" in API group \"\" at the cluster scope",
    );
    denied(
        &["get", "pod", "web-1"],
        "cannot get resource \"pods\" in API group \"\"",
    );
    denied(
        &["get", "deployments"],
        "cannot list resource \"deployments\" in API group \"apps\"",
    );
    denied(
        &["get", "replicasets"],
        "cannot list resource \"replicasets\" in API group \"apps\"",
    );
    denied(
        &["get", "--raw", "/api/v1/namespaces/staging/pods/web-1/log"],
        "cannot get resource \"pods/log\" in API group \"\"",
    );
    denied(
        &["get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes"],
        "cannot list resource \"nodes\" in API group \"metrics.k8s.io\" at the cluster scope",
    );
    denied(
        &["get", "--raw", "/metrics"],
        &format!("forbidden: User \"{USER}\" cannot get path \"/metrics\""),
    );
    // The status body is the real API server's.
    let o = kubectl(&["get", "--raw", "/api/v1/namespaces/staging/secrets", "-v=8"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("\"reason\": \"Forbidden\"") && err.contains("\"kind\": \"secrets\""),
        "{err}"
    );

    // `forbid` still applies on top of the Role; the admin token keeps full access.
    cluster.forbid("list", "pods");
    denied(&["get", "pods"], "pods is forbidden");
    cluster.allow("list", "pods");
    ok(&["get", "pods"]);
    let o = cluster.kubectl(&["get", "--raw", "/api/v1/namespaces/staging/secrets"]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("NotFound"),
        "{}",
        output_text(&o)
    );
    cluster.kubectl_ok(&["get", "pods", "-A"]);
    // A token nobody issued is not authenticated.
    let stranger = cluster.kubeconfig_for_token("sim-role-not-issued-0000000000");
    let o = run_kubectl(&stranger, &cache, &["get", "pods"]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Unauthorized"),
        "{}",
        output_text(&o)
    );
}
