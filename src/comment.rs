//! The verdict where reviewers look: posts a report directory's `summary.md` as a comment on the
//! merge request (GitLab notes API) or pull request (GitHub issue-comments API), and on later
//! runs updates that same comment in place, found by a hidden marker (`<!-- oomgate:comment -->`,
//! or `<!-- oomgate:comment:KEY -->` for one of several gates on the same review). It owns the
//! CI-environment lookup (which forge, project, review number, token), the HTTP calls and the
//! comment body; `app` calls it after the reports are written (`--comment`) or from
//! `oomgate report comment`. Nothing here changes a verdict: every failure is a
//! `CommentError` that the caller prints as a warning. Tokens travel only in request headers and
//! are scrubbed from every message (`redact::scrub`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::redact;

/// The hidden first line of every comment oomgate posts.
pub const MARKER: &str = "<!-- oomgate:comment -->";

/// GitHub refuses comments above 65 536 characters; GitLab notes allow more. One limit for both.
const MAX_BODY_CHARS: usize = 65_000;
const PER_PAGE: usize = 100;
/// At most this many pages of comments are searched for the marker (10 000 comments).
const MAX_PAGES: usize = 100;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Which API the comment goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forge {
    GitLab,
    GitHub,
}

/// What the caller asked for; every field may be left to the CI environment.
#[derive(Debug, Clone, Default)]
pub struct CommentRequest {
    /// `None`: GitLab under `GITLAB_CI=true`, GitHub under `GITHUB_ACTIONS=true`.
    pub forge: Option<Forge>,
    /// The environment variable holding the token (never the token itself).
    pub token_env: Option<String>,
    /// Tells this gate's comment from another gate's on the same review.
    pub key: Option<String>,
    /// The merge request iid / pull request number, instead of the CI environment's.
    pub number: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum CommentError {
    #[error("{}: cannot read the summary: {source} (write it with `oomgate run --out DIR`)", .path.display())]
    Summary {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("neither GITLAB_CI nor GITHUB_ACTIONS is true: say where to post with --comment-to gitlab|github")]
    NoForge,
    #[error("no token for the {forge} API: set {vars}")]
    NoToken { forge: &'static str, vars: String },
    #[error("{var} is not set: {hint}")]
    MissingVar {
        var: &'static str,
        hint: &'static str,
    },
    #[error("{what}: {detail}")]
    Invalid { what: String, detail: String },
    #[error("building the HTTP client: {0}")]
    Setup(String),
    #[error("{method} {url}: {detail}")]
    Transport {
        method: Method,
        url: String,
        detail: String,
    },
    #[error("{method} {url}: HTTP {status}{detail}")]
    Status {
        method: Method,
        url: String,
        status: StatusCode,
        detail: String,
    },
    #[error("{method} {url}: unexpected answer: {detail}")]
    Decode {
        method: Method,
        url: String,
        detail: String,
    },
}

/// Where the comment goes, resolved from the request and the environment.
pub struct Target {
    forge: Forge,
    /// API base without a trailing `/`: `…/api/v4` or `https://api.github.com`.
    api: String,
    /// GitLab: the project id (URL-encoded); GitHub: `owner/name`.
    project: String,
    number: u64,
    token: String,
    /// The header the token is sent in: `PRIVATE-TOKEN`, `JOB-TOKEN` or `Authorization`.
    token_header: &'static str,
    /// Where the token came from, for messages.
    pub token_env: String,
    marker: String,
    /// A link to the CI job, for the footer.
    job_url: Option<String>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("forge", &self.forge)
            .field("api", &redact::url(&self.api))
            .field("project", &self.project)
            .field("number", &self.number)
            .field("token", &"***")
            .field("token_env", &self.token_env)
            .finish()
    }
}

/// `resolve`'s answer: a target, or why there is nothing to comment on (not an error: a branch
/// pipeline has no merge request).
#[derive(Debug)]
pub enum Resolved {
    Target(Box<Target>),
    NoReview(String),
}

/// What was done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Posted {
    Created { id: u64 },
    Updated { id: u64 },
}

impl Target {
    /// "merge request !12" / "pull request #12".
    pub fn review(&self) -> String {
        match self.forge {
            Forge::GitLab => format!("merge request !{}", self.number),
            Forge::GitHub => format!("pull request #{}", self.number),
        }
    }
}

/// The marker for `key`: letters, digits, `.`, `_` and `-` only, so it cannot end the HTML comment.
pub fn marker(key: Option<&str>) -> Result<String, CommentError> {
    match key.map(str::trim).filter(|k| !k.is_empty()) {
        None => Ok(MARKER.to_string()),
        Some(k)
            if k.len() <= 100
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) =>
        {
            Ok(format!("<!-- oomgate:comment:{k} -->"))
        }
        Some(k) => Err(CommentError::Invalid {
            what: "the comment key".into(),
            detail: format!(
                "{:?}: use letters, digits, '.', '_' and '-' (at most 100)",
                redact::url(k)
            ),
        }),
    }
}

/// Finds forge, project, review number and token in the request and the environment (`env`
/// looks a variable up; empty values count as unset).
pub fn resolve(
    req: &CommentRequest,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Resolved, CommentError> {
    let env = |n: &str| env(n).filter(|v| !v.trim().is_empty());
    let marker = marker(req.key.as_deref())?;
    let forge = match req.forge {
        Some(f) => f,
        None if env("GITLAB_CI").as_deref() == Some("true") => Forge::GitLab,
        None if env("GITHUB_ACTIONS").as_deref() == Some("true") => Forge::GitHub,
        None => return Err(CommentError::NoForge),
    };
    let token_from = |defaults: &[&'static str]| -> Option<(String, String)> {
        match &req.token_env {
            Some(var) => env(var).map(|t| (var.clone(), t)),
            None => defaults
                .iter()
                .find_map(|&var| env(var).map(|t| (var.to_string(), t))),
        }
    };
    let no_token = |forge: &'static str, defaults: &str| CommentError::NoToken {
        forge,
        vars: req
            .token_env
            .clone()
            .unwrap_or_else(|| defaults.to_string()),
    };
    match forge {
        Forge::GitLab => {
            let number = match req.number {
                Some(n) => n,
                None => match env("CI_MERGE_REQUEST_IID") {
                    None => return Ok(Resolved::NoReview(
                        "not a merge request pipeline (CI_MERGE_REQUEST_IID is unset): no comment"
                            .into(),
                    )),
                    Some(v) => parse_number("CI_MERGE_REQUEST_IID", &v)?,
                },
            };
            let api = env("CI_API_V4_URL").ok_or(CommentError::MissingVar {
                var: "CI_API_V4_URL",
                hint: "GitLab CI sets it (e.g. https://gitlab.example.com/api/v4)",
            })?;
            let project = env("CI_PROJECT_ID").ok_or(CommentError::MissingVar {
                var: "CI_PROJECT_ID",
                hint: "GitLab CI sets it (the project's numeric id or its URL-encoded path)",
            })?;
            let (token_env, token) = token_from(&["OOMGATE_GITLAB_TOKEN", "CI_JOB_TOKEN"])
                .ok_or_else(|| no_token("GitLab", "OOMGATE_GITLAB_TOKEN (a project access token with the api scope) or CI_JOB_TOKEN"))?;
            let token_header = if token_env == "CI_JOB_TOKEN" {
                "JOB-TOKEN"
            } else {
                "PRIVATE-TOKEN"
            };
            Ok(Resolved::Target(Box::new(Target {
                forge,
                api: base_url("CI_API_V4_URL", &api)?,
                project: project.trim().replace('/', "%2F"),
                number,
                token,
                token_header,
                token_env,
                marker,
                job_url: env("CI_JOB_URL"),
            })))
        }
        Forge::GitHub => {
            let number = match req.number {
                Some(n) => n,
                None => match github_pr_number(&env) {
                    Some(n) => n,
                    None => {
                        return Ok(Resolved::NoReview(
                            "not a pull request event (no pull request number in GITHUB_EVENT_PATH or GITHUB_REF): no comment".into(),
                        ))
                    }
                },
            };
            let api = env("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".into());
            let repo = env("GITHUB_REPOSITORY").ok_or(CommentError::MissingVar {
                var: "GITHUB_REPOSITORY",
                hint: "GitHub Actions sets it (owner/name)",
            })?;
            let valid_repo = repo.split('/').count() == 2
                && repo.split('/').all(|p| {
                    !p.is_empty()
                        && p.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
                });
            if !valid_repo {
                return Err(CommentError::Invalid {
                    what: "GITHUB_REPOSITORY".into(),
                    detail: format!("{repo:?} is not owner/name"),
                });
            }
            let (token_env, token) = token_from(&["OOMGATE_GITHUB_TOKEN", "GITHUB_TOKEN"])
                .ok_or_else(|| no_token("GitHub", "GITHUB_TOKEN (env: GITHUB_TOKEN: ${{ github.token }}, with permissions: pull-requests: write)"))?;
            let job_url = match (env("GITHUB_SERVER_URL"), env("GITHUB_RUN_ID")) {
                (Some(server), Some(run)) => Some(format!(
                    "{}/{repo}/actions/runs/{run}",
                    server.trim_end_matches('/')
                )),
                _ => None,
            };
            Ok(Resolved::Target(Box::new(Target {
                forge,
                api: base_url("GITHUB_API_URL", &api)?,
                project: repo,
                number,
                token,
                token_header: "Authorization",
                token_env,
                marker,
                job_url,
            })))
        }
    }
}

fn parse_number(var: &str, v: &str) -> Result<u64, CommentError> {
    v.trim()
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| CommentError::Invalid {
            what: var.to_string(),
            detail: format!("{v:?} is not a merge request number"),
        })
}

fn base_url(var: &str, v: &str) -> Result<String, CommentError> {
    let v = v.trim().trim_end_matches('/');
    match reqwest::Url::parse(v) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(v.to_string()),
        _ => Err(CommentError::Invalid {
            what: var.to_string(),
            detail: format!("{} is not an http(s) URL", redact::url(v)),
        }),
    }
}

/// The pull request of a `pull_request`/`pull_request_target` event: the event payload's
/// `pull_request.number`, else `refs/pull/N/merge` in GITHUB_REF.
fn github_pr_number(env: &impl Fn(&str) -> Option<String>) -> Option<u64> {
    let from_event = env("GITHUB_EVENT_PATH")
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|e| e.pointer("/pull_request/number").and_then(Value::as_u64));
    from_event.or_else(|| {
        env("GITHUB_REF")?
            .strip_prefix("refs/pull/")?
            .split('/')
            .next()?
            .parse()
            .ok()
    })
}

/// The comment: the marker, summary.md, a footer with the job's link.
pub fn body(summary: &str, target: &Target) -> String {
    let mut footer = format!(
        "\n\n<sub>Posted by oomgate {}; updated in place on every run",
        env!("CARGO_PKG_VERSION")
    );
    if let Some(url) = &target.job_url {
        footer.push_str(&format!(
            ". [Job and full reports]({})",
            redact::url(url).replace(')', "%29")
        ));
    }
    footer.push_str(".</sub>\n");
    let head = format!("{}\n", target.marker);
    let room = MAX_BODY_CHARS.saturating_sub(head.chars().count() + footer.chars().count());
    let summary = summary.trim_end();
    let text = if summary.chars().count() <= room {
        summary.to_string()
    } else {
        let note = "\n\n_… cut to fit a comment: the job's report.html has everything._";
        let keep: String = summary
            .chars()
            .take(room.saturating_sub(note.chars().count()))
            .collect();
        let keep = keep.rfind('\n').map(|i| &keep[..i]).unwrap_or(&keep);
        format!("{keep}{note}")
    };
    format!("{head}{text}{footer}")
}

/// Reads `DIR/summary.md`.
pub fn read_summary(dir: &Path) -> Result<String, CommentError> {
    let path = dir.join("summary.md");
    std::fs::read_to_string(&path).map_err(|source| CommentError::Summary { path, source })
}

/// Posts `body` on the review, or updates oomgate's earlier comment there (the first one that
/// carries the marker). An update the API refuses (403/404: the marked comment is someone
/// else's, or gone) becomes a new comment.
pub async fn post(target: &Target, body: &str) -> Result<Posted, CommentError> {
    let http = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("oomgate/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| CommentError::Setup(crate::cluster::error_chain(&e.without_url())))?;
    let api = Api { http, target };
    if let Some(id) = api.find().await? {
        match api.update(id, body).await {
            Ok(()) => return Ok(Posted::Updated { id }),
            Err(CommentError::Status { status, .. })
                if status == StatusCode::FORBIDDEN || status == StatusCode::NOT_FOUND =>
            {
                log::warn!("could not update comment {id} (HTTP {status}): posting a new one");
            }
            Err(e) => return Err(e),
        }
    }
    let id = api.create(body).await?;
    Ok(Posted::Created { id })
}

struct Api<'a> {
    http: reqwest::Client,
    target: &'a Target,
}

impl Api<'_> {
    /// The collection of the review's comments.
    fn comments_url(&self) -> String {
        let t = self.target;
        match t.forge {
            Forge::GitLab => format!(
                "{}/projects/{}/merge_requests/{}/notes",
                t.api, t.project, t.number
            ),
            Forge::GitHub => format!("{}/repos/{}/issues/{}/comments", t.api, t.project, t.number),
        }
    }

    fn comment_url(&self, id: u64) -> String {
        let t = self.target;
        match t.forge {
            Forge::GitLab => format!("{}/{id}", self.comments_url()),
            Forge::GitHub => format!("{}/repos/{}/issues/comments/{id}", t.api, t.project),
        }
    }

    /// The id of the first comment carrying the marker.
    async fn find(&self) -> Result<Option<u64>, CommentError> {
        let order = match self.target.forge {
            Forge::GitLab => "&sort=asc&order_by=created_at",
            Forge::GitHub => "",
        };
        for page in 1..=MAX_PAGES {
            let url = format!(
                "{}?per_page={PER_PAGE}&page={page}{order}",
                self.comments_url()
            );
            let list = self.call(Method::GET, &url, None).await?;
            let Some(items) = list.as_array() else {
                return Err(self.decode(Method::GET, &url, "expected a list of comments"));
            };
            for item in items {
                let carries = item
                    .get("body")
                    .and_then(Value::as_str)
                    .is_some_and(|b| b.lines().any(|l| l.trim() == self.target.marker));
                if carries {
                    return match item.get("id").and_then(Value::as_u64) {
                        Some(id) => Ok(Some(id)),
                        None => Err(self.decode(Method::GET, &url, "a comment without an id")),
                    };
                }
            }
            if items.len() < PER_PAGE {
                break;
            }
        }
        Ok(None)
    }

    async fn create(&self, body: &str) -> Result<u64, CommentError> {
        let url = self.comments_url();
        let made = self
            .call(
                Method::POST,
                &url,
                Some(serde_json::json!({ "body": body })),
            )
            .await?;
        made.get("id")
            .and_then(Value::as_u64)
            .ok_or_else(|| self.decode(Method::POST, &url, "no id in the created comment"))
    }

    async fn update(&self, id: u64, body: &str) -> Result<(), CommentError> {
        let method = match self.target.forge {
            Forge::GitLab => Method::PUT,
            Forge::GitHub => Method::PATCH,
        };
        let url = self.comment_url(id);
        self.call(method, &url, Some(serde_json::json!({ "body": body })))
            .await
            .map(|_| ())
    }

    fn decode(&self, method: Method, url: &str, detail: &str) -> CommentError {
        CommentError::Decode {
            method,
            url: self.shown(url),
            detail: detail.to_string(),
        }
    }

    /// A URL as messages show it: no credentials, no token.
    fn shown(&self, url: &str) -> String {
        redact::scrub(&redact::url(url), &self.target.token)
    }

    async fn call(
        &self,
        method: Method,
        url: &str,
        json: Option<Value>,
    ) -> Result<Value, CommentError> {
        let t = self.target;
        let token = if t.token_header == "Authorization" {
            format!("Bearer {}", t.token)
        } else {
            t.token.clone()
        };
        let Ok(mut token) = reqwest::header::HeaderValue::from_str(&token) else {
            return Err(CommentError::Invalid {
                what: t.token_env.clone(),
                detail: "the token holds characters an HTTP header cannot carry".into(),
            });
        };
        token.set_sensitive(true);
        let mut req = self
            .http
            .request(method.clone(), url)
            .header(t.token_header, token);
        if t.forge == Forge::GitHub {
            req = req
                .header("Accept", "application/vnd.github+json")
                .header("X-GitHub-Api-Version", "2022-11-28");
        }
        if let Some(json) = json {
            req = req.json(&json);
        }
        let shown = self.shown(url);
        let resp = req.send().await.map_err(|e| CommentError::Transport {
            method: method.clone(),
            url: shown.clone(),
            detail: redact::scrub(&crate::cluster::error_chain(&e.without_url()), &t.token),
        })?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| CommentError::Transport {
            method: method.clone(),
            url: shown.clone(),
            detail: redact::scrub(&crate::cluster::error_chain(&e.without_url()), &t.token),
        })?;
        if !status.is_success() {
            let snippet = redact::scrub(&snippet(&text), &t.token);
            let hint = match (status.as_u16(), t.forge) {
                (401, _) => format!(" (is {} a valid token?)", t.token_env),
                (403, Forge::GitLab) if t.token_header == "JOB-TOKEN" => " (CI_JOB_TOKEN may not write notes on this instance: put a project access token with the api scope in OOMGATE_GITLAB_TOKEN)".to_string(),
                (403, Forge::GitHub) => " (the workflow needs permissions: pull-requests: write)".to_string(),
                _ => String::new(),
            };
            let detail = match snippet.is_empty() {
                true => hint,
                false => format!(": {snippet}{hint}"),
            };
            return Err(CommentError::Status {
                method,
                url: shown,
                status,
                detail,
            });
        }
        serde_json::from_str(&text).map_err(|e| CommentError::Decode {
            method,
            url: shown,
            detail: format!("not JSON: {e}"),
        })
    }
}

/// The first 200 characters of a body, on one line.
fn snippet(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn target(r: Resolved) -> Box<Target> {
        match r {
            Resolved::Target(t) => t,
            Resolved::NoReview(why) => panic!("no review: {why}"),
        }
    }

    #[test]
    fn gitlab_from_ci_variables_job_token_or_access_token() {
        let vars = [
            ("GITLAB_CI", "true"),
            ("CI_API_V4_URL", "https://gitlab.example.com/api/v4/"),
            ("CI_PROJECT_ID", "42"),
            ("CI_MERGE_REQUEST_IID", "7"),
            ("CI_JOB_TOKEN", "job-secret"),
        ];
        let t = target(resolve(&CommentRequest::default(), env_of(&vars)).unwrap());
        assert_eq!(t.forge, Forge::GitLab);
        assert_eq!(t.api, "https://gitlab.example.com/api/v4");
        assert_eq!(t.token_header, "JOB-TOKEN");
        assert_eq!(t.review(), "merge request !7");
        assert!(!format!("{t:?}").contains("job-secret"));
        let mut with_pat = vars.to_vec();
        with_pat.push(("OOMGATE_GITLAB_TOKEN", "pat"));
        let t = target(resolve(&CommentRequest::default(), env_of(&with_pat)).unwrap());
        assert_eq!(
            (t.token_header, t.token_env.as_str()),
            ("PRIVATE-TOKEN", "OOMGATE_GITLAB_TOKEN")
        );
        // A branch pipeline has no merge request: nothing to do, not an error.
        let branch: Vec<_> = vars
            .iter()
            .copied()
            .filter(|(k, _)| *k != "CI_MERGE_REQUEST_IID")
            .collect();
        assert!(matches!(
            resolve(&CommentRequest::default(), env_of(&branch)).unwrap(),
            Resolved::NoReview(_)
        ));
        let no_token: Vec<_> = vars
            .iter()
            .copied()
            .filter(|(k, _)| *k != "CI_JOB_TOKEN")
            .collect();
        let e = resolve(&CommentRequest::default(), env_of(&no_token)).unwrap_err();
        assert!(e.to_string().contains("OOMGATE_GITLAB_TOKEN"), "{e}");
    }

    #[test]
    fn github_pr_from_event_file_or_ref() {
        let dir = tempfile::tempdir().unwrap();
        let event = dir.path().join("event.json");
        std::fs::write(&event, r#"{"pull_request":{"number":31}}"#).unwrap();
        let vars = [
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_REPOSITORY", "acme/shop"),
            ("GITHUB_EVENT_PATH", event.to_str().unwrap()),
            ("GITHUB_TOKEN", "ghs_x"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_RUN_ID", "99"),
        ];
        let t = target(resolve(&CommentRequest::default(), env_of(&vars)).unwrap());
        assert_eq!((t.forge, t.number), (Forge::GitHub, 31));
        assert_eq!(t.api, "https://api.github.com");
        assert_eq!(
            t.job_url.as_deref(),
            Some("https://github.com/acme/shop/actions/runs/99")
        );
        let by_ref = [
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_REPOSITORY", "acme/shop"),
            ("GITHUB_REF", "refs/pull/8/merge"),
            ("GITHUB_TOKEN", "ghs_x"),
        ];
        assert_eq!(
            target(resolve(&CommentRequest::default(), env_of(&by_ref)).unwrap()).number,
            8
        );
        let push = [
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_REF", "refs/heads/main"),
        ];
        assert!(matches!(
            resolve(&CommentRequest::default(), env_of(&push)).unwrap(),
            Resolved::NoReview(_)
        ));
        let bad = [("GITHUB_REPOSITORY", "../../x"), ("GITHUB_TOKEN", "t")];
        let req = CommentRequest {
            forge: Some(Forge::GitHub),
            number: Some(1),
            ..Default::default()
        };
        assert!(resolve(&req, env_of(&bad)).is_err());
        assert!(matches!(
            resolve(&CommentRequest::default(), env_of(&[])),
            Err(CommentError::NoForge)
        ));
    }

    #[test]
    fn markers_and_bodies() {
        assert_eq!(marker(None).unwrap(), MARKER);
        assert_eq!(marker(Some("api")).unwrap(), "<!-- oomgate:comment:api -->");
        assert!(marker(Some("x -->")).is_err());
        let vars = [
            ("CI_API_V4_URL", "http://127.0.0.1:1/api/v4"),
            ("CI_PROJECT_ID", "group/project"),
            ("CI_JOB_TOKEN", "t"),
            ("CI_JOB_URL", "http://127.0.0.1:1/-/jobs/5"),
        ];
        let req = CommentRequest {
            forge: Some(Forge::GitLab),
            number: Some(3),
            ..Default::default()
        };
        let t = target(resolve(&req, env_of(&vars)).unwrap());
        assert_eq!(t.project, "group%2Fproject");
        let b = body("## ✅ oomgate PASS: demo\n", &t);
        assert!(b.starts_with(MARKER) && b.contains("PASS") && b.contains("/-/jobs/5"));
        let long = "line of the summary\n".repeat(10_000);
        let b = body(&long, &t);
        assert!(b.chars().count() <= MAX_BODY_CHARS, "{}", b.chars().count());
        assert!(b.contains("cut to fit"));
    }
}
