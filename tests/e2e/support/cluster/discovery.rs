//! API discovery as kubectl, client-go and kube-rs read it: `/version` (a v1.33.0 version.Info),
//! `/api` (APIVersions), `/apis` (APIGroupList with apps/v1, metrics.k8s.io/v1beta1 unless the
//! metrics API is "not installed", autoscaling.k8s.io/v1 when the VPA CRD is), `/apis/{group}`
//! and the APIResourceList of every served group version (with kinds, short names, categories
//! and the verbs the rig implements). Aggregated discovery (`Accept: …as=APIGroupDiscoveryList`)
//! is answered with the legacy documents and `Content-Type: application/json`, which clients
//! take as "not supported" and fall back from.

use hyper::{Response, StatusCode};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    APIGroup, APIGroupList, APIResource, APIResourceList, APIVersions, GroupVersionForDiscovery,
    ServerAddressByClientCIDR,
};
use k8s_openapi::apimachinery::pkg::version::Info;

use super::http::{self, Body};

pub(super) const CORE_GV: &str = "v1";
pub(super) const APPS_GV: &str = "apps/v1";
pub(super) const METRICS_GV: &str = "metrics.k8s.io/v1beta1";
pub(super) const VPA_GV: &str = "autoscaling.k8s.io/v1";

pub(super) fn version() -> Response<Body> {
    http::json(
        StatusCode::OK,
        &Info {
            major: "1".to_string(),
            minor: "33".to_string(),
            git_version: "v1.33.0".to_string(),
            git_commit: "60a317eadfcb839692a68eab88b2096f4d708f4f".to_string(),
            git_tree_state: "clean".to_string(),
            build_date: "2025-04-23T13:00:00Z".to_string(),
            go_version: "go1.24.2".to_string(),
            compiler: "gc".to_string(),
            platform: "linux/amd64".to_string(),
            emulation_major: Some("1".to_string()),
            emulation_minor: Some("33".to_string()),
            min_compatibility_major: Some("1".to_string()),
            min_compatibility_minor: Some("32".to_string()),
        },
    )
}

pub(super) fn core_versions(api_port: u16) -> Response<Body> {
    http::json(
        StatusCode::OK,
        &APIVersions {
            versions: vec!["v1".to_string()],
            server_address_by_client_cidrs: vec![ServerAddressByClientCIDR {
                client_cidr: "0.0.0.0/0".to_string(),
                server_address: format!("127.0.0.1:{api_port}"),
            }],
        },
    )
}

fn group(gv: &str) -> APIGroup {
    let (name, version) = gv.split_once('/').unwrap_or(("", gv));
    let v = GroupVersionForDiscovery {
        group_version: gv.to_string(),
        version: version.to_string(),
    };
    APIGroup {
        name: name.to_string(),
        versions: vec![v.clone()],
        preferred_version: Some(v),
        server_address_by_client_cidrs: None,
    }
}

/// The group versions served besides the core group, given the cluster's switches.
pub(super) fn served_groups(metrics_listed: bool, vpa: bool) -> Vec<&'static str> {
    let mut gvs = vec![APPS_GV];
    if metrics_listed {
        gvs.push(METRICS_GV);
    }
    if vpa {
        gvs.push(VPA_GV);
    }
    gvs
}

pub(super) fn group_list(gvs: &[&str]) -> Response<Body> {
    http::json(
        StatusCode::OK,
        &APIGroupList {
            groups: gvs.iter().map(|gv| group(gv)).collect(),
        },
    )
}

pub(super) fn group_response(gv: &str) -> Response<Body> {
    http::json(StatusCode::OK, &group(gv))
}

fn resource(
    name: &str,
    singular: &str,
    kind: &str,
    namespaced: bool,
    short: &[&str],
    verbs: &[&str],
    all: bool,
) -> APIResource {
    APIResource {
        name: name.to_string(),
        singular_name: singular.to_string(),
        kind: kind.to_string(),
        namespaced,
        short_names: (!short.is_empty()).then(|| short.iter().map(|s| s.to_string()).collect()),
        verbs: verbs.iter().map(|s| s.to_string()).collect(),
        categories: all.then(|| vec!["all".to_string()]),
        group: None,
        version: None,
        storage_version_hash: None,
    }
}

const READ: &[&str] = &["get", "list", "watch"];

/// The APIResourceList of a served group version.
pub(super) fn resources(gv: &str) -> APIResourceList {
    let resources = match gv {
        CORE_GV => vec![
            resource(
                "namespaces",
                "namespace",
                "Namespace",
                false,
                &["ns"],
                &["get", "list"],
                false,
            ),
            resource("pods", "pod", "Pod", true, &["po"], READ, true),
            resource("pods/log", "", "Pod", true, &[], &["get"], false),
        ],
        APPS_GV => vec![
            resource(
                "daemonsets",
                "daemonset",
                "DaemonSet",
                true,
                &["ds"],
                &["get", "list"],
                true,
            ),
            resource(
                "deployments",
                "deployment",
                "Deployment",
                true,
                &["deploy"],
                READ,
                true,
            ),
            resource(
                "replicasets",
                "replicaset",
                "ReplicaSet",
                true,
                &["rs"],
                READ,
                true,
            ),
            resource(
                "statefulsets",
                "statefulset",
                "StatefulSet",
                true,
                &["sts"],
                READ,
                true,
            ),
        ],
        METRICS_GV => vec![
            resource(
                "nodes",
                "",
                "NodeMetrics",
                false,
                &[],
                &["get", "list"],
                false,
            ),
            resource("pods", "", "PodMetrics", true, &[], &["get", "list"], false),
        ],
        VPA_GV => vec![resource(
            "verticalpodautoscalers",
            "verticalpodautoscaler",
            "VerticalPodAutoscaler",
            true,
            &["vpa"],
            &["get", "list"],
            false,
        )],
        _ => Vec::new(),
    };
    APIResourceList {
        group_version: gv.to_string(),
        resources,
    }
}

pub(super) fn resources_response(gv: &str) -> Response<Body> {
    http::json(StatusCode::OK, &resources(gv))
}
