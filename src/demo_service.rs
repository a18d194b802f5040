//! The bundled demo HTTP service (the hidden `oomgate demo-service` subcommand): a small
//! HTTP/1.1 server whose memory behaviour is set by flags — a touched baseline, a per-request
//! leak, slow background growth, periodic or one-off spikes — plus injected failures and latency,
//! so oomgate's own tests and `oomgate demo` can put real, kernel-visible memory into a real
//! memory cgroup under real load. It owns its flags ([`DemoServiceArgs`]), the store that keeps
//! retained memory alive, the background memory tasks and the request handling. It talks to
//! nobody but its HTTP clients, prints one `listening on ADDR` line to stdout once it is ready,
//! and stops on SIGTERM or SIGINT.
//!
//! Endpoints: `GET /healthz` answers `ok` and does no work; `GET /stats` answers
//! `{"retained_bytes":N,"requests":N,"failures":N,"spike_bytes_now":N,"spikes":N}`; every other
//! path and method is a work request (body read and discarded, `--keep-per-request` bytes
//! retained, `{"ok":true}` or an injected 500). `requests` and `failures` count work requests.

use std::collections::TryReserveError;
use std::convert::Infallible;
use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Body as _, Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

const KI: u64 = 1 << 10;
const MI: u64 = 1 << 20;
const GI: u64 = 1 << 30;
const TI: u64 = 1 << 40;

/// Retained memory is kept in chunks of this size (each its own mmap once the allocator is tuned).
const CHUNK: usize = 1 << 20;
/// Written into every allocated byte, so the kernel has to back every page with real memory.
const FILL: u8 = 0xA5;
/// Background growth is applied in steps this far apart (10 per second).
const GROW_TICK: Duration = Duration::from_millis(100);
/// How long in-flight requests get to finish after a shutdown signal.
const DRAIN: Duration = Duration::from_secs(2);
/// Allocations at least this large get their own mapping, so freeing them returns memory to the OS.
const MMAP_THRESHOLD: i32 = 128 * 1024;

/// Flags of the demo service; every one can also come from `DEMO_<NAME>` in the environment.
/// Sizes take plain bytes or a `Ki`/`Mi`/`Gi`/`Ti` (or `k`/`M`/`G`/`T`) suffix; durations take
/// `ms`/`s`/`m`/`h` (a bare number is seconds).
#[derive(clap::Args, Debug, Clone)]
pub struct DemoServiceArgs {
    /// Address to listen on; port 0 picks a free port (the chosen address is printed)
    #[arg(long, env = "DEMO_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Memory allocated and touched at start
    #[arg(long, env = "DEMO_BASELINE", default_value = "16Mi", value_parser = parse_bytes)]
    pub baseline: u64,

    /// Memory retained (leaked) by every work request
    #[arg(long, env = "DEMO_KEEP_PER_REQUEST", default_value = "0", value_parser = parse_bytes)]
    pub keep_per_request: u64,

    /// Memory allocated and retained per second by a background task, in 10 steps a second
    #[arg(long, env = "DEMO_GROW_PER_SEC", default_value = "0", value_parser = parse_bytes)]
    pub grow_per_sec: u64,

    /// Delay after start before the background growth begins
    #[arg(long, env = "DEMO_GROW_AFTER", default_value = "0", value_parser = parse_duration)]
    pub grow_after: Duration,

    /// Size of a memory spike: allocated, touched, held for --spike-hold, then freed
    #[arg(long, env = "DEMO_SPIKE", default_value = "0", value_parser = parse_bytes)]
    pub spike: u64,

    /// How long a spike is held before it is freed
    #[arg(long, env = "DEMO_SPIKE_HOLD", default_value = "300ms", value_parser = parse_duration)]
    pub spike_hold: Duration,

    /// Period of repeated spikes; 0 = no periodic spikes
    #[arg(long, env = "DEMO_SPIKE_EVERY", default_value = "0", value_parser = parse_duration)]
    pub spike_every: Duration,

    /// A single spike this long after start
    #[arg(long, env = "DEMO_SPIKE_ONCE_AFTER", value_parser = parse_duration)]
    pub spike_once_after: Option<Duration>,

    /// Share of work requests (0..1, or a percentage) answered with 500, spread evenly
    #[arg(long, env = "DEMO_FAIL_RATIO", default_value = "0", value_parser = parse_ratio)]
    pub fail_ratio: f64,

    /// Cap on retained bytes (baseline included); leak and growth stop adding beyond it
    #[arg(long, env = "DEMO_MAX_BYTES", value_parser = parse_bytes)]
    pub max_bytes: Option<u64>,

    /// Delay added to every work request
    #[arg(long, env = "DEMO_LATENCY", default_value = "0", value_parser = parse_duration)]
    pub latency: Duration,
}

/// Builds a two-worker multi-thread runtime and runs [`serve`] on it until SIGTERM or SIGINT.
/// Must not be called from inside another tokio runtime.
pub fn run_blocking(args: DemoServiceArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("demo-service")
        .enable_all()
        .build()
        .context("starting the demo service runtime")?;
    let result = runtime.block_on(serve(args));
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

/// Binds `--listen`, allocates the baseline, prints `listening on ADDR`, and serves until SIGTERM
/// or SIGINT; then stops accepting, lets in-flight requests finish (up to 2 s) and returns Ok.
pub async fn serve(args: DemoServiceArgs) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    };
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    serve_on(listener, args, shutdown).await
}

/// What `serve` does once bound, on a listener the caller provides and until `shutdown`
/// resolves (tests pass a port-0 listener and a channel): allocate the baseline, announce the
/// address on stdout, serve.
async fn serve_on(
    listener: TcpListener,
    args: DemoServiceArgs,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let addr = listener.local_addr().context("reading the bound address")?;
    let state = prepare(&args).await?;
    announce(addr);
    run(listener, state, &args, shutdown).await
}

/// Prints the one readiness line. A closed stdout must not stop the service, so errors are ignored.
fn announce(addr: SocketAddr) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on {addr}").and_then(|()| out.flush());
}

/// Validates the arguments and builds the shared state with the baseline in place.
async fn prepare(args: &DemoServiceArgs) -> anyhow::Result<Arc<State>> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.fail_ratio),
        "--fail-ratio must be between 0 and 1, got {}",
        args.fail_ratio
    );
    let state = Arc::new(State::new(args));
    if args.baseline > 0 {
        let for_alloc = Arc::clone(&state);
        let baseline = args.baseline;
        tokio::task::spawn_blocking(move || for_alloc.store.retain_uncapped(baseline))
            .await
            .context("allocating the baseline")?
            .with_context(|| format!("allocating the {baseline}-byte baseline"))?;
    }
    eprintln!(
        "demo-service: baseline {} B, keep {} B/request, grow {} B/s after {:?}, spike {} B \
         (hold {:?}, every {:?}, once after {:?}), fail ratio {}, latency {:?}, cap {:?}",
        args.baseline,
        args.keep_per_request,
        args.grow_per_sec,
        args.grow_after,
        args.spike,
        args.spike_hold,
        args.spike_every,
        args.spike_once_after,
        args.fail_ratio,
        args.latency,
        args.max_bytes,
    );
    Ok(state)
}

/// The accept loop: one task per connection, background memory tasks alongside, graceful stop.
async fn run(
    listener: TcpListener,
    state: Arc<State>,
    args: &DemoServiceArgs,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut background = JoinSet::new();
    start_background(&state, args, &mut background);

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(err) => {
                    // Typically EMFILE or a connection reset before accept; back off briefly.
                    eprintln!("demo-service: accept failed: {err}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        while connections.try_join_next().is_some() {}
        let for_conn = Arc::clone(&state);
        let service = hyper::service::service_fn(move |req| handle(Arc::clone(&for_conn), req));
        let conn = http.serve_connection(TokioIo::new(stream), service);
        let mut stop = stop_rx.clone();
        connections.spawn(async move {
            tokio::pin!(conn);
            tokio::select! {
                // Client errors (resets, malformed requests) only end that connection.
                _ = conn.as_mut() => return,
                _ = stop.wait_for(|stopping| *stopping) => {}
            }
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        });
    }
    drop(listener);
    background.abort_all();
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(DRAIN, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        eprintln!(
            "demo-service: {} connection(s) still busy after {DRAIN:?}; closing them",
            connections.len()
        );
    }
    connections.abort_all();
    while background.join_next().await.is_some() {}
    Ok(())
}

/// Everything the request path and the background tasks share; counters are atomics and the
/// only lock (the store's) is never held across an await.
struct State {
    store: Store,
    keep_per_request: u64,
    fail_ppm: u64,
    latency: Duration,
    requests: AtomicU64,
    failures: AtomicU64,
    spike_bytes_now: AtomicU64,
    spikes: AtomicU64,
}

impl State {
    fn new(args: &DemoServiceArgs) -> Self {
        State {
            store: Store::new(args.max_bytes),
            keep_per_request: args.keep_per_request,
            // Parts per million keep the failure pattern exact and repeatable.
            fail_ppm: (args.fail_ratio.clamp(0.0, 1.0) * 1e6).round() as u64,
            latency: args.latency,
            requests: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            spike_bytes_now: AtomicU64::new(0),
            spikes: AtomicU64::new(0),
        }
    }

    /// Request number `seq` (1-based) fails when it carries the running failure count past a
    /// whole number: exactly ⌊n × ratio⌋ of the first n requests fail, spread evenly.
    fn should_fail(&self, seq: u64) -> bool {
        let due = |n: u64| u128::from(n) * u128::from(self.fail_ppm) / 1_000_000;
        due(seq) > due(seq.saturating_sub(1))
    }

    fn stats_json(&self) -> String {
        format!(
            "{{\"retained_bytes\":{},\"requests\":{},\"failures\":{},\"spike_bytes_now\":{},\"spikes\":{}}}",
            self.store.retained(),
            self.requests.load(Ordering::Relaxed),
            self.failures.load(Ordering::Relaxed),
            self.spike_bytes_now.load(Ordering::Relaxed),
            self.spikes.load(Ordering::Relaxed),
        )
    }
}

type Reply = Response<Full<Bytes>>;

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Reply, Infallible> {
    let readable = matches!(*req.method(), Method::GET | Method::HEAD);
    let reply = match req.uri().path() {
        "/healthz" if readable => reply(StatusCode::OK, "text/plain; charset=utf-8", "ok"),
        "/stats" if readable => reply(StatusCode::OK, "application/json", state.stats_json()),
        "/healthz" | "/stats" => {
            let mut r = reply(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain; charset=utf-8",
                "method not allowed",
            );
            r.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            r
        }
        _ => work(&state, req).await,
    };
    Ok(reply)
}

async fn work(state: &State, req: Request<Incoming>) -> Reply {
    let seq = state.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let mut body = req.into_body();
    if !body.is_end_stream() {
        // Read and drop frame by frame; a broken body just ends the read.
        while let Some(Ok(_frame)) = body.frame().await {}
    }
    if state.keep_per_request > 0 {
        state.store.retain(state.keep_per_request);
    }
    if !state.latency.is_zero() {
        tokio::time::sleep(state.latency).await;
    }
    if state.should_fail(seq) {
        state.failures.fetch_add(1, Ordering::Relaxed);
        reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "application/json",
            r#"{"ok":false,"error":"injected failure"}"#,
        )
    } else {
        reply(StatusCode::OK, "application/json", r#"{"ok":true}"#)
    }
}

fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn start_background(state: &Arc<State>, args: &DemoServiceArgs, tasks: &mut JoinSet<()>) {
    if args.grow_per_sec > 0 {
        tasks.spawn(grow(Arc::clone(state), args.grow_per_sec, args.grow_after));
    }
    if args.spike > 0 && !args.spike_every.is_zero() {
        tasks.spawn(periodic_spikes(
            Arc::clone(state),
            args.spike,
            args.spike_hold,
            args.spike_every,
        ));
    }
    if let (true, Some(after)) = (args.spike > 0, args.spike_once_after) {
        let (state, bytes, hold) = (Arc::clone(state), args.spike, args.spike_hold);
        tasks.spawn(async move {
            tokio::time::sleep(after).await;
            spike(state, bytes, hold).await;
        });
    }
}

/// Adds `per_sec` bytes a second to the store, in steps every [`GROW_TICK`], until the cap.
/// Each step adds what the elapsed time makes due, so late ticks do not lose growth.
async fn grow(state: Arc<State>, per_sec: u64, after: Duration) {
    tokio::time::sleep(after).await;
    let start = Instant::now();
    let mut due_so_far: u64 = 0;
    let mut tick = tokio::time::interval(GROW_TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let due = u128::from(per_sec) * start.elapsed().as_nanos() / 1_000_000_000;
        let due = u64::try_from(due).unwrap_or(u64::MAX);
        let step = due.saturating_sub(due_so_far);
        due_so_far = due;
        if step == 0 {
            continue;
        }
        let for_alloc = Arc::clone(&state);
        let granted = tokio::task::spawn_blocking(move || for_alloc.store.retain(step))
            .await
            .unwrap_or(0);
        if granted < step {
            // At the cap (or out of memory): nothing ever frees retained memory, so stop.
            return;
        }
    }
}

async fn periodic_spikes(state: Arc<State>, bytes: u64, hold: Duration, every: Duration) {
    // Spikes run as their own tasks so a hold longer than the period does not skew the rhythm;
    // dropping this set (when this task is aborted) aborts them.
    let mut spikes = JoinSet::new();
    let mut tick = tokio::time::interval_at(Instant::now() + every, every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        while spikes.try_join_next().is_some() {}
        spikes.spawn(spike(Arc::clone(&state), bytes, hold));
    }
}

/// Allocates and touches `bytes`, holds them for `hold`, then frees them back to the OS.
async fn spike(state: Arc<State>, bytes: u64, hold: Duration) {
    let len = usize::try_from(bytes).unwrap_or(usize::MAX);
    let buffer = match tokio::task::spawn_blocking(move || touched_buffer(len)).await {
        Ok(Ok(buffer)) => buffer,
        Ok(Err(err)) => {
            eprintln!("demo-service: spike of {bytes} bytes could not be allocated: {err}");
            return;
        }
        Err(_) => return,
    };
    state.spike_bytes_now.fetch_add(bytes, Ordering::Relaxed);
    state.spikes.fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep(hold).await;
    // Unmapping hundreds of MiB takes a while; keep it off the request workers.
    let _ = tokio::task::spawn_blocking(move || drop(buffer)).await;
    state.spike_bytes_now.fetch_sub(bytes, Ordering::Relaxed);
}

/// Retained memory: chunks that live as long as the service, plus the count of bytes in them.
struct Store {
    retained: AtomicU64,
    cap: u64,
    chunks: Mutex<Chunks>,
}

#[derive(Default)]
struct Chunks {
    full: Vec<Vec<u8>>,
    /// Partly filled chunk that small per-request amounts are appended to.
    open: Vec<u8>,
}

impl Store {
    fn new(cap: Option<u64>) -> Self {
        tune_allocator();
        Store {
            retained: AtomicU64::new(0),
            cap: cap.unwrap_or(u64::MAX),
            chunks: Mutex::new(Chunks::default()),
        }
    }

    fn retained(&self) -> u64 {
        self.retained.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, Chunks> {
        self.chunks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Retains up to `want` bytes within the cap; returns how many were retained.
    fn retain(&self, want: u64) -> u64 {
        let mut granted = 0;
        let _ = self
            .retained
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |current| {
                granted = want.min(self.cap.saturating_sub(current));
                (granted > 0).then(|| current + granted)
            });
        if granted == 0 {
            return 0;
        }
        let len = usize::try_from(granted).unwrap_or(usize::MAX);
        if len < CHUNK {
            self.append_small(len);
            granted
        } else {
            match self.append_bulk(len) {
                Ok(()) => granted,
                Err(_) => {
                    self.retained.fetch_sub(granted, Ordering::Relaxed);
                    0
                }
            }
        }
    }

    /// Retains `bytes` regardless of the cap (the baseline).
    fn retain_uncapped(&self, bytes: u64) -> Result<(), TryReserveError> {
        let len = usize::try_from(bytes).unwrap_or(usize::MAX);
        self.append_bulk(len)?;
        self.retained.fetch_add(bytes, Ordering::Relaxed);
        Ok(())
    }

    /// Appends to the open chunk under the lock (a memset of at most a chunk).
    fn append_small(&self, mut len: usize) {
        let mut chunks = self.lock();
        while len > 0 {
            if chunks.open.len() == chunks.open.capacity() {
                let filled = std::mem::replace(&mut chunks.open, Vec::with_capacity(CHUNK));
                if !filled.is_empty() {
                    chunks.full.push(filled);
                }
            }
            let n = (chunks.open.capacity() - chunks.open.len()).min(len);
            let new_len = chunks.open.len() + n;
            chunks.open.resize(new_len, FILL);
            len -= n;
        }
    }

    /// Allocates and touches whole chunks outside the lock, then files them.
    fn append_bulk(&self, len: usize) -> Result<(), TryReserveError> {
        let mut fresh = Vec::new();
        fresh.try_reserve_exact(len.div_ceil(CHUNK))?;
        let mut left = len;
        while left > 0 {
            let n = left.min(CHUNK);
            fresh.push(touched_buffer(n)?);
            left -= n;
        }
        self.lock().full.extend(fresh);
        Ok(())
    }
}

/// A buffer of `len` bytes, every byte written (non-zero), so every page is resident.
fn touched_buffer(len: usize) -> Result<Vec<u8>, TryReserveError> {
    let mut buffer = Vec::new();
    buffer.try_reserve_exact(len)?;
    buffer.resize(len, FILL);
    // Keep the optimiser from reasoning the writes away.
    std::hint::black_box(&mut buffer);
    Ok(buffer)
}

/// Pins glibc's mmap threshold. Left alone, glibc raises it after each large free, and a later
/// spike of up to 32 MiB would then come from the heap and might never be given back to the OS.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: mallopt only changes allocator tuning; it is called once and is
            // thread-safe in glibc.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            }
        });
    }
}

/// `1048576`, `512Ki`, `16Mi`, `1.5Gi`, `2Ti`, `100k`, `10M`, `1G` (also with a `B`/`iB` tail).
fn parse_bytes(text: &str) -> Result<u64, String> {
    let bad = || format!("`{text}` is not a byte size (examples: 1048576, 512Ki, 16Mi, 2Gi)");
    let s = text.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let multiplier = match unit.trim() {
        "" | "B" => 1,
        "Ki" | "KiB" => KI,
        "Mi" | "MiB" => MI,
        "Gi" | "GiB" => GI,
        "Ti" | "TiB" => TI,
        "k" | "K" | "kB" | "KB" => 1_000,
        "M" | "MB" => 1_000_000,
        "G" | "GB" => 1_000_000_000,
        "T" | "TB" => 1_000_000_000_000,
        _ => return Err(bad()),
    };
    if number.contains('.') {
        let value: f64 = number.parse().map_err(|_| bad())?;
        let bytes = (value * multiplier as f64).round();
        if !bytes.is_finite() || bytes >= u64::MAX as f64 {
            return Err(bad());
        }
        Ok(bytes as u64)
    } else {
        let value: u64 = number.parse().map_err(|_| bad())?;
        value.checked_mul(multiplier).ok_or_else(bad)
    }
}

/// `500ms`, `5s`, `1.5s`, `2m`, `1h`, `250us`; a bare number is seconds (`0` = none).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not a duration (examples: 500ms, 5s, 2m)");
    let s = text.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let seconds_per_unit = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "ns" => 1e-9,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(bad()),
    };
    let value: f64 = number.parse().map_err(|_| bad())?;
    Duration::try_from_secs_f64(value * seconds_per_unit).map_err(|_| bad())
}

/// `0.25` or `25%`, within 0..=1.
fn parse_ratio(text: &str) -> Result<f64, String> {
    let bad = || format!("`{text}` is not a ratio between 0 and 1 (examples: 0.05, 5%)");
    let s = text.trim();
    let ratio = match s.strip_suffix('%') {
        Some(percent) => percent.trim().parse::<f64>().map_err(|_| bad())? / 100.0,
        None => s.parse::<f64>().map_err(|_| bad())?,
    };
    if (0.0..=1.0).contains(&ratio) {
        Ok(ratio)
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
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
}
