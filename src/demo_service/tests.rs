use super::*;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const STEP: Duration = Duration::from_secs(2);

fn args() -> DemoServiceArgs {
    DemoServiceArgs {
        listen: "127.0.0.1:0".parse().unwrap(),
        baseline: 0,
        keep_per_request: 0,
        grow_per_sec: 0,
        grow_after: Duration::ZERO,
        spike: 0,
        spike_hold: Duration::from_millis(300),
        spike_every: Duration::ZERO,
        spike_once_after: None,
        fail_ratio: 0.0,
        max_bytes: None,
        latency: Duration::ZERO,
    }
}

struct Server {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Server {
    async fn start(args: DemoServiceArgs) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_on(listener, args, async move {
            let _ = stopped.await;
        }));
        Server { addr, stop, task }
    }

    async fn client(&self) -> Client {
        let stream = tokio::time::timeout(STEP, TcpStream::connect(self.addr))
            .await
            .expect("connect timed out")
            .unwrap();
        Client {
            io: BufReader::new(stream),
        }
    }

    async fn stats(&self) -> String {
        let reply = self.client().await.send("GET", "/stats", b"").await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("content-type"), Some("application/json"));
        reply.body
    }

    async fn stat(&self, name: &str) -> u64 {
        field(&self.stats().await, name)
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(STEP, self.task)
            .await
            .expect("serve did not stop in time")
            .unwrap()
            .unwrap();
    }
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

struct Client {
    io: BufReader<TcpStream>,
}

impl Client {
    async fn send(&mut self, method: &str, path: &str, body: &[u8]) -> Reply {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        self.send_raw(&[head.as_bytes(), body].concat(), method == "HEAD")
            .await
    }

    async fn send_raw(&mut self, bytes: &[u8], head_only: bool) -> Reply {
        tokio::time::timeout(STEP, async {
            self.io.get_mut().write_all(bytes).await.unwrap();
            self.read_reply(head_only).await
        })
        .await
        .expect("request timed out")
    }

    async fn read_reply(&mut self, head_only: bool) -> Reply {
        let mut line = String::new();
        self.io.read_line(&mut line).await.unwrap();
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {line:?}"));
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.io.read_line(&mut line).await.unwrap();
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            let (name, value) = trimmed.split_once(':').unwrap();
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        let mut reply = Reply {
            status,
            headers,
            body: String::new(),
        };
        if !head_only {
            let len: usize = reply
                .header("content-length")
                .expect("content-length")
                .parse()
                .unwrap();
            let mut body = vec![0; len];
            self.io.read_exact(&mut body).await.unwrap();
            reply.body = String::from_utf8(body).unwrap();
        }
        reply
    }
}

fn field(json: &str, name: &str) -> u64 {
    let key = format!("\"{name}\":");
    let start = json
        .find(&key)
        .unwrap_or_else(|| panic!("{name} in {json}"))
        + key.len();
    let digits: String = json[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap()
}

fn vm_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Polls `/stats` until `name` satisfies `ok`, for at most `within`.
async fn wait_for_stat(
    server: &Server,
    name: &str,
    within: Duration,
    ok: impl Fn(u64) -> bool,
) -> u64 {
    let deadline = Instant::now() + within;
    loop {
        let value = server.stat(name).await;
        if ok(value) || Instant::now() >= deadline {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn health_and_work_requests() {
    let server = Server::start(DemoServiceArgs {
        baseline: 64 * KI,
        ..args()
    })
    .await;
    let mut client = server.client().await;
    let health = client.send("GET", "/healthz", b"").await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok"));
    assert!(health
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    // The same keep-alive connection carries every kind of work request.
    for (method, path, body) in [
        ("GET", "/", &b""[..]),
        ("GET", "/api/users?page=2", b""),
        ("POST", "/api/orders", br#"{"sku":"A1"}"#),
        ("PUT", "/api/users/7", &[b'x'; 100_000]),
        ("DELETE", "/api/orders/1", b""),
    ] {
        let reply = client.send(method, path, body).await;
        assert_eq!(reply.status, 200, "{method} {path}");
        assert_eq!(reply.body, r#"{"ok":true}"#);
        assert_eq!(reply.header("content-type"), Some("application/json"));
    }
    let stats = server.stats().await;
    assert_eq!(field(&stats, "requests"), 5, "{stats}");
    assert_eq!(field(&stats, "failures"), 0);
    assert_eq!(field(&stats, "retained_bytes"), 64 * KI);
    assert_eq!(field(&stats, "spike_bytes_now"), 0);
    server.stop().await;
}

#[tokio::test]
async fn fail_ratio_fails_exactly_that_share() {
    let server = Server::start(DemoServiceArgs {
        fail_ratio: 0.5,
        ..args()
    })
    .await;
    let mut client = server.client().await;
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(client.send("GET", "/api/users", b"").await.status);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 500).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(statuses, [200, 500, 200, 500, 200, 500, 200, 500, 200, 500]);
    assert_eq!(server.stat("failures").await, 5);
    assert_eq!(client.send("GET", "/healthz", b"").await.status, 200);
    server.stop().await;

    let third = State::new(&DemoServiceArgs {
        fail_ratio: 0.3,
        ..args()
    });
    assert_eq!((1..=1000).filter(|n| third.should_fail(*n)).count(), 300);
    let all = State::new(&DemoServiceArgs {
        fail_ratio: 1.0,
        ..args()
    });
    assert!((1..=100).all(|n| all.should_fail(n)));
    let none = State::new(&args());
    assert!(!(1..=100).any(|n| none.should_fail(n)));
}

#[tokio::test]
async fn keep_per_request_retains_bytes_per_request() {
    let baseline = 3 * MI + 5;
    let server = Server::start(DemoServiceArgs {
        baseline,
        keep_per_request: 10_000,
        ..args()
    })
    .await;
    assert_eq!(server.stat("retained_bytes").await, baseline);
    let mut client = server.client().await;
    for i in 0..250 {
        let method = if i % 2 == 0 { "GET" } else { "POST" };
        assert_eq!(client.send(method, "/api/orders", b"{}").await.status, 200);
    }
    // Crosses several 1 MiB chunk boundaries.
    assert_eq!(server.stat("retained_bytes").await, baseline + 250 * 10_000);
    // Health and stats retain nothing.
    client.send("GET", "/healthz", b"").await;
    assert_eq!(server.stat("retained_bytes").await, baseline + 250 * 10_000);
    server.stop().await;
}

#[tokio::test]
async fn max_bytes_caps_the_leak() {
    let server = Server::start(DemoServiceArgs {
        baseline: 1000,
        keep_per_request: 1000,
        max_bytes: Some(3500),
        ..args()
    })
    .await;
    let mut client = server.client().await;
    for _ in 0..5 {
        assert_eq!(client.send("GET", "/", b"").await.status, 200);
    }
    assert_eq!(server.stat("retained_bytes").await, 3500);
    assert_eq!(server.stat("requests").await, 5);
    server.stop().await;
}

#[tokio::test]
async fn growth_starts_after_the_delay_and_follows_the_rate() {
    let rate = 4 * MI;
    let started = Instant::now();
    let server = Server::start(DemoServiceArgs {
        grow_per_sec: rate,
        grow_after: Duration::from_millis(200),
        ..args()
    })
    .await;
    assert_eq!(server.stat("retained_bytes").await, 0);
    tokio::time::sleep_until(started + Duration::from_millis(1200)).await;
    let grown = server.stat("retained_bytes").await;
    // ~1 s of growth at 4 MiB/s, in 100 ms steps.
    assert!((rate * 6 / 10..=rate * 13 / 10).contains(&grown), "{grown}");
    server.stop().await;
}

#[tokio::test]
async fn growth_stops_at_the_cap() {
    let server = Server::start(DemoServiceArgs {
        grow_per_sec: 10 * MI,
        max_bytes: Some(MI + 7),
        ..args()
    })
    .await;
    let reached = wait_for_stat(&server, "retained_bytes", Duration::from_millis(800), |v| {
        v >= MI + 7
    })
    .await;
    assert_eq!(reached, MI + 7);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(server.stat("retained_bytes").await, MI + 7);
    server.stop().await;
}

#[tokio::test]
async fn one_spike_rises_then_is_freed() {
    let bytes = 4 * MI;
    let server = Server::start(DemoServiceArgs {
        baseline: 100_000,
        spike: bytes,
        spike_hold: Duration::from_millis(300),
        spike_once_after: Some(Duration::from_millis(100)),
        ..args()
    })
    .await;
    let up = wait_for_stat(&server, "spike_bytes_now", Duration::from_secs(1), |v| {
        v > 0
    })
    .await;
    assert_eq!(up, bytes);
    assert_eq!(server.stat("retained_bytes").await, 100_000);
    let down = wait_for_stat(&server, "spike_bytes_now", Duration::from_secs(1), |v| {
        v == 0
    })
    .await;
    assert_eq!(down, 0);
    let stats = server.stats().await;
    assert_eq!(field(&stats, "spikes"), 1, "{stats}");
    assert_eq!(field(&stats, "retained_bytes"), 100_000);
    server.stop().await;
}

#[tokio::test]
async fn periodic_spikes_repeat() {
    let server = Server::start(DemoServiceArgs {
        spike: MI,
        spike_hold: Duration::from_millis(50),
        spike_every: Duration::from_millis(150),
        ..args()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let spikes = server.stat("spikes").await;
    assert!((3..=6).contains(&spikes), "{spikes}");
    server.stop().await;
}

#[test]
fn retained_memory_is_resident() {
    let store = Store::new(None);
    let before = vm_rss_bytes();
    store.retain_uncapped(64 * MI).unwrap();
    let after = vm_rss_bytes();
    assert!(
        after >= before + 48 * MI,
        "VmRSS went from {before} to {after} after retaining 64 MiB"
    );
    assert_eq!(store.retained(), 64 * MI);
}

#[tokio::test]
async fn latency_delays_work_requests_only() {
    let server = Server::start(DemoServiceArgs {
        latency: Duration::from_millis(200),
        ..args()
    })
    .await;
    let mut client = server.client().await;
    let t = Instant::now();
    assert_eq!(client.send("GET", "/healthz", b"").await.status, 200);
    assert!(t.elapsed() < Duration::from_millis(150));
    let t = Instant::now();
    assert_eq!(client.send("GET", "/work", b"").await.status, 200);
    assert!(t.elapsed() >= Duration::from_millis(200));
    server.stop().await;
}

#[tokio::test]
async fn bad_requests_do_not_hurt_the_service() {
    let server = Server::start(args()).await;
    // Garbage: hyper answers 400 and closes that connection.
    let mut junk = server.client().await;
    let reply = junk.send_raw(b"NOT HTTP AT ALL\r\n\r\n", false).await;
    assert_eq!(reply.status, 400);
    // A chunked body is read and discarded.
    let mut client = server.client().await;
    let chunked = b"POST /api/orders HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
                    5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    assert_eq!(client.send_raw(chunked, false).await.status, 200);
    // Wrong methods on the fixed endpoints.
    let reply = client.send("POST", "/healthz", b"x").await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("GET, HEAD"));
    let reply = client.send("HEAD", "/stats", b"").await;
    assert_eq!(reply.status, 200);
    // A client that drops mid-body.
    let mut quitter = server.client().await;
    quitter
        .io
        .get_mut()
        .write_all(b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\nabc")
        .await
        .unwrap();
    drop(quitter);
    assert_eq!(client.send("GET", "/healthz", b"").await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn shutdown_closes_idle_keep_alive_connections() {
    let server = Server::start(args()).await;
    let mut idle = server.client().await;
    assert_eq!(idle.send("GET", "/", b"").await.status, 200);
    let t = Instant::now();
    server.stop().await;
    assert!(t.elapsed() < Duration::from_secs(1));
    let mut rest = Vec::new();
    let read = tokio::time::timeout(STEP, idle.io.read_to_end(&mut rest)).await;
    assert!(matches!(read, Ok(Ok(0))), "{read:?}");
}

#[test]
fn parses_sizes_durations_and_ratios() {
    assert_eq!(parse_bytes("1048576"), Ok(MI));
    assert_eq!(parse_bytes("16Mi"), Ok(16 * MI));
    assert_eq!(parse_bytes("512Ki"), Ok(512 * KI));
    assert_eq!(parse_bytes("2Gi"), Ok(2 * GI));
    assert_eq!(parse_bytes("1.5Gi"), Ok(3 * GI / 2));
    assert_eq!(parse_bytes("100k"), Ok(100_000));
    assert_eq!(parse_bytes("0"), Ok(0));
    for bad in ["", "Mi", "16Xi", "-1", "1.2.3Mi", "99999999999999Ti"] {
        assert!(parse_bytes(bad).is_err(), "{bad}");
    }
    assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
    assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
    assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
    for bad in ["", "s", "5x", "-1s"] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
    assert_eq!(parse_ratio("0.5"), Ok(0.5));
    assert_eq!(parse_ratio("5%"), Ok(0.05));
    for bad in ["1.5", "-0.1", "NaN", "x"] {
        assert!(parse_ratio(bad).is_err(), "{bad}");
    }
}

#[derive(clap::Parser, Debug)]
struct Wrapper {
    #[command(flatten)]
    demo: DemoServiceArgs,
}

#[test]
fn flags_parse_and_every_flag_has_an_env_var() {
    use clap::{CommandFactory as _, Parser as _};
    let parsed = Wrapper::try_parse_from([
        "demo",
        "--listen",
        "127.0.0.1:0",
        "--baseline",
        "32Mi",
        "--keep-per-request",
        "4Ki",
        "--grow-per-sec",
        "1Mi",
        "--grow-after",
        "5s",
        "--spike",
        "64Mi",
        "--spike-every",
        "10s",
        "--spike-once-after",
        "2s",
        "--fail-ratio",
        "0.1",
        "--max-bytes",
        "256Mi",
        "--latency",
        "5ms",
    ])
    .unwrap()
    .demo;
    assert_eq!(parsed.baseline, 32 * MI);
    assert_eq!(parsed.keep_per_request, 4 * KI);
    assert_eq!(parsed.grow_after, Duration::from_secs(5));
    assert_eq!(parsed.spike_hold, Duration::from_millis(300));
    assert_eq!(parsed.spike_once_after, Some(Duration::from_secs(2)));
    assert_eq!(parsed.max_bytes, Some(256 * MI));
    let defaults = Wrapper::try_parse_from(["demo"]).unwrap().demo;
    assert_eq!(defaults.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(defaults.baseline, 16 * MI);
    assert_eq!((defaults.spike, defaults.spike_every), (0, Duration::ZERO));
    assert_eq!(
        (defaults.spike_once_after, defaults.max_bytes),
        (None, None)
    );
    assert!(Wrapper::try_parse_from(["demo", "--baseline", "lots"]).is_err());
    assert!(Wrapper::try_parse_from(["demo", "--fail-ratio", "2"]).is_err());

    let command = Wrapper::command();
    for arg in command.get_arguments().filter(|a| a.get_long().is_some()) {
        let long = arg.get_long().unwrap();
        if long == "help" {
            continue;
        }
        let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
        let expected = format!("DEMO_{}", long.replace('-', "_").to_uppercase());
        assert_eq!(env.as_deref(), Some(expected.as_str()), "--{long}");
    }
}
