//! Getting bytes to the line parser, fast and in constant memory: plain files are read in 4 MiB
//! blocks (a big file is split at newlines into one byte range per core, each aggregated in its
//! own thread, line numbers offset afterwards); gzip (recognised by its magic bytes 1f 8b, not
//! by the name) is inflated in one thread while another parses; `-` reads stdin; several files
//! are read in parallel, one aggregate each, merged as parallel k6 runners. A last line without
//! its newline is checked strictly: when it is not complete JSON it is a truncated line (k6 was
//! killed while writing), a warning rather than an error, and so is a gzip stream that ends
//! early.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, sync_channel};
use std::sync::{Arc, Mutex};

use flate2::read::MultiGzDecoder;
use memchr::memchr_iter;

use super::aggregate::{Aggregate, LineIssue, MAX_ISSUES};
use super::line::{process_line, Handled};
use super::{K6Error, ReadOptions};

/// Size of one read / one inflated block.
const BLOCK: usize = 4 << 20;
/// A line longer than this is not k6 output (and would defeat constant memory).
const MAX_LINE: usize = 64 << 20;

/// One input: a file, or stdin for `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    File(PathBuf),
    Stdin,
}

impl Source {
    pub fn label(&self) -> String {
        match self {
            Source::File(p) => p.display().to_string(),
            Source::Stdin => "<stdin>".to_string(),
        }
    }
}

/// Why a reading thread stopped without an aggregate.
#[derive(Debug)]
pub(crate) enum Failure {
    Error(K6Error),
    /// Another part failed first; this one's result does not matter.
    Cancelled,
}

impl From<K6Error> for Failure {
    fn from(e: K6Error) -> Self {
        Failure::Error(e)
    }
}

fn io_error(file: &str, source: io::Error) -> Failure {
    Failure::Error(K6Error::Io {
        file: file.to_string(),
        source,
    })
}

/// Splits a byte stream into lines and feeds them to an aggregate.
pub(crate) struct Feeder<'o> {
    file: Arc<str>,
    opts: &'o ReadOptions,
    pub agg: Aggregate,
    carry: Vec<u8>,
    line: u64,
}

impl<'o> Feeder<'o> {
    pub fn new(file: &str, opts: &'o ReadOptions) -> Self {
        Feeder {
            file: Arc::from(file),
            opts,
            agg: Aggregate::new(opts.max_request_names),
            carry: Vec::new(),
            line: 0,
        }
    }

    pub fn block(&mut self, data: &[u8]) -> Result<(), K6Error> {
        self.agg.stats.bytes += data.len() as u64;
        let mut start = 0;
        for nl in memchr_iter(b'\n', data) {
            if self.carry.is_empty() {
                self.line(&data[start..nl])?;
            } else {
                let mut carry = std::mem::take(&mut self.carry);
                carry.extend_from_slice(&data[start..nl]);
                let r = self.line(&carry);
                carry.clear();
                self.carry = carry;
                r?;
            }
            start = nl + 1;
        }
        self.carry.extend_from_slice(&data[start..]);
        if self.carry.len() > MAX_LINE {
            return Err(K6Error::Malformed {
                file: self.file.to_string(),
                line: self.line + 1,
                reason: format!("line longer than {} MiB", MAX_LINE >> 20),
            });
        }
        Ok(())
    }

    #[inline]
    fn line(&mut self, bytes: &[u8]) -> Result<(), K6Error> {
        self.line += 1;
        let stats = &mut self.agg.stats;
        stats.lines += 1;
        match process_line(bytes, &mut self.agg, self.opts.force_slow_path) {
            Ok(Handled::Point | Handled::Skipped) => self.agg.stats.points += 1,
            Ok(Handled::Metric) => self.agg.stats.metric_lines += 1,
            Ok(Handled::Unknown) => self.agg.stats.unknown_lines += 1,
            Ok(Handled::Blank) => {}
            Err(reason) if self.opts.lenient => {
                self.agg.stats.skipped_lines += 1;
                self.issue(false, reason);
            }
            Err(reason) => {
                return Err(K6Error::Malformed {
                    file: self.file.to_string(),
                    line: self.line,
                    reason,
                })
            }
        }
        Ok(())
    }

    fn issue(&mut self, truncated: bool, reason: String) {
        if self.agg.issues.len() < MAX_ISSUES {
            self.agg.issues.push(LineIssue {
                file: self.file.clone(),
                line: self.line,
                truncated,
                reason,
            });
        }
    }

    /// Ends the stream: a last line without newline is read only when it is complete JSON.
    pub fn finish(mut self) -> Result<Aggregate, K6Error> {
        let last = std::mem::take(&mut self.carry);
        if !last.iter().all(u8::is_ascii_whitespace) {
            if serde_json::from_slice::<serde::de::IgnoredAny>(&last).is_ok() {
                self.line(&last)?;
            } else {
                self.line += 1;
                self.agg.stats.lines += 1;
                self.agg.stats.truncated_lines += 1;
                self.issue(
                    true,
                    "the last line is cut off (k6 stopped while writing?); ignored".to_string(),
                );
            }
        }
        Ok(self.agg)
    }
}

/// Reads all sources: one aggregate per source (in parallel threads when there are several),
/// merged as parallel runners.
pub(crate) fn read_sources(sources: &[Source], opts: &ReadOptions) -> Result<Aggregate, K6Error> {
    let threads = opts.effective_threads();
    if sources.len() == 1 {
        return match read_one(&sources[0], opts, threads, &AtomicBool::new(false)) {
            Ok(agg) => Ok(agg),
            Err(Failure::Error(e)) => Err(e),
            Err(Failure::Cancelled) => unreachable!("nothing cancels a single source"),
        };
    }
    let abort = AtomicBool::new(false);
    let next = AtomicUsize::new(0);
    // Each finished file is merged at once, so at most `threads` file aggregates and the
    // merged one exist at a time, however many files there are.
    type Acc = (Option<Aggregate>, Option<(usize, K6Error)>);
    let acc: Mutex<Acc> = Mutex::new((None, None));
    std::thread::scope(|s| {
        for _ in 0..threads.min(sources.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= sources.len() || abort.load(Ordering::Relaxed) {
                    break;
                }
                let r = read_one(&sources[i], opts, 1, &abort);
                let mut acc = acc.lock().expect("merge lock");
                match r {
                    Ok(agg) => match &mut acc.0 {
                        Some(m) => m.merge_runner(agg),
                        None => acc.0 = Some(agg),
                    },
                    Err(Failure::Error(e)) => {
                        abort.store(true, Ordering::Relaxed);
                        if acc.1.as_ref().is_none_or(|(j, _)| i < *j) {
                            acc.1 = Some((i, e));
                        }
                    }
                    Err(Failure::Cancelled) => {}
                }
            });
        }
    });
    let (merged, error) = acc.into_inner().expect("merge lock");
    if let Some((_, e)) = error {
        return Err(e);
    }
    let mut agg = merged.unwrap_or_else(|| Aggregate::new(opts.max_request_names));
    // The order files finished in must not show: sources, issues and warnings in input order.
    let labels: Vec<String> = sources.iter().map(Source::label).collect();
    let rank = |label: &str| labels.iter().position(|l| l == label).unwrap_or(usize::MAX);
    agg.sources.sort_by_key(|l| rank(l));
    agg.issues.sort_by_key(|i| (rank(&i.file), i.line));
    agg.warnings.sort();
    Ok(agg)
}

/// Reads the first bytes of `r` and gives them back in front of the rest.
fn sniff_gzip<R: Read>(mut r: R) -> io::Result<(bool, impl Read)> {
    let mut head = [0u8; 2];
    let mut n = 0;
    while n < 2 {
        match r.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let is_gz = n == 2 && head == [0x1f, 0x8b];
    Ok((is_gz, io::Cursor::new(head[..n].to_vec()).chain(r)))
}

fn read_one(
    src: &Source,
    opts: &ReadOptions,
    threads: usize,
    abort: &AtomicBool,
) -> Result<Aggregate, Failure> {
    let label = src.label();
    let mut agg = match src {
        Source::Stdin => {
            let (gz, r) = sniff_gzip(io::stdin()).map_err(|e| io_error(&label, e))?;
            if gz {
                read_gz(r, &label, opts, abort)?
            } else {
                read_plain(r, &label, opts, abort)?
            }
        }
        Source::File(path) => {
            let mut f = File::open(path).map_err(|e| io_error(&label, e))?;
            let len = f.metadata().map_err(|e| io_error(&label, e))?.len();
            let mut head = [0u8; 2];
            let gz = f.read_exact(&mut head).is_ok() && head == [0x1f, 0x8b];
            f.seek(SeekFrom::Start(0))
                .map_err(|e| io_error(&label, e))?;
            if gz {
                read_gz(f, &label, opts, abort)?
            } else if threads > 1 && len >= opts.split_threshold {
                read_split(path, len, &label, opts, threads)?
            } else {
                read_plain(f, &label, opts, abort)?
            }
        }
    };
    agg.sources = vec![label];
    Ok(agg)
}

fn read_plain<R: Read>(
    mut r: R,
    label: &str,
    opts: &ReadOptions,
    abort: &AtomicBool,
) -> Result<Aggregate, Failure> {
    let mut feeder = Feeder::new(label, opts);
    let mut buf = vec![0u8; BLOCK];
    loop {
        if abort.load(Ordering::Relaxed) {
            return Err(Failure::Cancelled);
        }
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => feeder.block(&buf[..n])?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error(label, e)),
        }
    }
    Ok(feeder.finish()?)
}

/// Fills `buf` as far as the reader goes; `Ok(true)` at end of stream.
fn fill<R: Read>(r: &mut R, buf: &mut [u8], filled: &mut usize) -> io::Result<bool> {
    while *filled < buf.len() {
        match r.read(&mut buf[*filled..]) {
            Ok(0) => return Ok(true),
            Ok(n) => *filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

enum GzMsg {
    Block(Vec<u8>, usize),
    End,
    Truncated,
    Error(io::Error),
}

/// Inflates in a helper thread while this one parses; blocks are recycled so at most four
/// exist at a time.
fn read_gz<R: Read + Send>(
    r: R,
    label: &str,
    opts: &ReadOptions,
    abort: &AtomicBool,
) -> Result<Aggregate, Failure> {
    std::thread::scope(|s| {
        let (tx, rx) = sync_channel::<GzMsg>(2);
        let (back_tx, back_rx) = channel::<Vec<u8>>();
        s.spawn(move || {
            let mut dec = MultiGzDecoder::new(BufReader::with_capacity(1 << 18, r));
            loop {
                let mut buf = back_rx.try_recv().unwrap_or_else(|_| vec![0u8; BLOCK]);
                let mut filled = 0;
                let end = fill(&mut dec, &mut buf, &mut filled);
                let msg = match end {
                    Ok(false) => GzMsg::Block(buf, filled),
                    Ok(true) => {
                        if filled > 0 && tx.send(GzMsg::Block(buf, filled)).is_err() {
                            return;
                        }
                        let _ = tx.send(GzMsg::End);
                        return;
                    }
                    Err(e) => {
                        if filled > 0 && tx.send(GzMsg::Block(buf, filled)).is_err() {
                            return;
                        }
                        let _ = tx.send(if e.kind() == io::ErrorKind::UnexpectedEof {
                            GzMsg::Truncated
                        } else {
                            GzMsg::Error(e)
                        });
                        return;
                    }
                };
                if tx.send(msg).is_err() {
                    return; // the parser stopped
                }
            }
        });
        let mut feeder = Feeder::new(label, opts);
        let mut truncated = false;
        for msg in rx.iter() {
            if abort.load(Ordering::Relaxed) {
                return Err(Failure::Cancelled);
            }
            match msg {
                GzMsg::Block(buf, n) => {
                    feeder.block(&buf[..n])?;
                    let _ = back_tx.send(buf);
                }
                GzMsg::End => break,
                GzMsg::Truncated => {
                    truncated = true;
                    break;
                }
                GzMsg::Error(e) => {
                    return Err(io_error(
                        label,
                        io::Error::new(e.kind(), format!("corrupt gzip data: {e}")),
                    ))
                }
            }
        }
        let mut agg = feeder.finish()?;
        if truncated {
            agg.warnings.push(format!(
                "{label}: the gzip stream ends early (k6 stopped while writing?); read what was there"
            ));
        }
        Ok(agg)
    })
}

/// Byte offsets where chunks start: `len × i / n`, each moved just past the next newline.
fn chunk_starts(f: &mut File, len: u64, n: usize) -> io::Result<Vec<u64>> {
    let mut starts = vec![0u64];
    let mut window = vec![0u8; 64 << 10];
    for i in 1..n {
        let mut pos = (len * i as u64 / n as u64).max(*starts.last().unwrap_or(&0));
        f.seek(SeekFrom::Start(pos))?;
        let boundary = loop {
            let k = f.read(&mut window)?;
            if k == 0 {
                break len;
            }
            if let Some(j) = memchr::memchr(b'\n', &window[..k]) {
                break pos + j as u64 + 1;
            }
            pos += k as u64;
        };
        if boundary < len && boundary > *starts.last().unwrap_or(&0) {
            starts.push(boundary);
        }
    }
    Ok(starts)
}

/// One big plain file, one byte range per thread, merged as parts of the same runner.
fn read_split(
    path: &Path,
    len: u64,
    label: &str,
    opts: &ReadOptions,
    threads: usize,
) -> Result<Aggregate, Failure> {
    let mut f = File::open(path).map_err(|e| io_error(label, e))?;
    let starts = chunk_starts(&mut f, len, threads).map_err(|e| io_error(label, e))?;
    let ranges: Vec<(u64, u64)> = starts
        .iter()
        .enumerate()
        .map(|(i, &s)| (s, starts.get(i + 1).copied().unwrap_or(len)))
        .collect();
    // The lowest index of a chunk that failed: later chunks stop, earlier ones finish (their
    // line counts are needed to number the failing line).
    let failed = AtomicUsize::new(usize::MAX);
    let results: Vec<Result<Aggregate, Failure>> = std::thread::scope(|s| {
        let handles: Vec<_> = ranges
            .iter()
            .enumerate()
            .map(|(i, &(start, end))| {
                let failed = &failed;
                s.spawn(move || {
                    let r = read_range(path, start, end, label, opts, i, failed);
                    if matches!(r, Err(Failure::Error(_))) {
                        failed.fetch_min(i, Ordering::Relaxed);
                    }
                    r
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Err(Failure::Cancelled)))
            .collect()
    });
    let mut merged: Option<Aggregate> = None;
    let mut lines_before = 0u64;
    for r in results {
        match r {
            Ok(mut agg) => {
                for issue in &mut agg.issues {
                    issue.line += lines_before;
                }
                lines_before += agg.stats.lines;
                match &mut merged {
                    Some(m) => m.merge_chunk(agg),
                    None => merged = Some(agg),
                }
            }
            Err(Failure::Error(K6Error::Malformed { file, line, reason })) => {
                return Err(Failure::Error(K6Error::Malformed {
                    file,
                    line: line + lines_before,
                    reason,
                }))
            }
            Err(e) => return Err(e),
        }
    }
    Ok(merged.unwrap_or_else(|| Aggregate::new(opts.max_request_names)))
}

fn read_range(
    path: &Path,
    start: u64,
    end: u64,
    label: &str,
    opts: &ReadOptions,
    index: usize,
    failed: &AtomicUsize,
) -> Result<Aggregate, Failure> {
    let mut f = File::open(path).map_err(|e| io_error(label, e))?;
    f.seek(SeekFrom::Start(start))
        .map_err(|e| io_error(label, e))?;
    let mut r = f.take(end - start);
    let mut feeder = Feeder::new(label, opts);
    let mut buf = vec![0u8; BLOCK];
    loop {
        if failed.load(Ordering::Relaxed) < index {
            return Err(Failure::Cancelled);
        }
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => feeder.block(&buf[..n])?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error(label, e)),
        }
    }
    Ok(feeder.finish()?)
}

/// Any stream, plain or gzip.
pub(crate) fn read_reader<R: Read + Send>(
    label: &str,
    reader: R,
    opts: &ReadOptions,
) -> Result<Aggregate, K6Error> {
    let never = AtomicBool::new(false);
    let run = || -> Result<Aggregate, Failure> {
        let (gz, r) = sniff_gzip(reader).map_err(|e| io_error(label, e))?;
        let mut agg = if gz {
            read_gz(r, label, opts, &never)?
        } else {
            read_plain(r, label, opts, &never)?
        };
        agg.sources = vec![label.to_string()];
        Ok(agg)
    };
    match run() {
        Ok(agg) => Ok(agg),
        Err(Failure::Error(e)) => Err(e),
        Err(Failure::Cancelled) => unreachable!("nothing cancels a single stream"),
    }
}
