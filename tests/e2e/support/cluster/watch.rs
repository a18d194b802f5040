//! Watch streams (`?watch=true`): a chunked response of JSON lines
//! `{"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR","object":…}` like the API server's. From
//! resourceVersion "" or "0" (or with `sendInitialEvents=true`) the current objects come first as
//! ADDED; from a later version only the changes after it, out of the state's event history; a
//! version older than that history gets one ERROR event with a 410 Expired Status (kube-rs then
//! re-lists). Label and field selectors filter events, `allowWatchBookmarks` adds a BOOKMARK
//! every 2 s (and the `k8s.io/initial-events-end` one after initial events),
//! `timeoutSeconds` (default and maximum 1800) ends the stream, and so does the cluster's
//! shutdown or the client going away.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::{Bytes, Frame};
use hyper::{Response, StatusCode};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::WatchEvent;
use kube::core::watch::{Bookmark, BookmarkMeta};
use kube::core::TypeMeta;
use serde::Serialize;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::http::{self, Body, Query};
use super::selector::{FieldSelector, LabelSelector};
use super::state::{ApiObject, Res, Shared, State};

const BOOKMARK_EVERY: Duration = Duration::from_secs(2);
const MAX_TIMEOUT: u64 = 1800;

/// Which objects a watch (or list) wants.
pub(super) struct Filter {
    /// False when the request names another namespace: nothing matches.
    pub namespace_ok: bool,
    pub namespace: String,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Filter {
    pub fn matches(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        self.namespace_ok
            && self.labels.matches(labels)
            && self.fields.matches(|f| match f {
                "metadata.name" => name.to_string(),
                "metadata.namespace" => self.namespace.clone(),
                "spec.nodeName" => super::objects::NODE.to_string(),
                "status.phase" => "Running".to_string(),
                _ => String::new(),
            })
    }
}

fn added_lines<T: ApiObject>(st: &State, filter: &Filter) -> Vec<String> {
    T::map(&st.objects)
        .iter()
        .filter(|(name, o)| {
            filter.matches(
                name,
                o.metadata().labels.as_ref().unwrap_or(&BTreeMap::new()),
            )
        })
        .filter_map(|(_, o)| serde_json::to_string(&WatchEvent::Added(o)).ok())
        .collect()
}

/// ADDED lines for the current objects of `res` that match.
fn current(st: &State, res: Res, filter: &Filter) -> Vec<String> {
    use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
    use k8s_openapi::api::core::v1::Pod;
    match res {
        Res::Pods => added_lines::<Pod>(st, filter),
        Res::Deployments => added_lines::<Deployment>(st, filter),
        Res::ReplicaSets => added_lines::<ReplicaSet>(st, filter),
        Res::StatefulSets => added_lines::<StatefulSet>(st, filter),
        Res::Vpas => st
            .vpas
            .iter()
            .filter(|(name, v)| filter.matches(name, &super::resources::value_labels(v)))
            .map(|(_, v)| event_line("ADDED", v))
            .collect(),
    }
}

fn bookmark(res: Res, rv: u64, initial_end: bool) -> String {
    let (api_version, kind) = res.type_meta();
    let mut annotations = BTreeMap::new();
    if initial_end {
        annotations.insert("k8s.io/initial-events-end".to_string(), "true".to_string());
    }
    let event = kube::core::WatchEvent::<serde_json::Value>::Bookmark(Bookmark {
        types: TypeMeta {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
        },
        metadata: BookmarkMeta {
            resource_version: rv.to_string(),
            annotations,
        },
    });
    serde_json::to_string(&event).unwrap_or_default()
}

/// `{"type":…,"object":…}` for objects without a k8s-openapi type (VPAs, error Status).
pub(super) fn event_line(kind: &str, object: &impl Serialize) -> String {
    format!(
        "{{\"type\":\"{kind}\",\"object\":{}}}",
        serde_json::to_string(object).unwrap_or_else(|_| "{}".to_string())
    )
}

fn expired(asked: u64, oldest: u64) -> String {
    event_line(
        "ERROR",
        &http::status_object(
            410,
            "Expired",
            format!("too old resource version: {asked} ({oldest})"),
            None,
        ),
    )
}

/// An ADDED/MODIFIED/DELETED line with its object replaced by a one-row Table.
fn tableize(res: Res, line: &str, q: &Query) -> String {
    let Ok(mut event) = serde_json::from_str::<serde_json::Value>(line) else {
        return line.to_string();
    };
    let kind = event["type"].as_str().unwrap_or("").to_string();
    if !matches!(kind.as_str(), "ADDED" | "MODIFIED" | "DELETED") {
        return line.to_string();
    }
    let object = event["object"].take();
    event_line(&kind, &super::table::of_object(res, object, q))
}

/// The response body: the lines the watch task sends, as they come.
struct Lines(tokio::sync::mpsc::Receiver<String>);

impl futures::Stream for Lines {
    type Item = Result<Frame<Bytes>, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0
            .poll_recv(cx)
            .map(|line| line.map(|l| Ok(Frame::data(Bytes::from(l)))))
    }
}

/// Answer a watch request on `res`.
pub(super) fn watch(
    shared: Arc<Shared>,
    res: Res,
    filter: Filter,
    q: &Query,
    as_table: bool,
) -> Response<Body> {
    let timeout = match q.get("timeoutSeconds") {
        None | Some("") => MAX_TIMEOUT,
        Some(t) => match t.parse::<u64>() {
            Ok(t) => t.min(MAX_TIMEOUT),
            Err(_) => {
                return http::status(400, "BadRequest", format!("invalid timeoutSeconds: {t:?}"))
            }
        },
    };
    let bookmarks = q.flag("allowWatchBookmarks");
    let initial_events = q.get("sendInitialEvents").is_some_and(|v| v == "true");
    let asked = match q.get("resourceVersion") {
        None | Some("") | Some("0") => None,
        Some(v) => match v.parse::<u64>() {
            Ok(v) => Some(v),
            Err(_) => {
                return http::status(
                    400,
                    "BadRequest",
                    format!("invalid resource version {v:?}: must be an integer"),
                )
            }
        },
    };
    let mut first: Vec<String> = Vec::new();
    let mut end_after_first = false;
    let start = {
        let st = shared.lock();
        match asked {
            Some(rv) if !initial_events => {
                if rv < st.oldest_resumable() {
                    first.push(expired(rv, st.oldest_resumable()));
                    end_after_first = true;
                }
                rv.min(st.rv)
            }
            _ => {
                first = current(&st, res, &filter);
                if initial_events && bookmarks {
                    first.push(bookmark(res, st.rv, true));
                }
                st.rv
            }
        }
    };

    let q = q.clone();
    let shape = move |line: String| {
        if as_table {
            tableize(res, &line, &q)
        } else {
            line
        }
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(64);
    let stream = Lines(rx);
    tokio::spawn(async move {
        for line in first {
            if tx.send(shape(line) + "\n").await.is_err() {
                return;
            }
        }
        if end_after_first {
            return;
        }
        let mut changed = shared.changed.subscribe();
        let mut shutdown = shared.shutdown.subscribe();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
        let mut next_bookmark = tokio::time::Instant::now() + BOOKMARK_EVERY;
        let mut last = start;
        loop {
            let (lines, gone): (Vec<String>, bool) = {
                let st = shared.lock();
                if last < st.oldest_resumable() {
                    (vec![expired(last, st.oldest_resumable())], true)
                } else {
                    let lines = st
                        .history
                        .iter()
                        .filter(|e| {
                            e.rv > last && e.res == res && filter.matches(&e.name, &e.labels)
                        })
                        .map(|e| e.line.to_string())
                        .collect();
                    last = st.rv;
                    (lines, false)
                }
            };
            for line in lines {
                if tx.send(shape(line) + "\n").await.is_err() {
                    return;
                }
            }
            if gone || *shutdown.borrow() {
                return;
            }
            tokio::select! {
                r = changed.changed() => if r.is_err() { return },
                _ = tokio::time::sleep_until(deadline) => return,
                _ = tokio::time::sleep_until(next_bookmark) => {
                    next_bookmark += BOOKMARK_EVERY;
                    if bookmarks && tx.send(bookmark(res, last, false) + "\n").await.is_err() {
                        return;
                    }
                }
                _ = shutdown.changed() => return,
                _ = tx.closed() => return,
            }
        }
    });
    let body = StreamBody::new(stream).boxed();
    let mut resp = http::with_type(StatusCode::OK, "application/json", body);
    resp.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-cache, private"),
    );
    resp
}
