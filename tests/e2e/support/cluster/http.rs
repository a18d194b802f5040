//! Small HTTP helpers shared by the API server, the cAdvisor endpoint and the watch streams:
//! the boxed body type, JSON and text responses, every error as a `metav1.Status` object with
//! the reason and message wording of the real API server, and query-string parsing with
//! percent-decoding.

use std::convert::Infallible;

use http_body_util::{combinators::BoxBody, BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ListMeta, Status, StatusDetails};
use serde::Serialize;

pub(super) type Body = BoxBody<Bytes, Infallible>;

pub(super) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

pub(super) fn with_type(
    code: StatusCode,
    content_type: &'static str,
    body: Body,
) -> Response<Body> {
    let mut resp = Response::new(body);
    *resp.status_mut() = code;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

pub(super) fn text(code: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    with_type(code, content_type, full(body))
}

/// A JSON response of any serializable value (k8s-openapi objects, lists, Status).
pub(super) fn json<T: Serialize + ?Sized>(code: StatusCode, value: &T) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(bytes) => with_type(code, "application/json", full(bytes)),
        Err(e) => status(500, "InternalError", format!("encoding the response: {e}")),
    }
}

/// A `metav1.Status` failure object.
pub(super) fn status_object(
    code: u16,
    reason: &str,
    message: impl Into<String>,
    details: Option<StatusDetails>,
) -> Status {
    Status {
        code: Some(i32::from(code)),
        details,
        message: Some(message.into()),
        metadata: ListMeta::default(),
        reason: Some(reason.to_string()),
        status: Some("Failure".to_string()),
    }
}

/// An error response carrying a `Status` with `code`, `reason` and `message`.
pub(super) fn status(code: u16, reason: &str, message: impl Into<String>) -> Response<Body> {
    let code_status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json(code_status, &status_object(code, reason, message, None))
}

/// 404 for an unknown path.
pub(super) fn path_not_found() -> Response<Body> {
    let mut s = status_object(
        404,
        "NotFound",
        "the server could not find the requested resource",
        None,
    );
    s.details = Some(StatusDetails::default());
    json(StatusCode::NOT_FOUND, &s)
}

/// 404 for a named object: `pods "web-1" not found` / `deployments.apps "web" not found`.
pub(super) fn object_not_found(resource: &str, group: &str, name: &str) -> Response<Body> {
    let qualified = if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    };
    let details = StatusDetails {
        name: Some(name.to_string()),
        group: (!group.is_empty()).then(|| group.to_string()),
        kind: Some(resource.to_string()),
        ..StatusDetails::default()
    };
    json(
        StatusCode::NOT_FOUND,
        &status_object(
            404,
            "NotFound",
            format!("{qualified} \"{name}\" not found"),
            Some(details),
        ),
    )
}

/// Decoded query parameters, in order.
#[derive(Debug, Default, Clone)]
pub(super) struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let Some(raw) = raw else {
            return Query::default();
        };
        Query(
            raw.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (percent_decode(k), percent_decode(v))
                })
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `true`/`1` (and a bare `watch` key) are true, like the API server's boolean parameters.
    pub fn flag(&self, key: &str) -> bool {
        matches!(
            self.get(key),
            Some("true") | Some("1") | Some("True") | Some("")
        )
    }
}

pub(super) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
