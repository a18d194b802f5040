//! The HTTPS API server: TLS with the rig's CA-signed certificate, HTTP/1.1 keep-alive, bearer
//! token authentication (401 Unauthorized Status otherwise; Role-bound tokens are authorized by
//! `rbac.rs`), optional 403 Forbidden per (verb, resource) to simulate RBAC, read-only (other
//! methods: 405), and the routing of every path the rig serves to discovery, the stored resources, metrics.k8s.io and the VPA group.
//! VPA reads can be made to fail (`VpaFault`): a 500/503/429 Status, the connection closed
//! unanswered (the service returns an error, so hyper drops it) or after the first bytes of a
//! body announced longer, or an answer held back.
//! Every error is a `metav1.Status`; a malformed request never panics the server.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{ACCEPT, AUTHORIZATION};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::StatusDetails;
use tokio_rustls::TlsAcceptor;

use super::discovery::{self, APPS_GV, CORE_GV, METRICS_GV, VPA_GV};
use super::http::{self, Body, Query};
use super::rbac::Authorizer;
use super::state::{Shared, REQUEST_LOG};
use super::{metrics, resources, table, MetricsMode, VpaFault};

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accept TLS connections until the cluster shuts down.
pub(super) async fn serve(
    listener: std::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    shared: Arc<Shared>,
    rbac: Arc<Authorizer>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        eprintln!("sim-cluster: cannot use the API listener");
        return;
    };
    let acceptor = TlsAcceptor::from(tls);
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        let (tcp, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let acceptor = acceptor.clone();
        let shared = shared.clone();
        let rbac = rbac.clone();
        tokio::spawn(async move {
            let Ok(Ok(stream)) =
                tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
            else {
                return;
            };
            let service = service_fn(move |req| {
                let shared = shared.clone();
                let rbac = rbac.clone();
                async move {
                    if vpa_read(&req) && shared.lock().vpa_fault == VpaFault::DropConnection {
                        // An error from the service makes hyper close the connection unanswered.
                        return Err(std::io::Error::other("sim-cluster: VPA fault: drop"));
                    }
                    Ok::<_, std::io::Error>(handle(&shared, &rbac, req))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// A read of the VPA resource (list or get, not a watch).
fn vpa_read(req: &Request<Incoming>) -> bool {
    let path = req.uri().path();
    path.starts_with("/apis/autoscaling.k8s.io/v1/")
        && path.contains("/verticalpodautoscalers")
        && !req.uri().query().unwrap_or("").contains("watch=")
}

/// `resp` as the injected VPA fault changes it.
fn vpa_faulted(fault: VpaFault, resp: Response<Body>) -> Response<Body> {
    match fault {
        VpaFault::None | VpaFault::DropConnection => resp,
        VpaFault::Status(code) => {
            let (reason, message) = match code {
                429 => ("TooManyRequests", "the server has received too many requests and has asked us to try again later (get verticalpodautoscalers.autoscaling.k8s.io)"),
                503 => ("ServiceUnavailable", "the server is currently unable to handle the request (get verticalpodautoscalers.autoscaling.k8s.io)"),
                _ => ("InternalError", "an error on the server (\"etcdserver: request timed out\") has prevented the request from succeeding (get verticalpodautoscalers.autoscaling.k8s.io)"),
            };
            http::status(code, reason, message)
        }
        VpaFault::CutBody => {
            use http_body_util::BodyExt as _;
            let (mut parts, body) = resp.into_parts();
            let stream = futures::stream::once(async move {
                let bytes = body
                    .collect()
                    .await
                    .map(|c| c.to_bytes())
                    .unwrap_or_default();
                Ok::<_, Infallible>(hyper::body::Frame::data(bytes.slice(..bytes.len().min(16))))
            });
            // The full length is announced (more than any list here); only the
            // first 16 bytes come, then hyper closes the connection.
            parts.headers.insert(
                hyper::header::CONTENT_LENGTH,
                hyper::header::HeaderValue::from_static("4096"),
            );
            Response::from_parts(parts, http_body_util::StreamBody::new(stream).boxed())
        }
        VpaFault::Hang(d) => metrics::stalled(resp, d),
    }
}

fn forbidden(verb: &str, resource: &str, group: &str, ns: Option<&str>) -> Response<Body> {
    let scope = match ns {
        Some(ns) => format!(" in the namespace \"{ns}\""),
        None => " at the cluster scope".to_string(),
    };
    let qualified = if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    };
    let details = StatusDetails {
        group: (!group.is_empty()).then(|| group.to_string()),
        kind: Some(resource.to_string()),
        ..StatusDetails::default()
    };
    http::json(
        StatusCode::FORBIDDEN,
        &http::status_object(
            403,
            "Forbidden",
            format!(
                "{qualified} is forbidden: User \"system:serviceaccount:ci:oomgate\" cannot \
                 {verb} resource \"{resource}\" in API group \"{group}\"{scope}"
            ),
            Some(details),
        ),
    )
}

/// Answer one request (never panics on input).
fn handle(shared: &Arc<Shared>, rbac: &Authorizer, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let q = Query::parse(req.uri().query());
    {
        let mut st = shared.lock();
        if st.requests.len() >= REQUEST_LOG {
            st.requests.pop_front();
        }
        let line = match req.uri().query() {
            Some(query) => format!("{} {path}?{query}", req.method()),
            None => format!("{} {path}", req.method()),
        };
        st.requests.push_back(line);
    }
    let bearer = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if bearer != shared.token {
        // A Role-bound token: authorized like kube-apiserver's RBAC (see rbac.rs).
        let Some(grant) = rbac.grant(bearer) else {
            return http::status(401, "Unauthorized", "Unauthorized");
        };
        let method = req.method().as_str();
        if let Some(denied) = rbac.check(&grant, method, &path, req.uri().query()) {
            return denied;
        }
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return http::status(
            405,
            "MethodNotAllowed",
            format!(
                "the server does not allow this method on the requested resource (the simulated \
                 cluster is read-only): {}",
                req.method()
            ),
        );
    }
    let as_table = req
        .headers()
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(table::wanted);
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    route(shared, &segments, &q, as_table)
}

/// (group, resource, namespace, name) of a namespaced or cluster-wide resource path, e.g.
/// `namespaces/staging/pods/web-1` or `pods`.
fn parse_resource<'a>(rest: &[&'a str]) -> Option<(Option<&'a str>, &'a str, Option<&'a str>)> {
    match rest {
        ["namespaces", ns, res] => Some((Some(*ns), *res, None)),
        ["namespaces", ns, res, name] => Some((Some(*ns), *res, Some(*name))),
        [res] if *res != "namespaces" => Some((None, *res, None)),
        _ => None,
    }
}

fn route(shared: &Arc<Shared>, seg: &[&str], q: &Query, as_table: bool) -> Response<Body> {
    let (metrics_mode, vpa) = {
        let st = shared.lock();
        (st.metrics_mode, shared.cfg.vpa_crd_installed)
    };
    let metrics_listed = metrics_mode != MetricsMode::NotFound404;
    let verb = |name: Option<&str>| {
        if name.is_some() {
            "get"
        } else if q.flag("watch") {
            "watch"
        } else {
            "list"
        }
    };
    let denied = |verb: &str, resource: &str| {
        shared
            .lock()
            .forbidden
            .contains(&(verb.to_string(), resource.to_string()))
    };
    match seg {
        ["version"] => discovery::version(),
        ["healthz"] | ["livez"] | ["readyz"] => http::text(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            "ok".to_string(),
        ),
        ["api"] => discovery::core_versions(shared.api_port),
        ["api", "v1"] => discovery::resources_response(CORE_GV),
        ["apis"] => discovery::group_list(&discovery::served_groups(metrics_listed, vpa)),
        ["apis", "apps"] => discovery::group_response(APPS_GV),
        ["apis", "apps", "v1"] => discovery::resources_response(APPS_GV),
        ["apis", "metrics.k8s.io"] if metrics_listed => discovery::group_response(METRICS_GV),
        ["apis", "metrics.k8s.io", "v1beta1", rest @ ..] => {
            if let Some((ns, res, name)) = parse_resource(rest) {
                if denied(verb(name), res) {
                    return forbidden(verb(name), res, "metrics.k8s.io", ns);
                }
            }
            metrics::handle(shared, rest, q)
        }
        ["apis", "autoscaling.k8s.io"] if vpa => discovery::group_response(VPA_GV),
        ["apis", "autoscaling.k8s.io", "v1"] if vpa => discovery::resources_response(VPA_GV),
        ["apis", "autoscaling.k8s.io", "v1", rest @ ..] if vpa => {
            let parsed = parse_resource(rest);
            if let Some((ns, res, name)) = parsed {
                if denied(verb(name), res) {
                    return forbidden(verb(name), res, "autoscaling.k8s.io", ns);
                }
            }
            let fault = shared.lock().vpa_fault;
            let watch = q.flag("watch");
            let resp = resources::vpas(shared, rest, q, as_table);
            if watch {
                resp
            } else {
                vpa_faulted(fault, resp)
            }
        }
        ["api", "v1", "namespaces"] => resources::namespaces(shared, None),
        ["api", "v1", "namespaces", ns] => resources::namespaces(shared, Some(ns)),
        ["api", "v1", "namespaces", ns, "pods", name, "log"] => {
            if denied("get", "pods/log") {
                return forbidden("get", "pods/log", "", Some(ns));
            }
            resources::pod_log(shared, ns, name, q)
        }
        ["api", "v1", rest @ ..] => match parse_resource(rest) {
            Some((ns, "pods", name)) => {
                if denied(verb(name), "pods") {
                    return forbidden(verb(name), "pods", "", ns);
                }
                resources::typed::<Pod>(shared, ns, name, q, ("", "pods"), as_table)
            }
            _ => http::path_not_found(),
        },
        ["apis", "apps", "v1", rest @ ..] => {
            let Some((ns, res, name)) = parse_resource(rest) else {
                return http::path_not_found();
            };
            if denied(verb(name), res) {
                return forbidden(verb(name), res, "apps", ns);
            }
            let g = ("apps", res);
            match res {
                "deployments" => resources::typed::<Deployment>(shared, ns, name, q, g, as_table),
                "replicasets" => resources::typed::<ReplicaSet>(shared, ns, name, q, g, as_table),
                "statefulsets" => resources::typed::<StatefulSet>(shared, ns, name, q, g, as_table),
                "daemonsets" => resources::daemonsets(shared, name),
                _ => http::path_not_found(),
            }
        }
        _ => http::path_not_found(),
    }
}
