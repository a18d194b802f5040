//! Using every core on one input. A big plain file is split into one byte range per thread,
//! each starting just after a newline and read with its own file handle (`read_split`). A
//! stream (gzip, stdin) goes through a pipeline (`read_blocks`): one thread reads or inflates
//! 4 MiB blocks cut at the last newline, the others parse whole blocks, each into its own
//! aggregate. Either way the parts are merged as one runner's output, and line numbers are
//! counted per part and offset once the lines of all earlier parts are known, so an error names
//! the same line whatever the split; after an error, only the parts before it still run.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, sync_channel};
use std::sync::Mutex;

use super::aggregate::Aggregate;
use super::input::{io_error, Failure, Feeder, BLOCK, MAX_LINE};
use super::{K6Error, ReadOptions};

/// Adds the lines of earlier parts to the line numbers of part-relative issues and errors.
fn renumber(agg: &mut Aggregate, lines_before: impl Fn(u64) -> u64) {
    for issue in &mut agg.issues {
        issue.line += lines_before(issue.block);
        issue.block = 0;
    }
}

fn offset_error(e: K6Error, lines_before: u64) -> K6Error {
    match e {
        K6Error::Malformed { file, line, reason } => K6Error::Malformed {
            file,
            line: line + lines_before,
            reason,
        },
        other => other,
    }
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

/// One big plain file, one byte range per thread.
pub(crate) fn read_split(
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
    // line counts number the failing line).
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
                renumber(&mut agg, |_| lines_before);
                lines_before += agg.stats.lines;
                match &mut merged {
                    Some(m) => m.merge_chunk(agg),
                    None => merged = Some(agg),
                }
            }
            Err(Failure::Error(e)) => return Err(Failure::Error(offset_error(e, lines_before))),
            Err(Failure::Cancelled) => return Err(Failure::Cancelled),
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

/// Fills `buf[*filled..]` as far as the reader goes; `Ok(true)` at end of stream.
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

/// Whole lines (the last block may end without a newline), numbered in input order.
struct Block {
    seq: u64,
    buf: Vec<u8>,
    len: usize,
}

/// How the reading side ended.
enum Ending {
    Complete,
    /// A gzip stream that stops mid-way (k6 killed while writing).
    Truncated,
    Failed(io::Error),
    LineTooLong(u64),
    Stopped,
}

/// Reads `r` in a helper thread, cutting blocks at newlines, and parses the blocks in
/// `workers` threads. `gz` says an early end of stream is a truncated gzip file.
pub(crate) fn read_blocks<R: Read + Send>(
    mut r: R,
    gz: bool,
    label: &str,
    opts: &ReadOptions,
    workers: usize,
    abort: &AtomicBool,
) -> Result<Aggregate, Failure> {
    let failed = AtomicU64::new(u64::MAX);
    let stop = || abort.load(Ordering::Relaxed) || failed.load(Ordering::Relaxed) != u64::MAX;
    let line_counts: Mutex<Vec<u64>> = Mutex::new(Vec::new());
    let (tx, rx) = sync_channel::<Block>(2);
    let rx = Mutex::new(rx);
    let (back_tx, back_rx) = channel::<Vec<u8>>();
    let (ending, parts) = std::thread::scope(|s| {
        let producer = s.spawn(move || {
            let mut seq = 0u64;
            let mut tail: Vec<u8> = Vec::new();
            loop {
                if stop() {
                    return Ending::Stopped;
                }
                let mut buf = back_rx.try_recv().unwrap_or_default();
                // Blocks start at 64 KiB and double up to BLOCK: a small file (a fuzz input, a
                // short run) does not zero 4 MiB buffers, a big one reaches full blocks at once.
                let block = ((64usize << 10) << seq.min(6)).min(BLOCK);
                // A long line carried over grows the buffer by half of itself: linear copying.
                let want = (tail.len() + block.max(tail.len()) / 2).max(block);
                if buf.len() < want {
                    buf.resize(want, 0);
                }
                buf[..tail.len()].copy_from_slice(&tail);
                let mut filled = tail.len();
                tail.clear();
                let read = fill(&mut r, &mut buf, &mut filled);
                let cut = match read {
                    Ok(false) => match memchr::memrchr(b'\n', &buf[..filled]) {
                        Some(nl) => nl + 1,
                        None if filled > MAX_LINE => return Ending::LineTooLong(seq),
                        None => {
                            tail.extend_from_slice(&buf[..filled]); // a long line: read on
                            continue;
                        }
                    },
                    _ => filled, // end of stream or error: what is there is the last block
                };
                tail.extend_from_slice(&buf[cut..filled]);
                if cut > 0 && tx.send(Block { seq, buf, len: cut }).is_err() {
                    return Ending::Stopped;
                }
                seq += 1;
                match read {
                    Ok(false) => {}
                    Ok(true) => return Ending::Complete,
                    Err(e) if gz && e.kind() == io::ErrorKind::UnexpectedEof => {
                        return Ending::Truncated
                    }
                    Err(e) => return Ending::Failed(e),
                }
            }
        });
        let parsers: Vec<_> = (0..workers.max(1))
            .map(|_| {
                let (rx, back_tx, failed, line_counts) =
                    (&rx, back_tx.clone(), &failed, &line_counts);
                s.spawn(move || {
                    let mut feeder = Feeder::new(label, opts);
                    let mut error: Option<(u64, K6Error)> = None;
                    loop {
                        let next = rx.lock().expect("block queue").recv();
                        let Ok(Block { seq, buf, len }) = next else {
                            break;
                        };
                        // Blocks after a failed one are drained unread; earlier ones are
                        // still read (their line counts number the failing line, and they
                        // may hold an earlier error).
                        if seq < failed.load(Ordering::Relaxed) {
                            feeder.start_block(seq);
                            let read = feeder.block(&buf[..len]);
                            let mut counts = line_counts.lock().expect("line counts");
                            if counts.len() <= seq as usize {
                                counts.resize(seq as usize + 1, 0);
                            }
                            counts[seq as usize] = feeder.position().1;
                            drop(counts);
                            if let Err(e) = read {
                                failed.fetch_min(seq, Ordering::Relaxed);
                                if error.as_ref().is_none_or(|(s, _)| seq < *s) {
                                    error = Some((seq, e));
                                }
                            }
                        }
                        let _ = back_tx.send(buf);
                    }
                    let block = feeder.position().0;
                    match error {
                        Some(e) => Err(e),
                        None => feeder.finish().map_err(|e| (block, e)),
                    }
                })
            })
            .collect();
        drop(back_tx);
        let ending = producer.join().unwrap_or(Ending::Stopped);
        let parts: Vec<Result<Aggregate, (u64, K6Error)>> = parsers
            .into_iter()
            .map(|h| h.join().expect("parser thread"))
            .collect();
        (ending, parts)
    });
    let counts = line_counts.into_inner().expect("line counts");
    let before = |seq: u64| counts.iter().take(seq as usize).sum::<u64>();
    let mut merged = Aggregate::new(opts.max_request_names);
    let mut first_error: Option<(u64, K6Error)> = None;
    for part in parts {
        match part {
            Ok(mut agg) => {
                renumber(&mut agg, before);
                merged.merge_chunk(agg);
            }
            Err((seq, e)) => {
                if first_error.as_ref().is_none_or(|(s, _)| seq < *s) {
                    first_error = Some((seq, e));
                }
            }
        }
    }
    if let Some((seq, e)) = first_error {
        return Err(Failure::Error(offset_error(e, before(seq))));
    }
    match ending {
        Ending::Complete => {}
        Ending::Truncated => {
            merged.warnings.push(format!(
                "{label}: the gzip stream ends early (k6 stopped while writing?); read what was there"
            ));
            merged.cut_streams.push(label.to_string());
        }
        Ending::Failed(e) => {
            let what = if gz {
                "corrupt gzip data"
            } else {
                "read error"
            };
            return Err(io_error(
                label,
                io::Error::new(e.kind(), format!("{what}: {e}")),
            ));
        }
        Ending::LineTooLong(seq) => {
            return Err(Failure::Error(K6Error::Malformed {
                file: label.to_string(),
                line: before(seq) + 1,
                reason: format!("line longer than {} MiB", MAX_LINE >> 20),
            }))
        }
        Ending::Stopped => return Err(Failure::Cancelled),
    }
    merged.issues.sort_by_key(|i| i.line);
    Ok(merged)
}
