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
mod tests;
