//! The mergeable, constant-memory state a k6 results file is folded into: counters, exact sums
//! and extremes, HdrHistograms of `http_req_duration` (overall, per request name, per time
//! bucket), the per-second `vus` timeline and the metric definitions. `line.rs` feeds it one
//! point at a time; `input.rs` merges the aggregates of file chunks (same runner: `vus` max per
//! second) and of separate files (parallel runners: `vus` summed per second); `summary.rs` turns
//! it into numbers. Nothing here grows with the number of points: request names are capped and
//! time buckets coarsen (double their width) whenever there would be too many.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use hdrhistogram::{Counter, Histogram};

use super::line::{Kind, PointRef};

/// The largest value a histogram records (ns): about 11.6 days. Larger values are clamped there
/// (the exact maximum is tracked separately).
const MAX_RECORDABLE_NS: f64 = 1e15;
/// Distinct check names kept before the rest are folded into "other".
const MAX_CHECK_NAMES: usize = 200;
/// Distinct metric definitions kept.
const MAX_METRICS: usize = 1000;
/// Time buckets of the per-stage statistics: start at 100 ms, double the width past this many.
const MAX_BUCKETS: usize = 256;
const FIRST_BUCKET_NS: i64 = 100_000_000;
/// The name under which points beyond the name caps are counted.
pub const OTHER_NAME: &str = "other";

/// Counts of what the reader saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadStats {
    /// Bytes of JSON read (after decompression).
    pub bytes: u64,
    /// Lines read, including blank, skipped and truncated ones.
    pub lines: u64,
    /// Point lines aggregated or deliberately passed over (request timing sub-metrics, …).
    pub points: u64,
    /// Metric definition lines.
    pub metric_lines: u64,
    /// Malformed lines skipped in lenient mode.
    pub skipped_lines: u64,
    /// A last line cut off mid-way (k6 killed while writing): ignored with a warning.
    pub truncated_lines: u64,
    /// Valid JSON lines of an unknown `type`, ignored.
    pub unknown_lines: u64,
    /// Lines the fast scanner handed to serde_json (a diagnostic, not a problem).
    pub fallback_lines: u64,
}

impl ReadStats {
    fn add(&mut self, o: &ReadStats) {
        self.bytes += o.bytes;
        self.lines += o.lines;
        self.points += o.points;
        self.metric_lines += o.metric_lines;
        self.skipped_lines += o.skipped_lines;
        self.truncated_lines += o.truncated_lines;
        self.unknown_lines += o.unknown_lines;
        self.fallback_lines += o.fallback_lines;
    }
}

/// A line the reader passed over, for warnings: file, 1-based line number, why. Readers that
/// number lines per block set `block` and add the lines of earlier blocks once all are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LineIssue {
    pub file: Arc<str>,
    pub block: u64,
    pub line: u64,
    pub truncated: bool,
    pub reason: String,
}

/// At most this many line issues are kept verbatim; the counts in `ReadStats` stay exact.
pub(crate) const MAX_ISSUES: usize = 20;

/// Exact count, sum and extremes plus a histogram of a trend metric. The sum is kept in integer
/// nanoseconds (k6 times have ns resolution), so merging in any order gives the same bits. The
/// histogram counts in `unit_ns` units: ns with 3 significant digits for the overall latency
/// (≤ 0.1 % error), µs with 2 for the many small ones (per name, per time bucket: ~10 KiB each).
#[derive(Debug, Clone)]
pub(crate) struct Trend<C: Counter> {
    pub hist: Histogram<C>,
    pub unit_ns: f64,
    pub count: u64,
    pub sum_ns: i128,
    pub min_ms: f64,
    pub max_ms: f64,
}

impl<C: Counter> Trend<C> {
    /// Overall latency: ns, 3 significant digits.
    pub fn precise() -> Self {
        Self::with(3, 1.0)
    }

    /// Per name and per time bucket: µs, 2 significant digits.
    pub fn compact() -> Self {
        Self::with(2, 1000.0)
    }

    fn with(sigfig: u8, unit_ns: f64) -> Self {
        Trend {
            hist: Histogram::new(sigfig).expect("valid histogram precision"),
            unit_ns,
            count: 0,
            sum_ns: 0,
            min_ms: f64::INFINITY,
            max_ms: f64::NEG_INFINITY,
        }
    }

    #[inline]
    pub fn record(&mut self, ms: f64) {
        self.count += 1;
        let ns = ms * 1e6;
        // Saturating: a hostile file (values of 1e300) must not overflow the sum.
        self.sum_ns = self.sum_ns.saturating_add(ns.round() as i128);
        self.min_ms = self.min_ms.min(ms);
        self.max_ms = self.max_ms.max(ms);
        let units = (ns / self.unit_ns).round().clamp(0.0, MAX_RECORDABLE_NS) as u64;
        // An auto-resizing histogram only fails for values beyond i64::MAX / 2.
        let _ = self.hist.record(units);
    }

    /// A histogram value back in milliseconds.
    pub fn to_ms(&self, units: u64) -> f64 {
        units as f64 * self.unit_ns / 1e6
    }

    pub fn merge(&mut self, o: &Trend<C>) {
        debug_assert_eq!(self.unit_ns, o.unit_ns);
        self.count += o.count;
        self.sum_ns = self.sum_ns.saturating_add(o.sum_ns);
        self.min_ms = self.min_ms.min(o.min_ms);
        self.max_ms = self.max_ms.max(o.max_ms);
        let _ = self.hist.add(&o.hist);
    }
}

/// Per request name: `http_reqs`, `http_req_failed` and `http_req_duration`.
#[derive(Debug, Clone)]
pub(crate) struct NameStats {
    pub requests: f64,
    pub failures: f64,
    pub duration: Trend<u32>,
}

impl NameStats {
    fn new() -> Self {
        NameStats {
            requests: 0.0,
            failures: 0.0,
            // Two significant digits (≤ 1 % value error) keep a name at ~10 KiB.
            duration: Trend::compact(),
        }
    }

    fn merge(&mut self, o: &NameStats) {
        self.requests += o.requests;
        self.failures += o.failures;
        self.duration.merge(&o.duration);
    }
}

/// A bounded name → entry table; names beyond the cap share the entry `OTHER_NAME`.
#[derive(Debug, Clone)]
pub(crate) struct NameTable<T> {
    index: HashMap<Box<[u8]>, usize>,
    pub entries: Vec<(String, T)>,
    cap: usize,
    /// Set once a name had to be counted under "other" because the table was full.
    pub folded: bool,
    /// The last name looked up and its slot (consecutive points usually share a name).
    last_name: Vec<u8>,
    last_slot: Option<usize>,
}

impl<T> NameTable<T> {
    fn new(cap: usize) -> Self {
        NameTable {
            index: HashMap::new(),
            entries: Vec::new(),
            cap: cap.max(1),
            folded: false,
            last_name: Vec::new(),
            last_slot: None,
        }
    }

    #[inline]
    fn slot(&mut self, name: &[u8], make: impl Fn() -> T) -> usize {
        if let Some(i) = self.last_slot {
            if self.last_name == name {
                return i;
            }
        }
        let i = match self.index.get(name) {
            Some(&i) => i,
            None if self.entries.len() < self.cap => self.insert(name, make()),
            None => {
                self.folded = true;
                match self.index.get(OTHER_NAME.as_bytes()) {
                    Some(&i) => i,
                    None => self.insert(OTHER_NAME.as_bytes(), make()),
                }
            }
        };
        self.last_name.clear();
        self.last_name.extend_from_slice(name);
        self.last_slot = Some(i);
        i
    }

    fn insert(&mut self, name: &[u8], value: T) -> usize {
        let i = self.entries.len();
        self.entries
            .push((String::from_utf8_lossy(name).into_owned(), value));
        self.index.insert(name.into(), i);
        i
    }

    #[inline]
    fn get_mut(&mut self, name: &[u8], make: impl Fn() -> T) -> &mut T {
        let i = self.slot(name, make);
        &mut self.entries[i].1
    }

    fn merge_with(&mut self, o: &NameTable<T>, make: impl Fn() -> T, add: impl Fn(&mut T, &T)) {
        self.folded |= o.folded;
        for (name, v) in &o.entries {
            let i = self.slot(name.as_bytes(), &make);
            add(&mut self.entries[i].1, v);
        }
        self.last_slot = None;
    }
}

/// Requests, failures and durations of one time bucket (for per-stage numbers).
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    pub requests: f64,
    pub failures: f64,
    pub duration: Trend<u32>,
}

impl Bucket {
    fn new() -> Self {
        Bucket {
            requests: 0.0,
            failures: 0.0,
            duration: Trend::compact(),
        }
    }

    fn merge(&mut self, o: &Bucket) {
        self.requests += o.requests;
        self.failures += o.failures;
        self.duration.merge(&o.duration);
    }
}

/// Buckets keyed by `time_ns.div_euclid(width_ns)`, widths 100 ms × 2^k, aligned to the epoch
/// so aggregates from different threads and files line up.
#[derive(Debug, Clone)]
pub(crate) struct TimeBuckets {
    pub width_ns: i64,
    pub map: HashMap<i64, Bucket>,
    last_key: i64,
}

impl TimeBuckets {
    fn new() -> Self {
        TimeBuckets {
            width_ns: FIRST_BUCKET_NS,
            map: HashMap::new(),
            last_key: i64::MIN,
        }
    }

    #[inline]
    fn at(&mut self, time_ns: i64) -> &mut Bucket {
        let key = time_ns.div_euclid(self.width_ns);
        if key != self.last_key && !self.map.contains_key(&key) && self.map.len() >= MAX_BUCKETS {
            self.coarsen_to(self.width_ns * 2);
            return self.at(time_ns);
        }
        self.last_key = key;
        self.map.entry(key).or_insert_with(Bucket::new)
    }

    fn coarsen_to(&mut self, width_ns: i64) {
        if width_ns <= self.width_ns {
            return;
        }
        let factor = width_ns / self.width_ns;
        let old = std::mem::take(&mut self.map);
        for (k, b) in old {
            match self.map.entry(k.div_euclid(factor)) {
                std::collections::hash_map::Entry::Occupied(mut e) => e.get_mut().merge(&b),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(b);
                }
            }
        }
        self.width_ns = width_ns;
        self.last_key = i64::MIN;
    }

    fn merge(&mut self, mut o: TimeBuckets) {
        let width = self.width_ns.max(o.width_ns);
        self.coarsen_to(width);
        o.coarsen_to(width);
        for (k, b) in o.map {
            match self.map.entry(k) {
                std::collections::hash_map::Entry::Occupied(mut e) => e.get_mut().merge(&b),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(b);
                }
            }
        }
        while self.map.len() > MAX_BUCKETS {
            self.coarsen_to(self.width_ns * 2);
        }
        self.last_key = i64::MIN;
    }
}

/// Thresholds and type a Metric line declared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricInfo {
    /// `counter`, `gauge`, `rate`, `trend`.
    pub metric_type: String,
    /// Threshold expressions as k6 wrote them, e.g. `p(95)<500`.
    pub thresholds: Vec<String>,
}

/// Everything read from one or more k6 results files; merge with `merge_runner`, summarize with
/// `k6::summarize`.
#[derive(Debug, Clone)]
pub struct Aggregate {
    pub(crate) stats: ReadStats,
    pub(crate) issues: Vec<LineIssue>,
    pub(crate) warnings: Vec<String>,
    /// Inputs whose gzip stream ended before its end marker (k6 killed while writing, a copy
    /// cut short): what was there was read, but the input is incomplete.
    pub(crate) cut_streams: Vec<String>,
    pub(crate) sources: Vec<String>,
    pub(crate) first_ns: i64,
    pub(crate) last_ns: i64,
    pub(crate) requests: f64,
    pub(crate) status_fast: Box<[u64; 600]>,
    pub(crate) status_other: BTreeMap<u16, u64>,
    pub(crate) failed_points: u64,
    pub(crate) failed_sum: f64,
    pub(crate) duration: Trend<u64>,
    pub(crate) names: NameTable<NameStats>,
    pub(crate) checks_points: u64,
    pub(crate) checks_sum: f64,
    pub(crate) check_names: NameTable<(u64, u64)>,
    pub(crate) iterations: f64,
    /// Unix second → vus (max within the second for one runner, summed across runners).
    pub(crate) vus: BTreeMap<i64, u32>,
    pub(crate) buckets: TimeBuckets,
    pub(crate) metrics: BTreeMap<String, MetricInfo>,
}

impl Aggregate {
    pub(crate) fn new(max_request_names: usize) -> Self {
        Aggregate {
            stats: ReadStats::default(),
            issues: Vec::new(),
            warnings: Vec::new(),
            cut_streams: Vec::new(),
            sources: Vec::new(),
            first_ns: i64::MAX,
            last_ns: i64::MIN,
            requests: 0.0,
            status_fast: Box::new([0; 600]),
            status_other: BTreeMap::new(),
            failed_points: 0,
            failed_sum: 0.0,
            duration: Trend::precise(),
            names: NameTable::new(max_request_names),
            checks_points: 0,
            checks_sum: 0.0,
            check_names: NameTable::new(MAX_CHECK_NAMES),
            iterations: 0.0,
            vus: BTreeMap::new(),
            buckets: TimeBuckets::new(),
            metrics: BTreeMap::new(),
        }
    }

    /// What the reader saw (lines, skipped and truncated lines, …).
    pub fn stats(&self) -> &ReadStats {
        &self.stats
    }

    /// Number of `http_reqs` points (their values summed, as k6 counts them).
    pub fn requests(&self) -> u64 {
        self.requests.round() as u64
    }

    /// Metric definitions seen in Metric lines, by metric name.
    pub fn metrics(&self) -> &BTreeMap<String, MetricInfo> {
        &self.metrics
    }

    #[inline]
    pub(crate) fn apply_point(&mut self, p: &PointRef<'_>) {
        self.first_ns = self.first_ns.min(p.time_ns);
        self.last_ns = self.last_ns.max(p.time_ns);
        let name = p.name.as_deref().unwrap_or(b"");
        match p.kind {
            Kind::HttpReqs => {
                self.requests += p.value;
                let n = p.value.round().max(0.0) as u64;
                match p.status {
                    Some(s) if (s as usize) < 600 => {
                        let c = &mut self.status_fast[s as usize];
                        *c = c.saturating_add(n);
                    }
                    Some(s) => {
                        let c = self.status_other.entry(s).or_default();
                        *c = c.saturating_add(n);
                    }
                    None => {}
                }
                self.names.get_mut(name, NameStats::new).requests += p.value;
                self.buckets.at(p.time_ns).requests += p.value;
            }
            Kind::HttpReqDuration => {
                self.duration.record(p.value);
                self.names
                    .get_mut(name, NameStats::new)
                    .duration
                    .record(p.value);
                self.buckets.at(p.time_ns).duration.record(p.value);
            }
            Kind::HttpReqFailed => {
                let failed = if p.value != 0.0 { 1.0 } else { 0.0 };
                self.failed_points += 1;
                self.failed_sum += failed;
                self.names.get_mut(name, NameStats::new).failures += failed;
                self.buckets.at(p.time_ns).failures += failed;
            }
            Kind::Checks => {
                let pass = p.value != 0.0;
                self.checks_points += 1;
                self.checks_sum += if pass { 1.0 } else { 0.0 };
                let c = self.check_names.get_mut(name, || (0, 0));
                if pass {
                    c.0 += 1;
                } else {
                    c.1 += 1;
                }
            }
            Kind::Iterations => self.iterations += p.value,
            Kind::Vus => {
                let v = p.value.round().clamp(0.0, u32::MAX as f64) as u32;
                let e = self
                    .vus
                    .entry(p.time_ns.div_euclid(1_000_000_000))
                    .or_default();
                *e = (*e).max(v);
            }
            Kind::Skip | Kind::Other => {}
        }
    }

    pub(crate) fn apply_metric(&mut self, name: &str, metric_type: &str, thresholds: Vec<String>) {
        if !self.metrics.contains_key(name) && self.metrics.len() >= MAX_METRICS {
            return;
        }
        let e = self.metrics.entry(name.to_string()).or_default();
        if e.metric_type.is_empty() {
            e.metric_type = metric_type.to_string();
        }
        for t in thresholds {
            if !e.thresholds.contains(&t) {
                e.thresholds.push(t);
            }
        }
    }

    /// Adds the aggregate of another k6 runner that ran at the same time (k6-operator's
    /// parallel runners, each with its own file): counts add up, the window covers both, and the
    /// `vus` of the same second are summed.
    pub fn merge_runner(&mut self, other: Aggregate) {
        self.merge(other, |a, b| a.saturating_add(b));
    }

    /// Adds another part of the same runner's output (a chunk of the same file): the `vus` of
    /// the same second take the larger value.
    pub(crate) fn merge_chunk(&mut self, other: Aggregate) {
        self.merge(other, u32::max);
    }

    fn merge(&mut self, o: Aggregate, vus: impl Fn(u32, u32) -> u32) {
        self.stats.add(&o.stats);
        for issue in o.issues {
            if self.issues.len() < MAX_ISSUES {
                self.issues.push(issue);
            }
        }
        for w in o.warnings {
            if !self.warnings.contains(&w) {
                self.warnings.push(w);
            }
        }
        for c in o.cut_streams {
            if !self.cut_streams.contains(&c) {
                self.cut_streams.push(c);
            }
        }
        for s in o.sources {
            if !self.sources.contains(&s) {
                self.sources.push(s);
            }
        }
        self.first_ns = self.first_ns.min(o.first_ns);
        self.last_ns = self.last_ns.max(o.last_ns);
        self.requests += o.requests;
        for (a, b) in self.status_fast.iter_mut().zip(o.status_fast.iter()) {
            *a = a.saturating_add(*b);
        }
        for (s, n) in o.status_other {
            let c = self.status_other.entry(s).or_default();
            *c = c.saturating_add(n);
        }
        self.failed_points += o.failed_points;
        self.failed_sum += o.failed_sum;
        self.duration.merge(&o.duration);
        self.names
            .merge_with(&o.names, NameStats::new, NameStats::merge);
        self.checks_points += o.checks_points;
        self.checks_sum += o.checks_sum;
        self.check_names.merge_with(
            &o.check_names,
            || (0, 0),
            |a, b| {
                a.0 += b.0;
                a.1 += b.1;
            },
        );
        self.iterations += o.iterations;
        for (sec, v) in o.vus {
            let e = self.vus.entry(sec).or_default();
            *e = vus(*e, v);
        }
        self.buckets.merge(o.buckets);
        for (name, info) in o.metrics {
            self.apply_metric(&name, &info.metric_type, info.thresholds);
        }
    }

    /// Status code → count, from the `status` tag of `http_reqs`.
    pub(crate) fn status_codes(&self) -> BTreeMap<u16, u64> {
        let mut out = self.status_other.clone();
        for (code, &n) in self.status_fast.iter().enumerate() {
            if n > 0 {
                out.insert(code as u16, n);
            }
        }
        out
    }
}
