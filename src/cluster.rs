//! Connection to the Kubernetes API: this module owns building the `kube::Client` from an
//! explicit kubeconfig, `KUBECONFIG`, `~/.kube/config` or the pod's service account (with TLS
//! verification as the kubeconfig asks, never weakened by oomgate), a `/version` probe, and
//! [`ClusterError`], the one error every Kubernetes read in oomgate is turned into by
//! [`classify`], so each failure names the verb, the resource and the namespace and says what to
//! do. It talks to the API server only through the client it builds; the workload, memory and
//! VPA modules call it.

use std::error::Error as StdError;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};

#[path = "cluster_transport.rs"]
mod transport_text;

/// Where the cluster credentials come from (`--kubeconfig`, `--context`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterAccess {
    /// An explicit kubeconfig file; `None` = `KUBECONFIG`, `~/.kube/config`, then in-cluster.
    pub kubeconfig: Option<PathBuf>,
    /// A kubeconfig context other than the current one.
    pub context: Option<String>,
}

/// A Kubernetes call failed. `Display` is the whole user-facing message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    #[error("no Kubernetes configuration found: set KUBECONFIG, pass --kubeconfig, or run in a pod with a service account")]
    NoConfig,
    #[error("kubeconfig {path}: {detail}")]
    BadKubeconfig { path: String, detail: String },
    #[error("cannot reach the Kubernetes API at {server}: {detail}; check the kubeconfig's server and your network")]
    Unreachable { server: String, detail: String },
    #[error("TLS with the Kubernetes API at {server} failed: {detail}; check the kubeconfig's certificate-authority (oomgate does not skip verification)")]
    Tls { server: String, detail: String },
    /// The connection was closed before the answer was complete (a load balancer, proxy or API
    /// server restart cut it): not a certificate problem.
    #[error("the Kubernetes API at {server} closed the connection before its answer was complete ({detail}): a proxy, load balancer or API server restart cut it; run again, and check the API server's health if it keeps happening")]
    Dropped { server: String, detail: String },
    #[error("the Kubernetes API rejected the credentials (401 Unauthorized): refresh them (log in again, renew the token) or point --kubeconfig/--context at valid ones")]
    Unauthorized,
    /// A 403. `verb`, `resource`, `group` and `namespace` are what the API server says it
    /// denied, else what oomgate asked for (`group` then from the resource name); the display
    /// also names the user the server denied.
    #[error("{}", forbidden_message(.verb, .resource, .group, .namespace, .message))]
    Forbidden {
        verb: String,
        resource: String,
        /// The resource's API group, "" for the core group.
        group: String,
        namespace: String,
        message: String,
    },
    #[error("{what} not found{}: check the name in the scenario and --namespace", in_namespace(.namespace))]
    NotFound { what: String, namespace: String },
    #[error("the Kubernetes API answered {status} to `{verb}` on `{resource}`{}: {message}", in_namespace(.namespace))]
    Api {
        status: u16,
        verb: String,
        resource: String,
        namespace: String,
        message: String,
    },
    #[error("`{verb}` on `{resource}`{} failed: {detail}", in_namespace(.namespace))]
    Other {
        verb: String,
        resource: String,
        namespace: String,
        detail: String,
    },
    /// The workload itself is not measurable as asked (no pods, unknown container, bad limit).
    #[error("{0}")]
    Workload(String),
}

/// `RBAC forbids `list` on `pods.metrics.k8s.io` in namespace `staging` for user "…": add to
/// the Role bound to it the rule {apiGroups: ["metrics.k8s.io"], resources: ["pods"], verbs:
/// ["list"]} …`: what was denied, to whom, and the rule that grants it.
fn forbidden_message(
    verb: &str,
    resource: &str,
    group: &str,
    namespace: &str,
    message: &str,
) -> String {
    // The user the API server denied, e.g. `system:serviceaccount:staging:oomgate`.
    let user = parse_forbidden(message).map(|p| p.0);
    let user = user.as_deref();
    let plain = plain_resource(resource, group);
    let qualified = if group.is_empty() {
        plain.to_string()
    } else {
        format!("{plain}.{group}")
    };
    let who = user
        .map(|u| format!(" for user \"{u}\""))
        .unwrap_or_default();
    let rule =
        format!("{{apiGroups: [\"{group}\"], resources: [\"{plain}\"], verbs: [\"{verb}\"]}}");
    let grant = if namespace.is_empty() {
        format!("grant it with a ClusterRole rule {rule}")
    } else {
        format!(
            "add the rule {rule} to the Role bound to {} in namespace `{namespace}` \
             (ci-templates/kubernetes/rbac.yaml is a Role with every rule oomgate needs: \
             kubectl apply -n {namespace} -f ci-templates/kubernetes/rbac.yaml)",
            if user.is_some() {
                "that user"
            } else {
                "the credentials oomgate uses"
            }
        )
    };
    let said = if message.is_empty() {
        String::new()
    } else {
        format!("; the API server said: {message}")
    };
    format!(
        "RBAC forbids `{verb}` on `{qualified}`{}{who}: {grant}{said}",
        in_namespace(namespace)
    )
}

/// `pods` of `pods.metrics.k8s.io` in group `metrics.k8s.io`; `pods/log` stays as it is.
fn plain_resource<'a>(resource: &'a str, group: &str) -> &'a str {
    if group.is_empty() {
        return resource;
    }
    resource
        .strip_suffix(group)
        .and_then(|r| r.strip_suffix('.'))
        .unwrap_or(resource)
}

/// The API group of a resource as oomgate names it: `pods.metrics.k8s.io` → `metrics.k8s.io`,
/// `deployments` → `apps`, `pods` → "".
fn group_of(resource: &str) -> String {
    let base = resource.split('/').next().unwrap_or(resource);
    match base.split_once('.') {
        Some((_, group)) => group.to_string(),
        None if matches!(
            base,
            "deployments" | "statefulsets" | "daemonsets" | "replicasets"
        ) =>
        {
            "apps".to_string()
        }
        None => String::new(),
    }
}

/// What kube-apiserver's 403 message says: `… User "U" cannot VERB resource "R" in API group
/// "G" in the namespace "N"` (or `at the cluster scope`). Returns (user, verb, resource, group,
/// namespace) when the message has that shape.
fn parse_forbidden(message: &str) -> Option<(String, String, String, String, String)> {
    fn quoted<'a>(text: &'a str, after: &str) -> Option<(&'a str, &'a str)> {
        let start = text.find(after)? + after.len();
        let rest = &text[start..];
        let end = rest.find('"')?;
        Some((&rest[..end], &rest[end + 1..]))
    }
    let (user, rest) = quoted(message, "User \"")?;
    let rest = rest.strip_prefix(" cannot ")?;
    let (verb, rest) = rest.split_once(' ')?;
    let (resource, rest) = quoted(rest, "resource \"")?;
    let (group, rest) = quoted(rest, " in API group \"")?;
    let namespace = match quoted(rest, " in the namespace \"") {
        Some((ns, _)) => ns,
        None if rest.starts_with(" at the cluster scope") => "",
        None => return None,
    };
    Some((
        user.to_string(),
        verb.to_string(),
        resource.to_string(),
        group.to_string(),
        namespace.to_string(),
    ))
}

fn in_namespace(ns: &str) -> String {
    if ns.is_empty() {
        String::new()
    } else {
        format!(" in namespace `{ns}`")
    }
}

/// The API server URL(s) of the clients built by [`connect`], for messages about unreachable
/// servers (a `kube::Client` does not tell its URL). With clients for several servers in one
/// process the messages say "the configured server" rather than guess.
static SERVERS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn remember_server(url: &str) {
    let url = crate::redact::url(url.trim_end_matches('/'));
    if let Ok(mut s) = SERVERS.lock() {
        if !s.contains(&url) {
            s.push(url);
        }
    }
}

fn server_for_messages() -> String {
    match SERVERS.lock().ok().as_deref().map(Vec::as_slice) {
        Some([one]) => one.clone(),
        _ => "the configured server".to_string(),
    }
}

/// How long to wait for a TCP + TLS connection to the API server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds a client: explicit kubeconfig, else `KUBECONFIG`, else `~/.kube/config`, else the
/// in-cluster service account when `KUBERNETES_SERVICE_HOST` is set. Sends no request; call
/// [`probe`] to check the server answers.
pub async fn connect(access: &ClusterAccess) -> Result<kube::Client, ClusterError> {
    let mut config = match load_kubeconfig(access)? {
        Some((path, kubeconfig)) => {
            check_context(&path, &kubeconfig, access.context.as_deref())?;
            let options = KubeConfigOptions {
                context: access.context.clone(),
                ..KubeConfigOptions::default()
            };
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| ClusterError::BadKubeconfig {
                    path: path.clone(),
                    detail: error_chain(&e),
                })?
        }
        None => {
            if std::env::var_os("KUBERNETES_SERVICE_HOST").is_none() {
                return Err(ClusterError::NoConfig);
            }
            if let Some(ctx) = &access.context {
                log::warn!("--context {ctx} ignored: using the pod's service account (no kubeconfig found)");
            }
            kube::Config::incluster().map_err(|e| ClusterError::BadKubeconfig {
                path: "in-cluster service account (/var/run/secrets/kubernetes.io/serviceaccount)"
                    .to_string(),
                detail: error_chain(&e),
            })?
        }
    };
    if config.accept_invalid_certs {
        log::warn!(
            "the kubeconfig sets insecure-skip-tls-verify for {}: the API server's certificate is not verified",
            crate::redact::url(&config.cluster_url.to_string())
        );
    }
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    // kube's built-in retry repeats 429/503/504 answers for minutes; the sampler polls again on
    // its next tick and the watcher backs off by itself, so a failure is reported at once.
    config.default_retry = false;
    let server = config.cluster_url.to_string();
    remember_server(&server);
    kube::Client::try_from(config).map_err(|e| ClusterError::BadKubeconfig {
        path: crate::redact::url(&server),
        detail: format!("cannot build a client: {}", error_chain(&e)),
    })
}

/// The kubeconfig to use and where it came from, or `None` when there is none at all.
fn load_kubeconfig(access: &ClusterAccess) -> Result<Option<(String, Kubeconfig)>, ClusterError> {
    if let Some(path) = &access.kubeconfig {
        return read_file(path).map(Some);
    }
    if let Some(value) = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        let shown = value.to_string_lossy().into_owned();
        let missing: Vec<String> = std::env::split_paths(&value)
            .filter(|p| !p.as_os_str().is_empty() && !p.exists())
            .map(|p| p.display().to_string())
            .collect();
        if !missing.is_empty() {
            return Err(ClusterError::BadKubeconfig {
                path: shown,
                detail: format!(
                    "KUBECONFIG names {} that does not exist",
                    missing.join(", ")
                ),
            });
        }
        return match Kubeconfig::from_env() {
            Ok(Some(k)) => Ok(Some((shown, k))),
            Ok(None) => Ok(None),
            Err(e) => Err(ClusterError::BadKubeconfig {
                path: shown,
                detail: error_chain(&e),
            }),
        };
    }
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        let default = Path::new(&home).join(".kube").join("config");
        if default.exists() {
            return read_file(&default).map(Some);
        }
    }
    Ok(None)
}

fn read_file(path: &Path) -> Result<(String, Kubeconfig), ClusterError> {
    let shown = path.display().to_string();
    if !path.exists() {
        return Err(ClusterError::BadKubeconfig {
            path: shown,
            detail: "no such file; pass the path of an existing kubeconfig".to_string(),
        });
    }
    Kubeconfig::read_from(path)
        .map(|k| (shown.clone(), k))
        .map_err(|e| ClusterError::BadKubeconfig {
            path: shown,
            detail: error_chain(&e),
        })
}

/// A named context must exist; without one the kubeconfig must have a current context.
fn check_context(
    path: &str,
    kubeconfig: &Kubeconfig,
    context: Option<&str>,
) -> Result<(), ClusterError> {
    let names: Vec<&str> = kubeconfig
        .contexts
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    let available = if names.is_empty() {
        "it defines no contexts".to_string()
    } else {
        format!("available: {}", names.join(", "))
    };
    match context {
        Some(ctx) if !names.contains(&ctx) => Err(ClusterError::BadKubeconfig {
            path: path.to_string(),
            detail: format!("no context named `{ctx}` ({available})"),
        }),
        None if kubeconfig
            .current_context
            .as_deref()
            .unwrap_or("")
            .is_empty() =>
        {
            Err(ClusterError::BadKubeconfig {
                path: path.to_string(),
                detail: format!("no current-context set; pass --context ({available})"),
            })
        }
        _ => Ok(()),
    }
}

/// GET /version: proves the server answers and the credentials work; returns e.g. `v1.33.1`.
pub async fn probe(client: &kube::Client) -> Result<String, ClusterError> {
    let info = answered(client.apiserver_version(), "get", "/version")
        .await?
        .map_err(|e| classify(e, "get", "/version", ""))?;
    Ok(info.git_version)
}

/// How long a one-shot read (not a watch) may wait for its answer once connected. The client
/// has no read timeout, as that would also cut quiet watches.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Awaits one API read for at most [`REQUEST_TIMEOUT`]: a server that accepts the connection
/// but never answers becomes [`ClusterError::Unreachable`] naming `verb` and `resource`; the
/// read's own result is handed back for the caller to classify.
pub async fn answered<T>(
    read: impl std::future::Future<Output = Result<T, kube::Error>>,
    verb: &str,
    resource: &str,
) -> Result<Result<T, kube::Error>, ClusterError> {
    tokio::time::timeout(REQUEST_TIMEOUT, read)
        .await
        .map_err(|_| ClusterError::Unreachable {
            server: server_for_messages(),
            detail: format!(
                "it accepted the connection but sent no answer to `{verb}` on `{resource}` \
                 within {} s",
                REQUEST_TIMEOUT.as_secs()
            ),
        })
}

/// Turns a kube error into a [`ClusterError`] naming what was attempted, e.g.
/// `classify(e, "list", "pods", "staging")`.
pub fn classify(err: kube::Error, verb: &str, resource: &str, namespace: &str) -> ClusterError {
    match err {
        kube::Error::Api(status) => {
            classify_status(status.code, &status.message, verb, resource, namespace)
        }
        kube::Error::HyperError(e) => transport(&e),
        kube::Error::Service(e) => transport(e.as_ref()),
        other => ClusterError::Other {
            verb: verb.to_string(),
            resource: resource.to_string(),
            namespace: namespace.to_string(),
            detail: error_chain(&other),
        },
    }
}

/// The HTTP status of an API error, when there is one.
pub fn status_code(err: &kube::Error) -> Option<u16> {
    match err {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// [`classify`] for an API answer already split into code and message.
pub fn classify_status(
    code: u16,
    message: &str,
    verb: &str,
    resource: &str,
    namespace: &str,
) -> ClusterError {
    match code {
        401 => ClusterError::Unauthorized,
        403 => match parse_forbidden(message) {
            // The API server names exactly what it denied (a subresource, another namespace).
            Some((_user, verb, resource, group, namespace)) => ClusterError::Forbidden {
                verb,
                resource,
                group,
                namespace,
                message: message.to_string(),
            },
            None => ClusterError::Forbidden {
                verb: verb.to_string(),
                resource: resource.to_string(),
                group: group_of(resource),
                namespace: namespace.to_string(),
                message: message.to_string(),
            },
        },
        404 => ClusterError::NotFound {
            what: resource.to_string(),
            namespace: namespace.to_string(),
        },
        _ => ClusterError::Api {
            status: code,
            verb: verb.to_string(),
            resource: resource.to_string(),
            namespace: namespace.to_string(),
            message: message.to_string(),
        },
    }
}

fn transport(err: &(dyn StdError + 'static)) -> ClusterError {
    let detail = transport_text::without_wrappers(&error_chain(err));
    let server = server_for_messages();
    let lower = detail.to_ascii_lowercase();
    // hyper-timeout's connect deadline covers the TCP connect and the TLS handshake: a server
    // that accepts connections but never answers ends here.
    if lower.contains("deadline has elapsed") || lower.contains("timed out") {
        return ClusterError::Unreachable {
            server,
            detail: format!(
                "the connection and TLS handshake got no answer within {} s ({detail})",
                CONNECT_TIMEOUT.as_secs()
            ),
        };
    }
    if transport_text::is_dropped(&lower) {
        return ClusterError::Dropped { server, detail };
    }
    if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
        ClusterError::Tls { server, detail }
    } else {
        ClusterError::Unreachable { server, detail }
    }
}

/// An error and its sources, `outer: inner: innermost`, without repeats.
pub fn error_chain(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = current {
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn connect_err(access: &ClusterAccess) -> ClusterError {
        match connect(access).await {
            Ok(_) => panic!("connect succeeded"),
            Err(e) => e,
        }
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    const KUBECONFIG: &str = "apiVersion: v1
kind: Config
clusters:
- name: staging
  cluster: { server: 'https://127.0.0.1:6443' }
users:
- name: ci
  user: { token: sekrit-token-value }
contexts:
- name: staging
  context: { cluster: staging, user: ci, namespace: staging }
current-context: staging
";

    #[test]
    fn messages_name_verb_resource_namespace_and_what_to_do() {
        let e = classify_status(403, "pods is forbidden", "list", "pods", "staging");
        assert_eq!(
            e.to_string(),
            "RBAC forbids `list` on `pods` in namespace `staging`: add the rule \
             {apiGroups: [\"\"], resources: [\"pods\"], verbs: [\"list\"]} to the Role bound to \
             the credentials oomgate uses in namespace `staging` (ci-templates/kubernetes/rbac.yaml \
             is a Role with every rule oomgate needs: kubectl apply -n staging -f \
             ci-templates/kubernetes/rbac.yaml); the API server said: pods is forbidden"
        );
        let e = classify_status(403, "", "get", "deployments", "staging").to_string();
        assert!(
            e.starts_with("RBAC forbids `get` on `deployments.apps` in namespace `staging`: add the rule {apiGroups: [\"apps\"], resources: [\"deployments\"], verbs: [\"get\"]}"),
            "{e}"
        );
        let e = classify_status(404, "", "get", "deployment/web", "staging");
        assert!(e
            .to_string()
            .starts_with("deployment/web not found in namespace `staging`"));
        assert_eq!(
            classify_status(401, "", "get", "/version", ""),
            ClusterError::Unauthorized
        );
        let e = classify_status(500, "boom", "get", "/version", "");
        assert_eq!(
            e.to_string(),
            "the Kubernetes API answered 500 to `get` on `/version`: boom"
        );
        assert!(ClusterError::NoConfig.to_string().contains("KUBECONFIG"));
    }

    #[test]
    fn forbidden_names_what_the_api_server_denied_and_the_rule_to_add() {
        let said = "pods.metrics.k8s.io is forbidden: User \"system:serviceaccount:staging:oomgate\" \
                    cannot list resource \"pods\" in API group \"metrics.k8s.io\" in the namespace \"staging\"";
        let e = classify_status(403, said, "list", "pods.metrics.k8s.io", "staging");
        assert!(
            matches!(&e, ClusterError::Forbidden { group, resource, .. }
                if group == "metrics.k8s.io" && resource == "pods"),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            format!(
                "RBAC forbids `list` on `pods.metrics.k8s.io` in namespace `staging` for user \
                 \"system:serviceaccount:staging:oomgate\": add the rule {{apiGroups: \
                 [\"metrics.k8s.io\"], resources: [\"pods\"], verbs: [\"list\"]}} to the Role bound \
                 to that user in namespace `staging` (ci-templates/kubernetes/rbac.yaml is a Role \
                 with every rule oomgate needs: kubectl apply -n staging -f \
                 ci-templates/kubernetes/rbac.yaml); the API server said: {said}"
            )
        );
        // The server's words win: a subresource, another namespace, the cluster scope.
        let said = "pods \"web-1\" is forbidden: User \"ci\" cannot get resource \"pods/log\" in API group \"\" in the namespace \"prod\"";
        let e = classify_status(403, said, "get", "pods", "staging").to_string();
        assert!(
            e.starts_with("RBAC forbids `get` on `pods/log` in namespace `prod` for user \"ci\": add the rule {apiGroups: [\"\"], resources: [\"pods/log\"], verbs: [\"get\"]}"),
            "{e}"
        );
        let said = "pods is forbidden: User \"ci\" cannot watch resource \"pods\" in API group \"\" at the cluster scope";
        let e = classify_status(403, said, "watch", "pods", "staging").to_string();
        assert!(
            e.starts_with(
                "RBAC forbids `watch` on `pods` for user \"ci\": grant it with a ClusterRole rule"
            ),
            "{e}"
        );
    }

    #[test]
    fn classify_maps_api_status() {
        let status = kube::core::Status::failure("denied", "Forbidden").with_code(403);
        let e = classify(kube::Error::Api(status.boxed()), "watch", "pods", "ns");
        assert!(matches!(e, ClusterError::Forbidden { ref verb, .. } if verb == "watch"));
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "Connection refused");
        let e = classify(kube::Error::Service(Box::new(io)), "get", "/version", "");
        assert!(
            matches!(e, ClusterError::Unreachable { ref detail, .. } if detail.contains("refused"))
        );
    }

    #[tokio::test]
    async fn explicit_kubeconfig_and_context() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "config", KUBECONFIG);
        let access = ClusterAccess {
            kubeconfig: Some(path.clone()),
            context: None,
        };
        let client = connect(&access).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(client.default_namespace(), "staging");

        let access = ClusterAccess {
            kubeconfig: Some(path),
            context: Some("prod".into()),
        };
        let e = connect_err(&access).await.to_string();
        assert!(
            e.contains("no context named `prod` (available: staging)"),
            "{e}"
        );
        assert!(!e.contains("sekrit"));

        let missing = ClusterAccess {
            kubeconfig: Some(dir.path().join("nope")),
            context: None,
        };
        let e = connect_err(&missing).await;
        assert!(matches!(e, ClusterError::BadKubeconfig { .. }), "{e}");

        let bad = write(dir.path(), "bad", "clusters: [unclosed");
        let e = connect_err(&ClusterAccess {
            kubeconfig: Some(bad),
            context: None,
        })
        .await;
        assert!(e.to_string().starts_with("kubeconfig "), "{e}");
    }

    #[tokio::test]
    async fn probe_reports_unreachable_server() {
        let dir = tempfile::tempdir().unwrap();
        // A port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let text = KUBECONFIG.replace("6443", &port.to_string());
        let path = write(dir.path(), "config", &text);
        let client = connect(&ClusterAccess {
            kubeconfig: Some(path),
            context: None,
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        let e = probe(&client).await.unwrap_err();
        assert!(
            matches!(e, ClusterError::Unreachable { .. }),
            "expected unreachable, got {e:?}"
        );
        assert!(e
            .to_string()
            .contains("cannot reach the Kubernetes API at "));
        assert!(!e.to_string().contains("sekrit"));
    }

    /// An HTTPS server with a fresh self-signed certificate answering `/version`; returns its
    /// port and the certificate's PEM.
    async fn version_server() -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
        let key = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        let pem = key.cert.pem();
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.signing_key.serialize_der()));
        let config = tokio_rustls::rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![key.cert.der().clone()], der)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    continue; // the client did not trust us
                };
                let mut buf = vec![0u8; 4096];
                let _ = tls.read(&mut buf).await;
                let body = r#"{"major":"1","minor":"33","gitVersion":"v1.33.1","gitCommit":"abc","gitTreeState":"clean","buildDate":"2025-05-01T00:00:00Z","goVersion":"go1.24","compiler":"gc","platform":"linux/amd64"}"#;
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(reply.as_bytes()).await;
                let _ = tls.shutdown().await;
            }
        });
        (port, pem)
    }

    #[tokio::test]
    async fn probe_over_tls_verifies_the_server() {
        let (port, pem) = version_server().await;
        let dir = tempfile::tempdir().unwrap();
        let server = format!("https://127.0.0.1:{port}");
        let untrusted = KUBECONFIG.replace("https://127.0.0.1:6443", &server);
        let path = write(dir.path(), "untrusted", &untrusted);
        let access = ClusterAccess {
            kubeconfig: Some(path),
            context: None,
        };
        let client = connect(&access).await.unwrap_or_else(|e| panic!("{e}"));
        let e = probe(&client).await.unwrap_err();
        assert!(matches!(e, ClusterError::Tls { .. }), "{e:?}");
        assert!(e.to_string().contains("certificate"), "{e}");

        let ca = write(dir.path(), "ca.crt", &pem);
        let trusted = untrusted.replace(
            "server: '",
            &format!("certificate-authority: '{}', server: '", ca.display()),
        );
        let path = write(dir.path(), "trusted", &trusted);
        let access = ClusterAccess {
            kubeconfig: Some(path),
            context: Some("staging".into()),
        };
        let client = connect(&access).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(probe(&client).await.unwrap(), "v1.33.1");
    }

    #[test]
    fn chain_skips_repeats() {
        let inner = std::io::Error::other("refused");
        let e = kube::Error::Service(Box::new(inner));
        assert_eq!(error_chain(&e), "ServiceError: refused");
    }
}
