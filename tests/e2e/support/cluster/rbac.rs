//! Role-based access control for the simulated cluster, as kube-apiserver does it: a token can
//! be bound to the Role of an RBAC manifest (the multi-document YAML of
//! `ci-templates/kubernetes/rbac.yaml`: ServiceAccount, Role, RoleBinding, parsed into
//! k8s-openapi's rbac/v1 types), and every request made with that token is turned into the
//! API server's request attributes (`RequestInfo`: verb from the method, `?watch=true` and a
//! missing name; API group, resource and subresource, namespace, name, or a non-resource path)
//! and authorized against the Role's rules (verbs, apiGroups, resources incl. `pods/log` and
//! `*`, resourceNames) in the RoleBinding's namespace only. Discovery and health paths are open
//! to every authenticated user (system:discovery, system:public-info-viewer). A denial is a 403
//! `metav1.Status` worded like the real server's
//! (`pods is forbidden: User "system:serviceaccount:staging:oomgate" cannot list resource "pods"
//! in API group "" in the namespace "staging"`). Every decision is logged for the tests, which
//! read what a client really asked for. The admin token of the rig is not handled here.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use hyper::{Response, StatusCode};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::StatusDetails;

use super::http::{self, Body, Query};
use super::{tls, SimCluster};

/// What a request asks for, in the API server's terms (`authorizer.Attributes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestAttributes {
    /// get, list, watch, create, update, patch, delete, deletecollection, proxy; for a
    /// non-resource request the lower-case HTTP method.
    pub verb: String,
    /// False for discovery, `/version`, `/healthz` and other non-resource paths.
    pub resource_request: bool,
    /// "" for the core group.
    pub api_group: String,
    pub api_version: String,
    pub resource: String,
    pub subresource: String,
    /// "" at the cluster scope.
    pub namespace: String,
    /// "" for collections (unless a `metadata.name=` field selector names one object).
    pub name: String,
    pub path: String,
}

impl RequestAttributes {
    /// `resource` or `resource/subresource`, as RBAC rules name it.
    pub fn resource_with_subresource(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }

    /// `list pods.metrics.k8s.io in staging`, `get path /version`: for logs and assertions.
    pub fn describe(&self) -> String {
        if !self.resource_request {
            return format!("{} path {}", self.verb, self.path);
        }
        let mut res = self.resource_with_subresource();
        if !self.api_group.is_empty() {
            res = format!("{res}.{}", self.api_group);
        }
        let scope = if self.namespace.is_empty() {
            " (cluster scope)".to_string()
        } else {
            format!(" in {}", self.namespace)
        };
        let name = if self.name.is_empty() {
            String::new()
        } else {
            format!(" {}", self.name)
        };
        format!("{} {res}{name}{scope}", self.verb)
    }
}

/// The attributes of a request, by kube-apiserver's `RequestInfoFactory` rules (API prefixes
/// `api` (groupless) and `apis`, special verb `watch` as a path prefix, namespace
/// subresources `status` and `finalize`).
pub fn request_info(method: &str, path: &str, query: Option<&str>) -> RequestAttributes {
    let mut info = RequestAttributes {
        verb: method.to_ascii_lowercase(),
        resource_request: false,
        api_group: String::new(),
        api_version: String::new(),
        resource: String::new(),
        subresource: String::new(),
        namespace: String::new(),
        name: String::new(),
        path: path.to_string(),
    };
    let mut parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    if parts.len() < 3 || !matches!(parts[0], "api" | "apis") {
        return info;
    }
    let prefix = parts.remove(0);
    if prefix == "apis" {
        if parts.len() < 3 {
            return info;
        }
        info.api_group = parts.remove(0).to_string();
    }
    info.resource_request = true;
    info.api_version = parts.remove(0).to_string();
    let mut via_method = false;
    if matches!(parts[0], "watch" | "proxy") {
        if parts.len() < 2 {
            info.resource_request = false;
            return info;
        }
        info.verb = parts.remove(0).to_string();
    } else {
        info.verb = match method {
            "POST" => "create",
            "GET" | "HEAD" => "get",
            "PUT" => "update",
            "PATCH" => "patch",
            "DELETE" => "delete",
            _ => "",
        }
        .to_string();
        via_method = true;
    }
    if parts[0] == "namespaces" && parts.len() > 1 {
        info.namespace = parts[1].to_string();
        if parts.len() > 2 && !matches!(parts[2], "status" | "finalize") {
            parts.drain(..2);
        }
    }
    if parts.len() >= 3 && info.verb != "proxy" {
        info.subresource = parts[2].to_string();
    }
    if parts.len() >= 2 {
        info.name = parts[1].to_string();
    }
    info.resource = parts[0].to_string();
    let q = Query::parse(query);
    if via_method && info.name.is_empty() && info.verb == "get" {
        let watch = q
            .get("watch")
            .is_some_and(|v| v != "0" && !v.eq_ignore_ascii_case("false"));
        info.verb = if watch { "watch" } else { "list" }.to_string();
        // `fieldSelector=metadata.name=x` names one object (what resourceNames can match).
        if let Some(fs) = q.get("fieldSelector") {
            let exact = fs
                .strip_prefix("metadata.name==")
                .or_else(|| fs.strip_prefix("metadata.name="));
            if let Some(n) = exact.filter(|n| !n.contains(',') && !n.is_empty()) {
                info.name = n.to_string();
            }
        }
    }
    if via_method && info.name.is_empty() && info.verb == "delete" {
        info.verb = "deletecollection".to_string();
    }
    info
}

/// Non-resource paths every authenticated user may GET (system:discovery and
/// system:public-info-viewer).
fn open_path(path: &str) -> bool {
    const EXACT: &[&str] = &[
        "/api",
        "/apis",
        "/version",
        "/version/",
        "/openapi",
        "/healthz",
        "/livez",
        "/readyz",
    ];
    EXACT.contains(&path)
        || ["/api/", "/apis/", "/openapi/"]
            .iter()
            .any(|p| path.starts_with(p))
}

/// A Role bound to one user in one namespace.
#[derive(Debug, Clone)]
pub struct RoleGrant {
    /// `system:serviceaccount:NS:NAME` of the RoleBinding's subject.
    pub user: String,
    /// Where the Role and its binding live (they grant nothing elsewhere).
    pub namespace: String,
    pub role: String,
    pub rules: Vec<PolicyRule>,
}

fn has(list: &[String], want: &str) -> bool {
    list.iter().any(|v| v == "*" || v == want)
}

fn rule_allows(rule: &PolicyRule, a: &RequestAttributes) -> bool {
    if !has(&rule.verbs, &a.verb) {
        return false;
    }
    let groups = rule.api_groups.as_deref().unwrap_or_default();
    if !has(groups, &a.api_group) {
        return false;
    }
    let combined = a.resource_with_subresource();
    let resources = rule.resources.as_deref().unwrap_or_default();
    let resource_ok = resources.iter().any(|r| {
        r == "*"
            || *r == combined
            || (!a.subresource.is_empty()
                && (*r == format!("{}/*", a.resource) || *r == format!("*/{}", a.subresource)))
    });
    if !resource_ok {
        return false;
    }
    match rule.resource_names.as_deref() {
        None | Some([]) => true,
        Some(names) => !a.name.is_empty() && names.contains(&a.name),
    }
}

impl RoleGrant {
    /// Whether the Role lets its user make this request (open paths included).
    pub fn allows(&self, a: &RequestAttributes) -> bool {
        if !a.resource_request {
            return matches!(a.verb.as_str(), "get" | "head") && open_path(&a.path);
        }
        // A Role grants only in its own namespace; cluster-scoped requests need a ClusterRole.
        if a.namespace != self.namespace {
            return false;
        }
        self.rules.iter().any(|r| rule_allows(r, a))
    }
}

/// The Role and the RoleBinding of a multi-document RBAC manifest, applied in `namespace`
/// (as `kubectl apply -n NAMESPACE -f rbac.yaml` does). The binding must reference the Role
/// and bind one ServiceAccount, which becomes the user.
pub fn parse_manifest(text: &str, namespace: &str) -> Result<RoleGrant, String> {
    let mut roles: Vec<Role> = Vec::new();
    let mut bindings: Vec<RoleBinding> = Vec::new();
    let mut accounts: Vec<String> = Vec::new();
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(text).map_err(|e| format!("not valid YAML: {e}"))?;
    for (i, value) in docs.into_iter().enumerate() {
        if value.is_null() {
            continue;
        }
        let kind = value
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or_default()
            .to_string();
        let parse_err = |e: serde_json::Error| format!("document {} ({kind}): {e}", i + 1);
        match kind.as_str() {
            "Role" => roles.push(serde_json::from_value(value.clone()).map_err(parse_err)?),
            "RoleBinding" => {
                bindings.push(serde_json::from_value(value.clone()).map_err(parse_err)?)
            }
            "ServiceAccount" => accounts.push(
                value
                    .get("metadata")
                    .and_then(|m| m.get("name"))
                    .and_then(|n| n.as_str())
                    .unwrap_or_default()
                    .to_string(),
            ),
            other => return Err(format!("document {}: unexpected kind {other:?}", i + 1)),
        }
    }
    let [binding] = bindings.as_slice() else {
        return Err(format!(
            "expected one RoleBinding, found {}",
            bindings.len()
        ));
    };
    if binding.role_ref.kind != "Role" {
        return Err(format!(
            "the RoleBinding references a {}, expected a Role",
            binding.role_ref.kind
        ));
    }
    let role = roles
        .iter()
        .find(|r| r.metadata.name.as_deref() == Some(binding.role_ref.name.as_str()))
        .ok_or_else(|| format!("no Role named {:?}", binding.role_ref.name))?;
    let subjects = binding.subjects.as_deref().unwrap_or_default();
    let [subject] = subjects else {
        return Err(format!("expected one subject, found {}", subjects.len()));
    };
    if subject.kind != "ServiceAccount" {
        return Err(format!("subject kind {:?} is not supported", subject.kind));
    }
    if !accounts.contains(&subject.name) {
        return Err(format!(
            "the subject's ServiceAccount {:?} is not in the manifest",
            subject.name
        ));
    }
    let sa_ns = subject.namespace.as_deref().unwrap_or(namespace);
    Ok(RoleGrant {
        user: format!("system:serviceaccount:{sa_ns}:{}", subject.name),
        namespace: namespace.to_string(),
        role: binding.role_ref.name.clone(),
        rules: role.rules.clone().unwrap_or_default(),
    })
}

/// The real API server's 403 for a denied request.
pub(super) fn forbidden(user: &str, a: &RequestAttributes) -> Response<Body> {
    let resource = a.resource_with_subresource();
    let why = if !a.resource_request {
        format!("User \"{user}\" cannot {} path \"{}\"", a.verb, a.path)
    } else if a.namespace.is_empty() {
        format!(
            "User \"{user}\" cannot {} resource \"{resource}\" in API group \"{}\" at the cluster scope",
            a.verb, a.api_group
        )
    } else {
        format!(
            "User \"{user}\" cannot {} resource \"{resource}\" in API group \"{}\" in the namespace \"{}\"",
            a.verb, a.api_group, a.namespace
        )
    };
    let qualified = match (a.resource.as_str(), a.api_group.as_str()) {
        ("", _) => String::new(),
        (r, "") => r.to_string(),
        (r, g) => format!("{r}.{g}"),
    };
    let message = if qualified.is_empty() || !a.resource_request {
        format!("forbidden: {why}")
    } else if a.name.is_empty() {
        format!("{qualified} is forbidden: {why}")
    } else {
        format!("{qualified} \"{}\" is forbidden: {why}", a.name)
    };
    let details = StatusDetails {
        group: (!a.api_group.is_empty()).then(|| a.api_group.clone()),
        kind: (!a.resource.is_empty()).then(|| a.resource.clone()),
        name: (!a.name.is_empty()).then(|| a.name.clone()),
        ..StatusDetails::default()
    };
    http::json(
        StatusCode::FORBIDDEN,
        &http::status_object(403, "Forbidden", message, Some(details)),
    )
}

/// One authorization decision for a Role-bound token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub user: String,
    pub attributes: RequestAttributes,
    pub allowed: bool,
}

/// The tokens bound to Roles, and every decision made for them.
#[derive(Debug, Default)]
pub(super) struct Authorizer {
    grants: Mutex<Vec<(String, Arc<RoleGrant>)>>,
    decisions: Mutex<Vec<Decision>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Authorizer {
    /// The Role bound to `token`, if it is a Role token.
    pub fn grant(&self, token: &str) -> Option<Arc<RoleGrant>> {
        lock(&self.grants)
            .iter()
            .find(|(t, _)| t == token)
            .map(|(_, g)| g.clone())
    }

    /// Authorize one request of a Role token: `None` when allowed, else the 403 answer.
    pub fn check(
        &self,
        grant: &RoleGrant,
        method: &str,
        path: &str,
        query: Option<&str>,
    ) -> Option<Response<Body>> {
        let attributes = request_info(method, path, query);
        let allowed = grant.allows(&attributes);
        let answer = (!allowed).then(|| forbidden(&grant.user, &attributes));
        lock(&self.decisions).push(Decision {
            user: grant.user.clone(),
            attributes,
            allowed,
        });
        answer
    }
}

impl SimCluster {
    /// Apply an RBAC manifest (ServiceAccount + Role + RoleBinding, e.g. the text of
    /// `ci-templates/kubernetes/rbac.yaml`) in the cluster's namespace and return a new bearer
    /// token for the bound ServiceAccount: requests with it are allowed exactly what the Role
    /// grants (plus discovery), everything else gets 403. Panics on a manifest it cannot use.
    pub fn issue_token_for_role(&self, rbac_yaml: &str) -> String {
        let grant = parse_manifest(rbac_yaml, self.namespace())
            .unwrap_or_else(|e| panic!("sim-cluster: RBAC manifest: {e}"));
        let token = {
            let mut st = self.shared.lock();
            format!("sim-role-{}", st.rand_hex(40))
        };
        lock(&self.rbac.grants).push((token.clone(), Arc::new(grant)));
        token
    }

    /// A kubeconfig like `kubeconfig_path()`'s whose user authenticates with `token`
    /// (written into the rig's temp dir).
    pub fn kubeconfig_for_token(&self, token: &str) -> PathBuf {
        let tail = &token[token.len().saturating_sub(8)..];
        let path = self.work_dir().join(format!("kubeconfig-role-{tail}"));
        tls::write_kubeconfig(
            &path,
            &self.api_url(),
            self.ca_pem(),
            token,
            self.namespace(),
        )
        .expect("write the kubeconfig");
        path
    }

    /// Every authorization decision made for Role tokens so far, oldest first.
    pub fn rbac_decisions(&self) -> Vec<Decision> {
        lock(&self.rbac.decisions).clone()
    }
}
