//! Reads the workload's VerticalPodAutoscaler (`autoscaling.k8s.io/v1`): the one named in
//! `policy.vpa.name`, or the one whose `spec.targetRef` names the workload, and turns its
//! `status.recommendation` memory figures (any quantity spelling) and its `LowConfidence`
//! condition into a [`VpaStatus`]. What each failure becomes follows the rule that a configured
//! check that could not be made is never a pass:
//! - the CRD not installed, or (auto) no VPA targeting the workload: `Unavailable`, a warning
//!   (there is nothing to compare with);
//! - the list failing (5xx, 429, a dropped connection, a timeout) or an answer that cannot be
//!   read (a bad quantity): `ReadFailed`, which makes the VPA rules inconclusive;
//! - `policy.vpa.name` naming a VPA that does not exist, or missing RBAC rights (401/403): an
//!   error from [`read_vpa_checked`] ([`VpaError`]), for the caller to stop with (exit 2) before
//!   any load; [`read_vpa`] folds those into `Unavailable`.
//!
//! It lists VPAs through a `kube::Client` as `DynamicObject`s.

use std::time::Duration;

use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use serde_json::Value;

use crate::cluster::{classify, classify_status, status_code, ClusterError};
use crate::model::{VpaContainer, VpaStatus};
use crate::workload::kubernetes::cluster_quantity;

const LIST_TIMEOUT: Duration = Duration::from_secs(10);

/// The VerticalPodAutoscaler resource of `autoscaling.k8s.io/v1`.
pub fn vpa_resource() -> ApiResource {
    ApiResource {
        group: "autoscaling.k8s.io".into(),
        version: "v1".into(),
        api_version: "autoscaling.k8s.io/v1".into(),
        kind: "VerticalPodAutoscaler".into(),
        plural: "verticalpodautoscalers".into(),
    }
}

/// The VPA named `name`, or (`None`) the one targeting `workload_kind`/`workload_name`
/// (e.g. `Deployment`/`web`), as a [`VpaStatus`]; denied access is `Unavailable` too (see
/// [`read_vpa_checked`], which a gate should use).
pub async fn read_vpa(
    client: &kube::Client,
    namespace: &str,
    name: Option<&str>,
    workload_kind: &str,
    workload_name: &str,
) -> VpaStatus {
    read_vpa_checked(client, namespace, name, workload_kind, workload_name)
        .await
        .unwrap_or_else(|e| match e {
            VpaError::Access(e) => unavailable(e.to_string()),
            VpaError::NoSuchVpa(reason) => unavailable(reason),
        })
}

/// Why the VPA the policy asks for cannot be compared with at all: the gate stops (exit 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VpaError {
    /// RBAC or the credentials refused the list.
    #[error(transparent)]
    Access(#[from] ClusterError),
    /// `policy.vpa.name` names a VPA the namespace does not have.
    #[error("{0}")]
    NoSuchVpa(String),
}

/// [`read_vpa`], except that the API server refusing the credentials (401), RBAC forbidding
/// the list (403: `RBAC forbids `list` on `verticalpodautoscalers.autoscaling.k8s.io` in
/// namespace `staging` …`) and a `name` no VPA has are errors.
pub async fn read_vpa_checked(
    client: &kube::Client,
    namespace: &str,
    name: Option<&str>,
    workload_kind: &str,
    workload_name: &str,
) -> Result<VpaStatus, VpaError> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &vpa_resource());
    let list = match tokio::time::timeout(LIST_TIMEOUT, api.list(&ListParams::default())).await {
        Err(_) => {
            return Ok(read_failed(format!(
            "listing VerticalPodAutoscalers in namespace `{namespace}` got no answer within {} s",
            LIST_TIMEOUT.as_secs()
        )))
        }
        Ok(Err(e)) if matches!(status_code(&e), Some(401 | 403)) => {
            return Err(classify(e, "list", VPA_RESOURCE, namespace).into())
        }
        Ok(Err(e)) => return Ok(list_error(e, namespace)),
        Ok(Ok(list)) => list,
    };
    let items: Vec<Value> = list
        .items
        .iter()
        .filter_map(|o| serde_json::to_value(o).ok())
        .collect();
    match pick_vpa(&items, namespace, name, workload_kind, workload_name) {
        Ok(obj) => Ok(parse_vpa(obj)),
        Err(reason) if name.is_some() => Err(VpaError::NoSuchVpa(reason)),
        Err(reason) => Ok(unavailable(reason)),
    }
}

fn unavailable(reason: String) -> VpaStatus {
    VpaStatus::Unavailable { reason }
}

fn read_failed(reason: String) -> VpaStatus {
    VpaStatus::ReadFailed { reason }
}

const VPA_RESOURCE: &str = "verticalpodautoscalers.autoscaling.k8s.io";

fn list_error(err: kube::Error, namespace: &str) -> VpaStatus {
    let resource = VPA_RESOURCE;
    match err {
        kube::Error::Api(status) if status.code == 404 => unavailable(
            "the VerticalPodAutoscaler CRD (autoscaling.k8s.io/v1) is not installed in this cluster"
                .into(),
        ),
        kube::Error::Api(status) => read_failed(
            classify_status(status.code, &status.message, "list", resource, namespace).to_string(),
        ),
        other => read_failed(classify(other, "list", resource, namespace).to_string()),
    }
}

/// Chooses the VPA: by name, or the one whose `spec.targetRef` is `kind`/`name` (kind compared
/// case-insensitively). The error is the reason to report.
pub fn pick_vpa<'a>(
    items: &'a [Value],
    namespace: &str,
    name: Option<&str>,
    workload_kind: &str,
    workload_name: &str,
) -> Result<&'a Value, String> {
    let found = || {
        if items.is_empty() {
            "there are none".to_string()
        } else {
            let all: Vec<String> = items
                .iter()
                .map(|v| {
                    let target = &v["spec"]["targetRef"];
                    format!(
                        "{} → {}/{}",
                        v["metadata"]["name"].as_str().unwrap_or("?"),
                        target["kind"].as_str().unwrap_or("?"),
                        target["name"].as_str().unwrap_or("?")
                    )
                })
                .collect();
            format!("found: {}", all.join(", "))
        }
    };
    let hit = match name {
        Some(n) => items
            .iter()
            .find(|v| v["metadata"]["name"].as_str() == Some(n))
            .ok_or_else(|| {
                format!(
                    "no VerticalPodAutoscaler named `{n}` in namespace `{namespace}` ({}); fix policy.vpa.name or use auto",
                    found()
                )
            })?,
        None => {
            let mut matching: Vec<&Value> = items
                .iter()
                .filter(|v| {
                    let t = &v["spec"]["targetRef"];
                    t["kind"]
                        .as_str()
                        .is_some_and(|k| k.eq_ignore_ascii_case(workload_kind))
                        && t["name"].as_str() == Some(workload_name)
                })
                .collect();
            matching.sort_by_key(|v| v["metadata"]["name"].as_str().unwrap_or("").to_string());
            matching.into_iter().next().ok_or_else(|| {
                format!(
                    "no VerticalPodAutoscaler in namespace `{namespace}` targets {workload_kind}/{workload_name} ({}); create one, or name it with policy.vpa.name",
                    found()
                )
            })?
        }
    };
    Ok(hit)
}

/// A VPA object (JSON) → its status for the judge.
pub fn parse_vpa(obj: &Value) -> VpaStatus {
    let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
    let status = &obj["status"];
    let low_confidence = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "LowConfidence" && c["status"] == "True");
    let recs = status["recommendation"]["containerRecommendations"]
        .as_array()
        .filter(|r| !r.is_empty());
    let Some(recs) = recs else {
        return VpaStatus::NoRecommendation { name };
    };
    let mut containers = Vec::new();
    for (i, rec) in recs.iter().enumerate() {
        let container = rec["containerName"].as_str().unwrap_or("").to_string();
        let memory = |field: &str| -> Result<Option<u64>, String> {
            let v = &rec[field]["memory"];
            let text = match v {
                Value::Null => return Ok(None),
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                other => other.to_string(),
            };
            cluster_quantity(&text).map(Some).map_err(|e| {
                format!(
                    "VerticalPodAutoscaler {name}: status.recommendation.containerRecommendations[{i}].{field}.memory: {e}"
                )
            })
        };
        let read = || -> Result<VpaContainer, String> {
            Ok(VpaContainer {
                container: container.clone(),
                target: memory("target")?,
                lower_bound: memory("lowerBound")?,
                upper_bound: memory("upperBound")?,
                uncapped_target: memory("uncappedTarget")?,
            })
        };
        match read() {
            Ok(c) => containers.push(c),
            Err(reason) => return VpaStatus::ReadFailed { reason },
        }
    }
    VpaStatus::Recommendation {
        name,
        low_confidence,
        containers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vpa(name: &str, kind: &str, target: &str, status: Value) -> Value {
        json!({
            "apiVersion": "autoscaling.k8s.io/v1", "kind": "VerticalPodAutoscaler",
            "metadata": { "name": name, "namespace": "staging" },
            "spec": { "targetRef": { "apiVersion": "apps/v1", "kind": kind, "name": target },
                      "updatePolicy": { "updateMode": "Off" } },
            "status": status
        })
    }

    fn recommended(low: &str, memory: [&str; 4]) -> Value {
        json!({
            "conditions": [
                { "type": "RecommendationProvided", "status": "True", "lastTransitionTime": "2026-11-20T10:00:00Z" },
                { "type": "LowConfidence", "status": low, "lastTransitionTime": "2026-11-20T10:00:00Z" }
            ],
            "recommendation": { "containerRecommendations": [ {
                "containerName": "basic-demo",
                "lowerBound": { "cpu": "10m", "memory": memory[0] },
                "target": { "cpu": "11m", "memory": memory[1] },
                "uncappedTarget": { "cpu": "11m", "memory": memory[2] },
                "upperBound": { "cpu": "12m", "memory": memory[3] }
            } ] }
        })
    }

    #[test]
    fn reads_recommendations_in_every_spelling() {
        let obj = vpa(
            "web-vpa",
            "Deployment",
            "web",
            recommended("False", ["26214400", "262144k", "20Mi", "380258472"]),
        );
        assert_eq!(
            parse_vpa(&obj),
            VpaStatus::Recommendation {
                name: "web-vpa".into(),
                low_confidence: false,
                containers: vec![VpaContainer {
                    container: "basic-demo".into(),
                    target: Some(262_144_000),
                    lower_bound: Some(26_214_400),
                    upper_bound: Some(380_258_472),
                    uncapped_target: Some(20 << 20),
                }],
            }
        );
    }

    #[test]
    fn low_confidence_and_missing_recommendation() {
        let obj = vpa("v", "Deployment", "web", recommended("True", ["1Mi"; 4]));
        assert!(matches!(
            parse_vpa(&obj),
            VpaStatus::Recommendation {
                low_confidence: true,
                ..
            }
        ));
        let fresh = vpa("v", "Deployment", "web", json!({ "conditions": [] }));
        assert_eq!(
            parse_vpa(&fresh),
            VpaStatus::NoRecommendation { name: "v".into() }
        );
        let no_status = vpa("v", "Deployment", "web", Value::Null);
        assert_eq!(
            parse_vpa(&no_status),
            VpaStatus::NoRecommendation { name: "v".into() }
        );
    }

    #[test]
    fn bad_quantity_is_a_failed_read_with_the_field() {
        let obj = vpa(
            "v",
            "Deployment",
            "web",
            recommended("False", ["1Mi", "lots", "1Mi", "1Mi"]),
        );
        let VpaStatus::ReadFailed { reason } = parse_vpa(&obj) else {
            panic!("expected a failed read")
        };
        assert!(
            reason.starts_with("VerticalPodAutoscaler v: status.recommendation.containerRecommendations[0].target.memory: "),
            "{reason}"
        );
    }

    #[test]
    fn picks_by_target_or_name() {
        let items = vec![
            vpa("db-vpa", "StatefulSet", "db", Value::Null),
            vpa("web-vpa", "deployment", "web", Value::Null),
        ];
        let hit = pick_vpa(&items, "staging", None, "Deployment", "web").unwrap();
        assert_eq!(hit["metadata"]["name"], "web-vpa");
        let hit = pick_vpa(&items, "staging", Some("db-vpa"), "Deployment", "web").unwrap();
        assert_eq!(hit["metadata"]["name"], "db-vpa");
        let e = pick_vpa(&items, "staging", None, "Deployment", "api").unwrap_err();
        assert_eq!(
            e,
            "no VerticalPodAutoscaler in namespace `staging` targets Deployment/api (found: db-vpa → StatefulSet/db, web-vpa → deployment/web); create one, or name it with policy.vpa.name"
        );
        let e = pick_vpa(&[], "staging", Some("x"), "Deployment", "web").unwrap_err();
        assert!(e.contains("no VerticalPodAutoscaler named `x`") && e.contains("there are none"));
    }

    #[tokio::test]
    async fn reads_the_vpa_through_the_api() {
        use crate::workload::kubernetes::fake_api::{self, route};
        let list = json!({
            "apiVersion": "autoscaling.k8s.io/v1", "kind": "VerticalPodAutoscalerList", "metadata": {},
            "items": [ vpa("web-vpa", "Deployment", "web", recommended("True", ["20Mi"; 4])) ]
        });
        let api = fake_api::start(vec![
            route(
                "/apis/autoscaling.k8s.io/v1/namespaces/staging/verticalpodautoscalers",
                200,
                list.to_string(),
            ),
            route(
                "/apis/autoscaling.k8s.io/v1/namespaces/denied/verticalpodautoscalers",
                403,
                fake_api::status(
                    403,
                    "Forbidden",
                    "verticalpodautoscalers.autoscaling.k8s.io is forbidden: User \"ci\" cannot \
                     list resource \"verticalpodautoscalers\" in API group \"autoscaling.k8s.io\" \
                     in the namespace \"denied\"",
                ),
            ),
        ])
        .await;
        let got = read_vpa(&api.client, "staging", None, "Deployment", "web").await;
        assert!(
            matches!(&got, VpaStatus::Recommendation { name, low_confidence: true, containers }
                if name == "web-vpa" && containers[0].target == Some(20 << 20)),
            "{got:?}"
        );
        let denied = read_vpa_checked(&api.client, "denied", None, "Deployment", "web")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            denied.starts_with(
                "RBAC forbids `list` on `verticalpodautoscalers.autoscaling.k8s.io` in namespace \
                 `denied` for user \"ci\": add the rule {apiGroups: [\"autoscaling.k8s.io\"], \
                 resources: [\"verticalpodautoscalers\"], verbs: [\"list\"]}"
            ),
            "{denied}"
        );
        let lenient = read_vpa(&api.client, "denied", None, "Deployment", "web").await;
        assert!(
            matches!(&lenient, VpaStatus::Unavailable { reason } if reason == &denied),
            "{lenient:?}"
        );
        let got = read_vpa(&api.client, "other", None, "Deployment", "web").await;
        assert_eq!(
            got,
            VpaStatus::Unavailable {
                reason: "the VerticalPodAutoscaler CRD (autoscaling.k8s.io/v1) is not installed in this cluster".into()
            }
        );
        // A name no VPA has is an error for the gate to stop with; auto finding none is not.
        let named = read_vpa_checked(&api.client, "staging", Some("nope"), "Deployment", "web")
            .await
            .unwrap_err();
        assert!(
            matches!(&named, VpaError::NoSuchVpa(m) if m.contains("no VerticalPodAutoscaler named `nope`") && m.contains("web-vpa → Deployment/web")),
            "{named:?}"
        );
        let auto = read_vpa_checked(&api.client, "staging", None, "Deployment", "api").await;
        assert!(
            matches!(&auto, Ok(VpaStatus::Unavailable { .. })),
            "{auto:?}"
        );
    }

    #[test]
    fn list_errors_become_reasons() {
        let err = |code: u16| {
            kube::Error::Api(
                kube::core::Status::failure("nope", "")
                    .with_code(code)
                    .boxed(),
            )
        };
        assert_eq!(
            list_error(err(404), "staging"),
            VpaStatus::Unavailable {
                reason: "the VerticalPodAutoscaler CRD (autoscaling.k8s.io/v1) is not installed in this cluster".into()
            }
        );
        let VpaStatus::ReadFailed { reason } = list_error(err(403), "staging") else {
            panic!()
        };
        assert!(reason.starts_with(
            "RBAC forbids `list` on `verticalpodautoscalers.autoscaling.k8s.io` in namespace `staging`"
        ));
        // A server error or throttling is a failed read, never "no VPA".
        for code in [500, 503, 429] {
            let VpaStatus::ReadFailed { reason } = list_error(err(code), "staging") else {
                panic!("{code}")
            };
            assert!(
                reason.starts_with(&format!("the Kubernetes API answered {code} to `list`")),
                "{reason}"
            );
        }
    }
}
