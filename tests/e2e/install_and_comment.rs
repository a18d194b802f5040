//! Installing oomgate and the comment where reviewers look (issue 17), end to end with the real
//! tools: the release tarball that scripts/release builds (static, runs in an empty root, its
//! SHA256SUMS line matches), and `oomgate report comment` / `--comment` against a stand-in of the
//! GitLab notes API and the GitHub issue-comments API on 127.0.0.1 (create, then update in
//! place by the marker; an API failure only warns; the token appears in no output).
//!
//! Self-contained: the HTTP stand-in is a few std threads; nothing from tests/support.
//! The act and gitlab-ci-local runs of the templates installing from a local server are in
//! scripts/validate-ci.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

const GITLAB_TOKEN: &str = "glcbt-64_SECRETjobtoken123";
const GITHUB_TOKEN: &str = "ghs_SECRETgithubtoken456";

fn oomgate() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_oomgate"))
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A test that needs `tool`: false (skip) without it, a failure under CI=true.
fn have_tool(tool: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    if !found {
        assert!(
            !in_ci(),
            "{tool} is needed by this test and CI=true: failing instead of skipping"
        );
        eprintln!("note: skipping: {tool} is not on PATH");
    }
    found
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

// --- a stand-in HTTP API on 127.0.0.1 --------------------------------------------------------

#[derive(Debug, Clone)]
struct Request {
    method: String,
    /// Path and query.
    target: String,
    headers: HashMap<String, String>,
    body: String,
}

impl Request {
    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

type Handler = dyn Fn(&Request) -> (u16, String) + Send + Sync;

/// Serves every connection with `handler` and records the requests.
struct StandIn {
    base: String,
    log: Arc<Mutex<Vec<Request>>>,
}

impl StandIn {
    fn start(handler: Box<Handler>) -> StandIn {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::from(handler);
        let rec = log.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (handler, rec) = (handler.clone(), rec.clone());
                std::thread::spawn(move || serve(stream, &*handler, &rec));
            }
        });
        StandIn { base, log }
    }

    fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }

    fn clear(&self) {
        self.log.lock().unwrap().clear();
    }
}

fn serve(stream: TcpStream, handler: &Handler, log: &Mutex<Vec<Request>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
            return;
        };
        let (method, target) = (method.to_string(), target.to_string());
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let req = Request {
            method,
            target,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        };
        let (status, reply) = handler(&req);
        log.lock().unwrap().push(req);
        let head = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            reply.len()
        );
        if out.write_all(head.as_bytes()).is_err() || out.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// Comments of one review as a forge keeps them: id and body, in order.
#[derive(Default)]
struct Thread {
    comments: Vec<(u64, String)>,
    next_id: u64,
}

/// The GitLab notes API of project 42, merge request 7, behind `JOB-TOKEN`.
fn gitlab_api(thread: Arc<Mutex<Thread>>) -> Box<Handler> {
    Box::new(move |req| {
        if req.header("job-token") != Some(GITLAB_TOKEN) {
            return (401, r#"{"message":"401 Unauthorized"}"#.into());
        }
        let notes = "/api/v4/projects/42/merge_requests/7/notes";
        let mut t = thread.lock().unwrap();
        match (req.method.as_str(), req.path()) {
            ("GET", p) if p == notes => {
                let list: Vec<_> = t
                    .comments
                    .iter()
                    .map(
                        |(id, body)| serde_json::json!({ "id": id, "body": body, "system": false }),
                    )
                    .collect();
                (200, serde_json::to_string(&list).unwrap())
            }
            ("POST", p) if p == notes => {
                t.next_id += 1;
                let id = 1000 + t.next_id;
                let body = req.json()["body"].as_str().unwrap_or("").to_string();
                t.comments.push((id, body.clone()));
                (
                    201,
                    serde_json::json!({ "id": id, "body": body }).to_string(),
                )
            }
            ("PUT", p) if p.starts_with(&format!("{notes}/")) => {
                let id: u64 = p.rsplit('/').next().unwrap().parse().unwrap_or(0);
                let body = req.json()["body"].as_str().unwrap_or("").to_string();
                match t.comments.iter_mut().find(|(i, _)| *i == id) {
                    Some(c) => {
                        c.1 = body.clone();
                        (
                            200,
                            serde_json::json!({ "id": id, "body": body }).to_string(),
                        )
                    }
                    None => (404, r#"{"message":"404 Not found"}"#.into()),
                }
            }
            _ => (404, r#"{"message":"404 Not found"}"#.into()),
        }
    })
}

/// The GitHub issue-comments API of acme/shop, pull request 5, behind `Authorization: Bearer`.
fn github_api(thread: Arc<Mutex<Thread>>) -> Box<Handler> {
    Box::new(move |req| {
        if req.header("authorization") != Some(&format!("Bearer {GITHUB_TOKEN}")) {
            return (401, r#"{"message":"Bad credentials"}"#.into());
        }
        let comments = "/repos/acme/shop/issues/5/comments";
        let mut t = thread.lock().unwrap();
        match (req.method.as_str(), req.path()) {
            ("GET", p) if p == comments => {
                let list: Vec<_> = t
                    .comments
                    .iter()
                    .map(|(id, body)| serde_json::json!({ "id": id, "body": body }))
                    .collect();
                (200, serde_json::to_string(&list).unwrap())
            }
            ("POST", p) if p == comments => {
                t.next_id += 1;
                let id = 500 + t.next_id;
                let body = req.json()["body"].as_str().unwrap_or("").to_string();
                t.comments.push((id, body.clone()));
                (
                    201,
                    serde_json::json!({ "id": id, "body": body }).to_string(),
                )
            }
            ("PATCH", p) if p.starts_with("/repos/acme/shop/issues/comments/") => {
                let id: u64 = p.rsplit('/').next().unwrap().parse().unwrap_or(0);
                let body = req.json()["body"].as_str().unwrap_or("").to_string();
                match t.comments.iter_mut().find(|(i, _)| *i == id) {
                    Some(c) => {
                        c.1 = body.clone();
                        (
                            200,
                            serde_json::json!({ "id": id, "body": body }).to_string(),
                        )
                    }
                    None => (404, r#"{"message":"Not Found"}"#.into()),
                }
            }
            _ => (404, r#"{"message":"Not Found"}"#.into()),
        }
    })
}

/// A report directory with a summary.md whose verdict line is `verdict`.
fn report_dir(verdict: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("summary.md"),
        format!(
            "## oomgate {verdict}: checkout-api\n\n**app: peak 870 MiB against the 1 GiB limit**\n"
        ),
    )
    .unwrap();
    dir
}

/// `oomgate ARGS` with only `vars` (and PATH/HOME) in its environment: nothing of the CI this
/// test may itself run in leaks in.
fn oomgate_with(args: &[&str], vars: &[(&str, String)], cwd: &Path) -> Output {
    let mut cmd = Command::new(oomgate());
    cmd.args(args).current_dir(cwd).env_clear();
    for keep in ["PATH", "HOME", "TMPDIR"] {
        if let Some(v) = std::env::var_os(keep) {
            cmd.env(keep, v);
        }
    }
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn gitlab_env(api: &StandIn) -> Vec<(&'static str, String)> {
    vec![
        ("GITLAB_CI", "true".into()),
        ("CI_API_V4_URL", format!("{}/api/v4", api.base)),
        ("CI_PROJECT_ID", "42".into()),
        ("CI_MERGE_REQUEST_IID", "7".into()),
        ("CI_JOB_TOKEN", GITLAB_TOKEN.into()),
        ("CI_JOB_URL", format!("{}/acme/shop/-/jobs/9", api.base)),
    ]
}

fn github_env(api: &StandIn, event: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("GITHUB_ACTIONS", "true".into()),
        ("GITHUB_API_URL", api.base.clone()),
        ("GITHUB_REPOSITORY", "acme/shop".into()),
        ("GITHUB_EVENT_NAME", "pull_request".into()),
        ("GITHUB_EVENT_PATH", event.display().to_string()),
        ("GITHUB_TOKEN", GITHUB_TOKEN.into()),
        ("GITHUB_SERVER_URL", "https://github.com".into()),
        ("GITHUB_RUN_ID", "77".into()),
    ]
}

fn assert_no_token(out: &Output) {
    let all = text(out);
    for token in [GITLAB_TOKEN, GITHUB_TOKEN] {
        assert!(!all.contains(token), "the token is in the output:\n{all}");
    }
}

#[test]
fn comment_gitlab_creates_then_updates_the_same_note() {
    let thread = Arc::new(Mutex::new(Thread::default()));
    // Someone else's note comes first: it has no marker and is left alone.
    thread
        .lock()
        .unwrap()
        .comments
        .push((1, "LGTM, but what about memory?".into()));
    let api = StandIn::start(gitlab_api(thread.clone()));
    let first = report_dir("PASS");

    let out = oomgate_with(&["report", "comment", "."], &gitlab_env(&api), first.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("posted on merge request !7"),
        "{}",
        text(&out)
    );
    assert_no_token(&out);
    let reqs = api.requests();
    let methods: Vec<_> = reqs.iter().map(|r| (r.method.as_str(), r.path())).collect();
    assert_eq!(
        methods,
        [
            ("GET", "/api/v4/projects/42/merge_requests/7/notes"),
            ("POST", "/api/v4/projects/42/merge_requests/7/notes"),
        ]
    );
    let posted = reqs[1].json()["body"].as_str().unwrap().to_string();
    assert!(posted.starts_with("<!-- oomgate:comment -->\n"), "{posted}");
    assert!(posted.contains("oomgate PASS: checkout-api"), "{posted}");
    assert!(posted.contains("/acme/shop/-/jobs/9"), "{posted}");
    assert!(reqs
        .iter()
        .all(|r| r.header("job-token") == Some(GITLAB_TOKEN)));

    // The next pipeline: the same note is updated, no new one.
    api.clear();
    let second = report_dir("FAIL");
    let out = oomgate_with(
        &["report", "comment", "."],
        &gitlab_env(&api),
        second.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("updated on merge request !7"),
        "{}",
        text(&out)
    );
    assert_no_token(&out);
    let reqs = api.requests();
    let methods: Vec<_> = reqs.iter().map(|r| (r.method.as_str(), r.path())).collect();
    assert_eq!(
        methods,
        [
            ("GET", "/api/v4/projects/42/merge_requests/7/notes"),
            ("PUT", "/api/v4/projects/42/merge_requests/7/notes/1001"),
        ]
    );
    let updated = reqs[1].json()["body"].as_str().unwrap().to_string();
    assert!(updated.starts_with("<!-- oomgate:comment -->\n") && updated.contains("oomgate FAIL"));
    let t = thread.lock().unwrap();
    assert_eq!(t.comments.len(), 2, "{:?}", t.comments);
    assert_eq!(t.comments[0].1, "LGTM, but what about memory?");
    assert!(t.comments[1].1.contains("oomgate FAIL"));
}

#[test]
fn comment_github_creates_then_updates_the_same_comment() {
    let thread = Arc::new(Mutex::new(Thread::default()));
    let api = StandIn::start(github_api(thread.clone()));
    let first = report_dir("PASS");
    let event = first.path().join("event.json");
    std::fs::write(
        &event,
        r#"{"action":"synchronize","number":5,"pull_request":{"number":5}}"#,
    )
    .unwrap();
    let env = github_env(&api, &event);

    let out = oomgate_with(&["report", "comment", "."], &env, first.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("posted on pull request #5"),
        "{}",
        text(&out)
    );
    assert_no_token(&out);
    let reqs = api.requests();
    let methods: Vec<_> = reqs.iter().map(|r| (r.method.as_str(), r.path())).collect();
    assert_eq!(
        methods,
        [
            ("GET", "/repos/acme/shop/issues/5/comments"),
            ("POST", "/repos/acme/shop/issues/5/comments"),
        ]
    );
    let posted = reqs[1].json()["body"].as_str().unwrap().to_string();
    assert!(posted.starts_with("<!-- oomgate:comment -->\n") && posted.contains("oomgate PASS"));
    assert!(
        posted.contains("https://github.com/acme/shop/actions/runs/77"),
        "{posted}"
    );
    assert_eq!(
        reqs[1].header("accept"),
        Some("application/vnd.github+json")
    );

    api.clear();
    std::fs::write(
        first.path().join("summary.md"),
        "## oomgate FAIL: checkout-api\n",
    )
    .unwrap();
    let out = oomgate_with(&["report", "comment", "."], &env, first.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("updated on pull request #5"),
        "{}",
        text(&out)
    );
    assert_no_token(&out);
    let reqs = api.requests();
    let methods: Vec<_> = reqs.iter().map(|r| (r.method.as_str(), r.path())).collect();
    assert_eq!(
        methods,
        [
            ("GET", "/repos/acme/shop/issues/5/comments"),
            ("PATCH", "/repos/acme/shop/issues/comments/501"),
        ]
    );
    let updated = reqs[1].json()["body"].as_str().unwrap().to_string();
    assert!(updated.starts_with("<!-- oomgate:comment -->\n") && updated.contains("oomgate FAIL"));
    assert_eq!(thread.lock().unwrap().comments.len(), 1);

    // A second gate on the same pull request (another key) gets its own comment.
    api.clear();
    let out = oomgate_with(
        &["report", "comment", ".", "--comment-key", "payments"],
        &env,
        first.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let reqs = api.requests();
    assert_eq!(reqs.last().unwrap().method, "POST");
    let t = thread.lock().unwrap();
    assert_eq!(t.comments.len(), 2);
    assert!(t.comments[1]
        .1
        .starts_with("<!-- oomgate:comment:payments -->\n"));
}

/// A failing API: every call answers 500 with a body that echoes the token it was sent.
fn failing_api() -> StandIn {
    StandIn::start(Box::new(|req| {
        let sent = req
            .header("authorization")
            .or(req.header("job-token"))
            .or(req.header("private-token"))
            .unwrap_or("")
            .to_string();
        (
            500,
            format!(r#"{{"message":"internal error while checking {sent}"}}"#),
        )
    }))
}

#[test]
fn comment_api_500_only_warns_and_leaks_no_token() {
    let api = failing_api();
    let dir = report_dir("PASS");
    for env in [
        gitlab_env(&api),
        github_env(&api, &dir.path().join("no-event.json")),
    ] {
        let mut env = env;
        env.push(("OOMGATE_COMMENT_NUMBER", "5".into()));
        let out = oomgate_with(&["report", "comment", "."], &env, dir.path());
        let all = text(&out);
        assert_eq!(out.status.code(), Some(0), "{all}");
        assert!(
            all.contains("oomgate: warning: the comment was not posted"),
            "{all}"
        );
        assert!(all.contains("HTTP 500"), "{all}");
        assert_no_token(&out);
    }
    // Nothing to talk to at all (connection refused): a warning too.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let gone = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let mut env = gitlab_env(&api);
    env[1].1 = format!("{gone}/api/v4");
    let out = oomgate_with(&["report", "comment", "."], &env, dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("warning"), "{}", text(&out));
    assert_no_token(&out);
    // Outside a merge request pipeline there is nothing to comment on: a note, exit 0, no call.
    let branch: Vec<_> = gitlab_env(&api)
        .into_iter()
        .filter(|(k, _)| *k != "CI_MERGE_REQUEST_IID")
        .collect();
    api.clear();
    let out = oomgate_with(&["report", "comment", "."], &branch, dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("not a merge request pipeline"),
        "{}",
        text(&out)
    );
    assert!(api.requests().is_empty());
    // No summary.md: a usage error (2), before any call.
    let empty = tempfile::tempdir().unwrap();
    let out = oomgate_with(&["report", "comment", "."], &gitlab_env(&api), empty.path());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(api.requests().is_empty());
}

/// The bundled demo service with a 48 MiB baseline under a 64 MiB limit and 50 % headroom: the
/// gate fails on `headroom` whatever the machine's speed.
const FAILING_SCENARIO: &str = r#"
name: comment-exit-code
workload:
  local:
    command: [ "${OOMGATE_BIN}", demo-service, --listen, "127.0.0.1:{PORT}", --baseline, 48Mi, --keep-per-request, "0", --max-bytes, 60Mi ]
    ready_url: http://127.0.0.1:{PORT}/healthz
    ready_timeout: 10s
    limit: 64Mi
    container: demo
load:
  driver: goose
  stages:
    - { duration: 2s, users: 2 }
    - { duration: 3s, users: 2 }
  requests:
    - { name: list users, method: GET, path: /api/users, weight: 1, expect_status: 200 }
  think_time: 20ms
memory:
  source: cgroup
  interval: 250ms
policy:
  headroom: 50%
  min_coverage: 50%
"#;

/// `--comment` on a real gate run that fails (1) while the API answers 500: the exit code is
/// still the verdict's, the comment only warns.
#[test]
fn comment_flag_keeps_the_gate_exit_code_when_the_api_fails() {
    let api = failing_api();
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let scenario = dir.path().join("scenario.yaml");
    std::fs::write(
        &scenario,
        FAILING_SCENARIO.replace("{PORT}", &port.to_string()),
    )
    .unwrap();
    let event = dir.path().join("event.json");
    std::fs::write(&event, r#"{"pull_request":{"number":5}}"#).unwrap();
    let out = oomgate_with(
        &["run", "scenario.yaml", "--out", "report", "--comment", "-q"],
        &github_env(&api, &event),
        dir.path(),
    );
    let all = text(&out);
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("report/report.json"))
            .unwrap_or_else(|e| panic!("no report.json ({e}):\n{all}")),
    )
    .unwrap();
    assert_eq!(report["verdict"], "fail", "{all}");
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert_eq!(report["exit_code"], 1);
    assert!(
        all.contains("the comment was not posted") && all.contains("HTTP 500"),
        "{all}"
    );
    assert_no_token(&out);
    let reqs = api.requests();
    assert_eq!(
        reqs.first().map(|r| r.method.as_str()),
        Some("GET"),
        "{reqs:?}"
    );
    assert_eq!(
        reqs[0].header("authorization"),
        Some(&*format!("Bearer {GITHUB_TOKEN}"))
    );
}

// --- the release tarball -------------------------------------------------------------------

/// scripts/release with the cheap `ci-static` profile into a temp dir (scripts/validate-ci
/// builds the same target dir first, so this is a no-op build when it ran).
#[test]
fn release_tarball_is_static_runs_and_matches_its_checksum() {
    for tool in ["file", "ldd", "tar", "sha256sum", "gzip"] {
        if !have_tool(tool) {
            return;
        }
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dist = tempfile::tempdir().unwrap();
    let out = Command::new(repo.join("scripts/release"))
        .arg(dist.path())
        .env("OOMGATE_RELEASE_PROFILE", "ci-static")
        .env_remove("OOMGATE_RELEASE_TARGET")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scripts/release failed:\n{}",
        text(&out)
    );
    let version = env!("CARGO_PKG_VERSION");
    let name = format!("oomgate-{version}-x86_64-unknown-linux-gnu");
    let tarball = dist.path().join(format!("{name}.tar.gz"));
    assert!(tarball.is_file(), "{}", text(&out));

    // SHA256SUMS names the tarball with its real checksum, in the format `sha256sum -c` reads.
    let sums = std::fs::read_to_string(dist.path().join("SHA256SUMS")).unwrap();
    let line = sums
        .lines()
        .find(|l| l.ends_with(&format!("  {name}.tar.gz")))
        .unwrap_or_else(|| panic!("no line for {name}.tar.gz in SHA256SUMS:\n{sums}"));
    let actual = Command::new("sha256sum").arg(&tarball).output().unwrap();
    let actual = String::from_utf8_lossy(&actual.stdout);
    assert_eq!(
        line.split_whitespace().next(),
        actual.split_whitespace().next()
    );
    let check = Command::new("sha256sum")
        .args(["-c", "SHA256SUMS"])
        .current_dir(dist.path())
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", text(&check));

    // Unpacked: one directory with the binary, which is static and runs.
    let unpacked = tempfile::tempdir().unwrap();
    let tar = Command::new("tar")
        .arg("-xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(unpacked.path())
        .output()
        .unwrap();
    assert!(tar.status.success(), "{}", text(&tar));
    let bin = unpacked.path().join(&name).join("oomgate");
    let file = Command::new("file").arg("-b").arg(&bin).output().unwrap();
    let file = String::from_utf8_lossy(&file.stdout).to_string();
    assert!(
        file.contains("statically linked") || file.contains("static-pie linked"),
        "file says: {file}"
    );
    assert!(file.contains("x86-64"), "file says: {file}");
    let ldd = Command::new("ldd").arg(&bin).output().unwrap();
    let ldd = text(&ldd);
    assert!(
        ldd.contains("not a dynamic executable") || ldd.contains("statically linked"),
        "ldd says: {ldd}"
    );
    let v = Command::new(&bin).arg("--version").output().unwrap();
    assert!(v.status.success(), "{}", text(&v));
    assert_eq!(
        String::from_utf8_lossy(&v.stdout).trim(),
        format!("oomgate {version}")
    );

    // In an empty root (no /lib, no loader, nothing of this machine) it still runs.
    if unsafe { geteuid() } == 0 && have_tool("chroot") {
        let jail = tempfile::tempdir().unwrap();
        std::fs::copy(&bin, jail.path().join("oomgate")).unwrap();
        let v = Command::new("chroot")
            .arg(jail.path())
            .args(["/oomgate", "--version"])
            .output()
            .unwrap();
        assert!(v.status.success(), "in an empty root: {}", text(&v));
        assert_eq!(
            String::from_utf8_lossy(&v.stdout).trim(),
            format!("oomgate {version}")
        );
    } else {
        assert!(
            !in_ci(),
            "the empty-root run needs root and chroot, and CI=true"
        );
    }
}

extern "C" {
    fn geteuid() -> u32;
}
