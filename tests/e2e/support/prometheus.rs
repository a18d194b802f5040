//! A real Prometheus (Debian's `prometheus` package) started by a test on a free loopback port
//! with a temp config that scrapes the given targets every second; stopped and cleaned up on
//! drop. In CI a missing binary is a failure, not a skip.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Prometheus {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

fn binary() -> Option<PathBuf> {
    ["/usr/bin/prometheus", "/usr/local/bin/prometheus"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Whether Prometheus is installed; panics under CI=true when it is not.
pub fn require_prometheus() -> bool {
    if binary().is_some() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("prometheus is not installed (apt-get install prometheus) and CI=true: failing instead of skipping");
    }
    eprintln!("note: skipping: prometheus is not installed");
    false
}

impl Prometheus {
    /// Start Prometheus scraping `targets` (host:port, path /metrics) every second.
    pub fn start(targets: &[String]) -> Prometheus {
        let bin = binary().expect("prometheus installed");
        let dir = tempfile::tempdir().unwrap();
        let port = super::free_port();
        let list = targets
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: cadvisor\n    honor_labels: true\n    static_configs:\n      - targets: [{list}]\n"
        );
        let cfg = dir.path().join("prometheus.yml");
        std::fs::write(&cfg, config).unwrap();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(bin)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        let p = Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        p.wait_ready();
        p
    }

    fn wait_ready(&self) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if http_get(&self.url, "/-/ready").is_some_and(|(code, _)| code == 200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("prometheus did not become ready at {}", self.url);
    }

    /// Wait until an instant query returns at least `min` series.
    pub fn wait_for_series(&self, query: &str, min: usize, limit: Duration) {
        let start = Instant::now();
        let path = format!("/api/v1/query?query={}", urlencode(query));
        while start.elapsed() < limit {
            if let Some((200, body)) = http_get(&self.url, &path) {
                let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                if v["data"]["result"]
                    .as_array()
                    .is_some_and(|a| a.len() >= min)
                {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        panic!(
            "prometheus at {} has fewer than {min} series for {query} after {limit:?}",
            self.url
        );
    }

    /// Freeze Prometheus (SIGSTOP): its port still accepts connections but nothing answers,
    /// like a server that hangs. Dropping it still kills it.
    pub fn freeze(&self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGSTOP) };
    }

    /// Stop Prometheus now (a test of a source dying mid-run).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.kill();
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A tiny blocking HTTP GET on loopback: (status, body).
pub fn http_get(base: &str, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let hostport = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(hostport).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {hostport}\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let code = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((code, body))
}

/// A real Prometheus scraping the simulated cluster's cAdvisor endpoint, ready with `pods`
/// series of the `app` container, and the scenario's memory section (1 s interval) for it.
pub fn prometheus_for(cluster: &super::cluster::SimCluster, pods: usize) -> (Prometheus, String) {
    let prom = Prometheus::start(&[cluster.metrics_target()]);
    prom.wait_for_series(
        "container_memory_working_set_bytes{container=\"app\"}",
        pods,
        Duration::from_secs(20),
    );
    let memory = format!(
        "  source: prometheus\n  interval: 1s\n  prometheus: {{ url: \"{}\" }}",
        prom.url
    );
    (prom, memory)
}
