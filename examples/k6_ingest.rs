//! Reads k6 `--out json` results with oomgate's reader and prints how fast it went, for
//! `scripts/bench-k6-ingest`: the JSON bytes read (after decompression), the file bytes, the
//! wall time, MB/s of JSON, the CPU time it took (all threads; on a busy machine MB per CPU
//! second says more than wall time), this process's peak RSS (VmHWM), and a few numbers read.
//!
//!   k6_ingest [--lenient] [--threads N] [--slow] FILE... (`-` = stdin)
//!   k6_ingest --inflate-only FILE.gz   (the same inflater, output discarded: the floor for .gz)

use std::time::Instant;

use oomgate::k6::{read_files, summarize, ReadOptions};

/// User + system CPU seconds of this process so far (all threads).
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the zeroed struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0.0;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(ru.ru_utime) + secs(ru.ru_stime)
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Inflates with the reader's gzip backend (flate2 on zlib-rs) and throws the bytes away.
fn inflate_only(path: &str) -> anyhow::Result<()> {
    use std::io::Read;
    let started = Instant::now();
    let file = std::io::BufReader::with_capacity(1 << 18, std::fs::File::open(path)?);
    let mut dec = flate2::read::MultiGzDecoder::new(file);
    let mut buf = vec![0u8; 4 << 20];
    let mut bytes = 0u64;
    loop {
        match dec.read(&mut buf)? {
            0 => break,
            n => bytes += n as u64,
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "bytes={bytes} seconds={secs:.3} mb_per_s={:.1}",
        bytes as f64 / 1e6 / secs
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let mut opts = ReadOptions::default();
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--lenient" => opts.lenient = true,
            "--slow" => opts.force_slow_path = true,
            "--inflate-only" => {
                let file = args
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--inflate-only needs a file"))?;
                return inflate_only(&file);
            }
            "--threads" => {
                opts.threads = args
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--threads needs a number"))?
                    .parse()?
            }
            _ => files.push(a),
        }
    }
    if files.is_empty() {
        anyhow::bail!("usage: k6_ingest [--lenient] [--threads N] [--slow] FILE...");
    }
    let file_bytes: u64 = files
        .iter()
        .filter(|f| *f != "-")
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let started = Instant::now();
    let cpu_before = cpu_seconds();
    let agg = read_files(&files, &opts)?;
    let summary = summarize(&agg, None);
    let secs = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    let json_bytes = summary.stats.bytes;
    println!(
        "bytes={json_bytes} file_bytes={file_bytes} seconds={secs:.3} mb_per_s={:.1} cpu_seconds={cpu:.3} \
         mb_per_cpu_s={:.1} peak_rss_mib={:.1} lines={} requests={} p95_ms={:.3} max_ms={:.3} stages={} \
         fallback_lines={}",
        json_bytes as f64 / 1e6 / secs,
        json_bytes as f64 / 1e6 / cpu.max(1e-9),
        peak_rss_kib().unwrap_or(0) as f64 / 1024.0,
        summary.stats.lines,
        summary.requests,
        summary.duration.p95_ms,
        summary.duration.max_ms,
        summary.stages.len(),
        summary.stats.fallback_lines,
    );
    for w in &summary.warnings {
        eprintln!("warning: {w}");
    }
    Ok(())
}
