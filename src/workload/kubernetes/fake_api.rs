//! Test-only stand-in for the Kubernetes API over plain HTTP: answers each request with the
//! first route whose path prefix matches (the query string is ignored), records request
//! lines, and hands out a `kube::Client` pointed at it. Used by the workload, metrics API and
//! VPA tests to check request paths and real response decoding; the full simulated cluster
//! lives in tests/e2e/support.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One canned answer: a request whose path starts with `prefix` gets `status` and `body`.
pub struct Route {
    pub prefix: &'static str,
    pub status: u16,
    pub body: String,
}

pub fn route(prefix: &'static str, status: u16, body: impl Into<String>) -> Route {
    Route {
        prefix,
        status,
        body: body.into(),
    }
}

/// A running fake API server and a client for it.
pub struct FakeApi {
    pub client: kube::Client,
    /// Request lines seen, e.g. `GET /api/v1/namespaces/staging/pods?labelSelector=app%3Dweb`.
    pub requests: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

pub async fn start(routes: Vec<Route>) -> FakeApi {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&requests);
    let routes = Arc::new(routes);
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let routes = Arc::clone(&routes);
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).into_owned();
                let line = head.lines().next().unwrap_or("").to_string();
                let target = line.split(' ').nth(1).unwrap_or("").to_string();
                let path = target.split('?').next().unwrap_or("");
                seen.lock()
                    .unwrap()
                    .push(line.trim_end_matches(" HTTP/1.1").to_string());
                let (status, body) = routes
                    .iter()
                    .find(|r| path.starts_with(r.prefix))
                    .map(|r| (r.status, r.body.clone()))
                    .unwrap_or((404, not_found()));
                let reply = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                sock.write_all(reply.as_bytes()).await.ok();
                sock.shutdown().await.ok();
            });
        }
    });
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
    FakeApi {
        client,
        requests,
        _dir: dir,
    }
}

/// The API server's answer for a path it does not serve.
pub fn not_found() -> String {
    status(
        404,
        "NotFound",
        "the server could not find the requested resource",
    )
}

/// A `metav1.Status` failure body.
pub fn status(code: u16, reason: &str, message: &str) -> String {
    serde_json::json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                        "message": message, "reason": reason, "code": code })
    .to_string()
}
