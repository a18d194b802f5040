//! Unit tests for the Prometheus client and source: answer parsing, query templates, and the
//! client end to end against a tiny local HTTP server that answers canned responses.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, RwLock};

use chrono::TimeZone;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::scenario::DEFAULT_PROMETHEUS_QUERY;

const VECTOR: &str = r#"{"status":"success","data":{"resultType":"vector","result":[
 {"metric":{"pod":"web-1","container":"app"},"value":[1767225600.5,"3.145728e+08"]},
 {"metric":{"pod":"web-1","container":""},"value":[1767225600.5,"3.3e+08"]},
 {"metric":{"pod":"web-1","container":"POD"},"value":[1767225600.5,"1000"]},
 {"metric":{"pod":"web-2","container":"app"},"value":[1767225600.5,"NaN"]},
 {"metric":{"namespace":"staging"},"value":[1767225600.5,"5"]},
 {"metric":{"pod":"web-2","container":"sidecar"},"value":[1767225600.5,"1024"]}]}}"#;

const MATRIX: &str = r#"{"status":"success","data":{"resultType":"matrix","result":[
 {"metric":{"pod":"web-1","container":"app"},"values":[[1767225600,"100"],[1767225605,"200"],[1767225610,"+Inf"]]}]}}"#;

const ERROR: &str = r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:5: parse error: unexpected end of input"}"#;

fn at(ms: i64) -> Timestamp {
    Utc.timestamp_millis_opt(ms).unwrap()
}

#[test]
fn parses_vectors() {
    let QueryData::Vector(v) = parse_response(VECTOR).unwrap() else {
        panic!("not a vector")
    };
    assert_eq!(v.len(), 6);
    assert_eq!(v[0].at, at(1_767_225_600_500));
    assert_eq!(v[0].value, 314572800.0);
    assert!(v[3].value.is_nan());
    let obs = series_observations(&v, &[]);
    let got: Vec<(&str, &str, u64)> = obs
        .iter()
        .map(|o| (o.pod.as_str(), o.container.as_str(), o.working_set))
        .collect();
    assert_eq!(
        got,
        [("web-1", "app", 314572800), ("web-2", "sidecar", 1024)]
    );
    assert_eq!(series_observations(&v, &["sidecar".to_string()]).len(), 1);
}

#[test]
fn parses_matrices() {
    let QueryData::Matrix(m) = parse_response(MATRIX).unwrap() else {
        panic!("not a matrix")
    };
    assert_eq!(m[0].values.len(), 3);
    let obs = range_observations(&m, &[]);
    assert_eq!(obs.len(), 2, "the +Inf point is skipped");
    assert_eq!(
        (obs[1].at, obs[1].working_set),
        (at(1_767_225_605_000), 200)
    );
}

#[test]
fn parses_errors() {
    let e = parse_response(ERROR).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Prometheus query failed: bad_data: invalid parameter \"query\": 1:5: parse error: unexpected end of input"
    );
    assert!(matches!(
        parse_response("<html>"),
        Err(PromError::Decode { .. })
    ));
    assert!(matches!(
        parse_response(r#"{"status":"success","data":{"resultType":"scalar","result":[1,"2"]}}"#),
        Ok(QueryData::Other(_))
    ));
}

#[test]
fn fills_templates() {
    let q = fill_query(
        DEFAULT_PROMETHEUS_QUERY,
        "staging",
        &crate::workload::kubernetes::pods_regex(&["web-1".into(), "web.2".into()]),
    );
    assert!(q.contains(r#"namespace="staging""#), "{q}");
    assert!(q.contains(r#"pod=~"^(?:web-1|web[.]2)$""#), "{q}");
    assert_eq!(
        fill_query(r#"x{pod=~"$pods"}"#, "n", r"a\.b"),
        r#"x{pod=~"a\\.b"}"#
    );
}

/// A server answering each request with the next canned (status, body); it records requests.
struct Stub {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

async fn stub(answers: Vec<(u16, &'static str)>) -> Stub {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/prom/", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&requests);
    let mut answers: VecDeque<_> = answers.into();
    tokio::spawn(async move {
        while let Some((status, body)) = answers.pop_front() {
            let (mut sock, _) = listener.accept().await.unwrap();
            let request = read_request(&mut sock).await;
            seen.lock().unwrap().push(request);
            let reply = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            sock.write_all(reply.as_bytes()).await.unwrap();
            sock.shutdown().await.ok();
        }
    });
    Stub { url, requests }
}

async fn read_request(sock: &mut tokio::net::TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = sock.read(&mut chunk).await.unwrap();
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                break;
            }
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn spec(url: &str) -> PrometheusSpec {
    PrometheusSpec {
        url: url.to_string(),
        bearer_token_env: Some("PROMETHEUS_TOKEN".into()),
        query: DEFAULT_PROMETHEUS_QUERY.into(),
    }
}

#[tokio::test]
async fn client_sends_the_bearer_token_and_reads_answers() {
    let s = stub(vec![(200, VECTOR), (200, MATRIX), (400, ERROR)]).await;
    let client = PrometheusClient::new(&spec(&s.url), Some("t0ken-value".into())).unwrap();
    assert!(!format!("{client:?}").contains("t0ken"));

    let v = client.query_instant("up").await.unwrap();
    assert_eq!(v.len(), 6);
    let start = at(1_767_225_600_000);
    let m = client
        .query_range("up", start, at(1_767_225_660_000), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(m.len(), 1);
    let e = client.query_instant("max(").await.unwrap_err();
    assert!(
        matches!(e, PromError::Query { ref error_type, .. } if error_type == "bad_data"),
        "{e}"
    );

    let reqs = s.requests.lock().unwrap();
    assert!(
        reqs[0].starts_with("POST /prom/api/v1/query HTTP/1.1"),
        "{}",
        reqs[0]
    );
    assert!(reqs[0]
        .to_ascii_lowercase()
        .contains("authorization: bearer t0ken-value"));
    assert!(reqs[0].ends_with("query=up"), "{}", reqs[0]);
    assert!(reqs[1].starts_with("POST /prom/api/v1/query_range "));
    assert!(
        reqs[1].contains("start=1767225600.000&end=1767225660.000&step=5"),
        "{}",
        reqs[1]
    );
}

#[tokio::test]
async fn rejected_token_names_the_variable_never_the_token() {
    let s = stub(vec![
        (401, "{}"),
        (403, "{}"),
        (502, "<html>bad gateway</html>"),
    ])
    .await;
    let client = PrometheusClient::new(&spec(&s.url), Some("t0ken-value".into())).unwrap();
    let e = client.query_instant("up").await.unwrap_err().to_string();
    assert!(e.contains("answered 401"), "{e}");
    assert!(
        e.contains("the bearer token from $PROMETHEUS_TOKEN was rejected"),
        "{e}"
    );
    assert!(!e.contains("t0ken"));
    let e = client.query_instant("up").await.unwrap_err().to_string();
    assert!(e.contains("answered 403"), "{e}");
    let e = client.query_instant("up").await.unwrap_err().to_string();
    assert!(e.ends_with("answered 502: <html>bad gateway</html>"), "{e}");
}

#[tokio::test]
async fn unreachable_and_bad_urls() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client =
        PrometheusClient::new(&spec(&format!("http://u:secret@127.0.0.1:{port}")), None).unwrap();
    let e = client.query_instant("up").await.unwrap_err().to_string();
    assert!(
        e.starts_with("cannot reach Prometheus at http://***@127.0.0.1:"),
        "{e}"
    );
    assert!(!e.contains("secret"));
    assert!(PrometheusClient::new(&spec("prometheus:9090"), None).is_err());
}

#[tokio::test]
async fn source_queries_known_pods_only() {
    let s = stub(vec![(200, VECTOR)]).await;
    let client = PrometheusClient::new(&spec(&s.url), None).unwrap();
    let pods = Arc::new(RwLock::new(Vec::new()));
    let mut source = PrometheusSource::new(
        client,
        DEFAULT_PROMETHEUS_QUERY.into(),
        "staging".into(),
        Arc::clone(&pods),
        vec![],
    );
    assert_eq!(source.name(), "prometheus");
    assert!(
        source.poll().await.unwrap().is_empty(),
        "no pods yet: no query"
    );
    pods.write().unwrap().push("web-1".into());
    let obs = source.poll().await.unwrap();
    assert_eq!(obs.len(), 1, "web-2 is not a known pod: {obs:?}");
    assert_eq!(obs[0].at, at(1_767_225_600_500));
    let reqs = s.requests.lock().unwrap();
    assert_eq!(reqs.len(), 1);
    assert!(!reqs[0].to_ascii_lowercase().contains("authorization"));
    assert!(reqs[0].contains("web-1"));
}
