//! A bearer-token gate in front of a loopback HTTP server (the real Prometheus, which checks no
//! tokens itself): a plain TCP/HTTP/1.1 proxy on a free loopback port that answers
//! `401 Unauthorized` (with a `WWW-Authenticate: Bearer` header and a JSON error body, as an
//! authenticating reverse proxy does) unless the request carries `Authorization: Bearer <token>`,
//! and otherwise forwards the request to the upstream and streams the answer back. One request per
//! connection (`Connection: close` both ways). It counts what it let through and what it
//! rejected, so a test can tell the token was really sent. Stopped on drop; every wait is bounded.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

const IO_TIMEOUT: Duration = Duration::from_secs(15);
const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 8 * 1024 * 1024;

struct Shared {
    upstream: String,
    token: String,
    stop: AtomicBool,
    accepted: AtomicUsize,
    rejected: AtomicUsize,
}

pub struct AuthProxy {
    /// `http://127.0.0.1:PORT`, to use in place of the upstream's URL.
    pub url: String,
    shared: Arc<Shared>,
    thread: Option<thread::JoinHandle<()>>,
}

impl AuthProxy {
    /// Proxy to `upstream` (`http://127.0.0.1:PORT`, loopback only) behind `token`.
    pub fn start(upstream: &str, token: &str) -> AuthProxy {
        let addr = upstream
            .strip_prefix("http://")
            .unwrap_or(upstream)
            .trim_end_matches('/')
            .to_string();
        assert!(
            addr.starts_with("127.0.0.1:"),
            "auth proxy: loopback upstreams only, got {upstream}"
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the auth proxy");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            upstream: addr,
            token: token.to_string(),
            stop: AtomicBool::new(false),
            accepted: AtomicUsize::new(0),
            rejected: AtomicUsize::new(0),
        });
        let s = Arc::clone(&shared);
        let thread = thread::Builder::new()
            .name("auth-proxy".into())
            .spawn(move || {
                while !s.stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((conn, _)) => {
                            let s = Arc::clone(&s);
                            thread::spawn(move || {
                                let _ = serve(&s, conn);
                            });
                        }
                        Err(_) => thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
            .expect("start the auth proxy");
        AuthProxy {
            url: format!("http://127.0.0.1:{port}"),
            shared,
            thread: Some(thread),
        }
    }

    /// Requests forwarded with the right token.
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::Relaxed)
    }

    /// Requests answered 401.
    pub fn rejected(&self) -> usize {
        self.shared.rejected.load(Ordering::Relaxed)
    }
}

impl Drop for AuthProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Read the request head (up to the blank line) and whatever of the body came with it.
fn read_head(conn: &mut TcpStream) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Ok((buf, rest));
        }
        if buf.len() > MAX_HEAD {
            return Err(std::io::Error::other("request head too large"));
        }
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::other("connection closed mid-head"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn serve(s: &Shared, mut conn: TcpStream) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(IO_TIMEOUT))?;
    conn.set_write_timeout(Some(IO_TIMEOUT))?;
    let (head, mut body) = read_head(&mut conn)?;
    let head = String::from_utf8_lossy(&head).to_string();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_string();
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let authorized = header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| t == s.token);
    if !authorized {
        s.rejected.fetch_add(1, Ordering::Relaxed);
        let body = r#"{"status":"error","errorType":"unauthorized","error":"missing or invalid bearer token"}"#;
        write!(
            conn,
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"prometheus\"\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        conn.flush()?;
        let _ = conn.shutdown(Shutdown::Both);
        return Ok(());
    }
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if length > MAX_BODY {
        return Err(std::io::Error::other("request body too large"));
    }
    while body.len() < length {
        let mut chunk = vec![0u8; (length - body.len()).min(64 * 1024)];
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::other("connection closed mid-body"));
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    s.accepted.fetch_add(1, Ordering::Relaxed);
    let mut up = TcpStream::connect(&s.upstream)?;
    up.set_read_timeout(Some(IO_TIMEOUT))?;
    up.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut forwarded = format!("{request_line}\r\n");
    for (k, v) in &headers {
        if k.eq_ignore_ascii_case("connection") || k.eq_ignore_ascii_case("keep-alive") {
            continue;
        }
        forwarded.push_str(&format!("{k}: {v}\r\n"));
    }
    forwarded.push_str("Connection: close\r\n\r\n");
    up.write_all(forwarded.as_bytes())?;
    up.write_all(&body)?;
    up.flush()?;
    // The upstream closes after its answer (Connection: close): stream it back until then.
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = up.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        conn.write_all(&chunk[..n])?;
    }
    conn.flush()?;
    let _ = conn.shutdown(Shutdown::Both);
    Ok(())
}
