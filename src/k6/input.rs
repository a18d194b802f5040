//! Getting bytes to the line parser, fast and in constant memory. `Feeder` splits a byte
//! stream into lines and feeds them to an aggregate; the readers here pick a strategy per
//! source: a big plain file is split at newlines into one byte range per thread, gzip
//! (recognised by its magic bytes 1f 8b, not by the name) and stdin go through a block pipeline
//! (one thread reads or inflates, the others parse; both in `parallel.rs`), and several files
//! are read side by side, one aggregate each, merged as parallel k6 runners as they finish. A
//! last line without its newline is checked strictly: when it is not complete JSON it is a
//! truncated line (k6 was killed while writing), a warning rather than an error, and so is a
//! gzip stream that ends early.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use flate2::read::MultiGzDecoder;
use memchr::memchr_iter;

use super::aggregate::{Aggregate, LineIssue, MAX_ISSUES};
use super::line::{process_line, Handled};
use super::parallel::{read_blocks, read_split};
use super::{K6Error, ReadOptions};

/// Size of one read / one block.
pub(crate) const BLOCK: usize = 4 << 20;
/// A line longer than this is not k6 output (and would defeat constant memory).
pub(crate) const MAX_LINE: usize = 64 << 20;

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

pub(crate) fn io_error(file: &str, source: io::Error) -> Failure {
    Failure::Error(K6Error::Io {
        file: file.to_string(),
        source,
    })
}

/// Splits a byte stream into lines and feeds them to an aggregate. Line numbers count from the
/// start of the stream, or of the current block (`start_block`) for the block pipeline.
pub(crate) struct Feeder<'o> {
    file: Arc<str>,
    opts: &'o ReadOptions,
    pub agg: Aggregate,
    carry: Vec<u8>,
    line: u64,
    block: u64,
}

impl<'o> Feeder<'o> {
    pub fn new(file: &str, opts: &'o ReadOptions) -> Self {
        Feeder {
            file: Arc::from(file),
            opts,
            agg: Aggregate::new(opts.max_request_names),
            carry: Vec::new(),
            line: 0,
            block: 0,
        }
    }

    /// Numbers the following lines from 1 within block `seq` (which starts at a line start).
    pub fn start_block(&mut self, seq: u64) {
        debug_assert!(self.carry.is_empty(), "blocks start at a line start");
        self.block = seq;
        self.line = 0;
    }

    /// The block being read and the lines read in it so far.
    pub fn position(&self) -> (u64, u64) {
        (self.block, self.line)
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
        self.agg.stats.lines += 1;
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
                block: self.block,
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
        let r = read_one(&sources[0], opts, threads, &AtomicBool::new(false));
        return settle(r, &sources[0].label());
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
                let r = MultiGzDecoder::new(BufReader::with_capacity(1 << 18, r));
                read_blocks(r, true, &label, opts, threads, abort)?
            } else {
                read_blocks(r, false, &label, opts, threads, abort)?
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
                let r = MultiGzDecoder::new(BufReader::with_capacity(1 << 18, f));
                read_blocks(r, true, &label, opts, threads, abort)?
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

/// Any stream, plain or gzip.
pub(crate) fn read_reader<R: Read + Send>(
    label: &str,
    reader: R,
    opts: &ReadOptions,
) -> Result<Aggregate, K6Error> {
    let never = AtomicBool::new(false);
    let threads = opts.effective_threads();
    let run = || -> Result<Aggregate, Failure> {
        let (gz, r) = sniff_gzip(reader).map_err(|e| io_error(label, e))?;
        let mut agg = if gz {
            let r = MultiGzDecoder::new(BufReader::with_capacity(1 << 18, r));
            read_blocks(r, true, label, opts, threads, &never)?
        } else {
            read_blocks(r, false, label, opts, threads, &never)?
        };
        agg.sources = vec![label.to_string()];
        Ok(agg)
    };
    settle(run(), label)
}

/// The result of reading a single input, which nothing else can cancel.
fn settle(r: Result<Aggregate, Failure>, label: &str) -> Result<Aggregate, K6Error> {
    match r {
        Ok(agg) => Ok(agg),
        Err(Failure::Error(e)) => Err(e),
        Err(Failure::Cancelled) => Err(K6Error::Io {
            file: label.to_string(),
            source: io::Error::other("reading stopped unexpectedly"),
        }),
    }
}
