//! One line of k6's `--out json` output → one update of an `Aggregate`. The fast path walks the
//! line's bytes once with `scan::Cursor`, in whatever key order the line uses, reads only what
//! the aggregates need (metric name, type, time, value, and the `name`/`status`/`check` tags of
//! the metrics that use them) and gives up on anything unusual. Whatever it gives up on goes to
//! `slow_line`, which parses the line with serde_json and decides authoritatively, so results
//! never depend on the fast path being complete.

use std::borrow::Cow;

use serde_json::Value;

use super::aggregate::Aggregate;
use super::scan::{parse_rfc3339, parse_status, Cursor, RawStr};

/// Why a `data.time` could not be placed on the run's timeline: not RFC 3339 at all, or a valid
/// RFC 3339 time (`9999-12-31T23:59:59Z`) outside the nanosecond range the timeline holds.
fn time_error(time: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(time) {
        Ok(_) => format!(
            "\"data.time\" {time:?} is a valid RFC 3339 time, but outside the years 1678–2261 \
             that a k6 timeline (nanoseconds since 1970) can hold: a corrupted clock or an edited \
             file?"
        ),
        Err(e) => format!("\"data.time\" is not an RFC 3339 time: {time:?} ({e})"),
    }
}

/// What a metric's points contribute to the aggregates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    HttpReqs,
    HttpReqDuration,
    HttpReqFailed,
    Checks,
    Iterations,
    Vus,
    /// Built-in metrics whose points carry the same timestamp as one of the above (the request
    /// timings, data counters, iteration_duration, vus_max): only the metric name is read.
    Skip,
    /// Anything else (custom metrics, …): only the time (for the run window) and the value.
    Other,
}

impl Kind {
    #[inline]
    pub fn of(metric: &[u8]) -> Kind {
        match metric {
            b"http_reqs" => Kind::HttpReqs,
            b"http_req_duration" => Kind::HttpReqDuration,
            b"http_req_failed" => Kind::HttpReqFailed,
            b"checks" => Kind::Checks,
            b"iterations" => Kind::Iterations,
            b"vus" => Kind::Vus,
            b"http_req_blocked"
            | b"http_req_connecting"
            | b"http_req_tls_handshaking"
            | b"http_req_sending"
            | b"http_req_waiting"
            | b"http_req_receiving"
            | b"data_sent"
            | b"data_received"
            | b"iteration_duration"
            | b"vus_max" => Kind::Skip,
            _ => Kind::Other,
        }
    }

    /// The tag whose value the aggregates want: request name or check name.
    fn wants_name(self) -> Option<&'static [u8]> {
        match self {
            Kind::HttpReqs | Kind::HttpReqDuration | Kind::HttpReqFailed => Some(b"name"),
            Kind::Checks => Some(b"check"),
            _ => None,
        }
    }
}

/// One point, as the aggregates see it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PointRef<'a> {
    pub kind: Kind,
    pub time_ns: i64,
    pub value: f64,
    /// The `name` tag (http metrics) or `check` tag (checks), unescaped.
    pub name: Option<Cow<'a, [u8]>>,
    /// The `status` tag of `http_reqs`.
    pub status: Option<u16>,
}

/// How a line was understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handled {
    Point,
    Skipped,
    Metric,
    Blank,
    /// Valid JSON of a type this reader does not know; ignored.
    Unknown,
}

/// Applies one line to `agg`. `Err` carries why the line is not a k6 JSON line.
pub(crate) fn process_line(
    line: &[u8],
    agg: &mut Aggregate,
    force_slow: bool,
) -> Result<Handled, String> {
    if !force_slow {
        if let Some(done) = fast_line(line, agg) {
            return Ok(done);
        }
    }
    agg.stats.fallback_lines += 1;
    slow_line(line, agg)
}

fn unescape(raw: RawStr<'_>) -> Option<Cow<'_, [u8]>> {
    if !raw.escaped {
        return Some(Cow::Borrowed(raw.bytes));
    }
    // Only the rare escaped tag value lands here; serde_json decodes it exactly.
    let mut quoted = Vec::with_capacity(raw.bytes.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(raw.bytes);
    quoted.push(b'"');
    let s: String = serde_json::from_slice(&quoted).ok()?;
    Some(Cow::Owned(s.into_bytes()))
}

/// The fast path: `None` means "not sure, ask serde_json".
#[inline]
fn fast_line(line: &[u8], agg: &mut Aggregate) -> Option<Handled> {
    // serde_json rejects invalid UTF-8 anywhere in a string; the scanner does not decode, so
    // such a line goes to serde_json (is_ascii runs at memory speed; real k6 lines are ASCII).
    if !line.is_ascii() && std::str::from_utf8(line).is_err() {
        return None;
    }
    let mut c = Cursor::new(line);
    c.ws();
    if !c.eat(b'{') {
        return if c.at_end() {
            Some(Handled::Blank)
        } else {
            None
        };
    }
    let mut metric: Option<&[u8]> = None;
    let mut is_point = false;
    let mut deferred_data: Option<usize> = None;
    let mut point: Option<PointRef<'_>> = None;
    let mut skipped = false;
    let mut seen = [false; 3]; // metric, type, data
    loop {
        let key = c.key()?;
        // A repeated member: serde_json keeps the last one, this scanner may already have used
        // the first. Rare enough to hand to serde_json.
        let slot = match key {
            b"metric" => Some(0),
            b"type" => Some(1),
            b"data" => Some(2),
            _ => None,
        };
        if let Some(i) = slot {
            if std::mem::replace(&mut seen[i], true) {
                return None;
            }
        }
        match key {
            b"metric" => {
                let m = c.string()?;
                if m.escaped {
                    return None;
                }
                metric = Some(m.bytes);
            }
            b"type" => {
                let t = c.string()?;
                if t.escaped || t.bytes != b"Point" {
                    return None; // Metric lines (rare) and anything else: serde_json
                }
                is_point = true;
            }
            b"data" => match metric {
                Some(m) if is_point => {
                    let kind = Kind::of(m);
                    // A metric the aggregates do not use is still checked as serde_json's path
                    // checks it (valid JSON, a time, a value): a corrupted line is never
                    // counted as a point.
                    let p = data(&mut c, kind)?;
                    if kind == Kind::Skip {
                        skipped = true;
                    } else {
                        point = Some(p);
                    }
                }
                _ => {
                    deferred_data = Some(c.pos);
                    c.skip_value()?;
                }
            },
            _ => c.skip_value()?,
        }
        if !c.next_member()? {
            break;
        }
    }
    if !c.at_end() || !is_point {
        return None;
    }
    if skipped {
        return Some(Handled::Skipped);
    }
    let metric = metric?;
    let point = match (point, deferred_data) {
        (Some(p), _) => p,
        (None, Some(pos)) => {
            let kind = Kind::of(metric);
            let mut d = Cursor { buf: line, pos };
            let p = data(&mut d, kind)?;
            if kind == Kind::Skip {
                return Some(Handled::Skipped);
            }
            p
        }
        (None, None) => return None,
    };
    agg.apply_point(&point);
    Some(Handled::Point)
}

/// Reads a Point's `data` object.
#[inline]
fn data<'a>(c: &mut Cursor<'a>, kind: Kind) -> Option<PointRef<'a>> {
    if !c.eat(b'{') {
        return None;
    }
    let mut time_ns = None;
    let mut value = None;
    let mut name = None;
    let mut status = None;
    c.ws();
    if !c.eat(b'}') {
        loop {
            let key = c.key()?;
            match key {
                b"time" => {
                    let t = c.string()?;
                    if t.escaped {
                        return None;
                    }
                    time_ns = Some(parse_rfc3339(t.bytes)?);
                }
                b"value" => value = Some(c.number()?),
                b"tags" => match kind.wants_name() {
                    // A repeated `tags`: serde_json keeps the last one, whatever it holds.
                    _ if name.is_some() || status.is_some() => return None,
                    Some(name_key) if c.peek() == Some(b'{') => {
                        let (n, s) = tags(c, name_key, kind == Kind::HttpReqs)?;
                        name = n;
                        status = s;
                    }
                    _ => c.skip_value()?,
                },
                _ => c.skip_value()?,
            }
            if !c.next_member()? {
                break;
            }
        }
    }
    Some(PointRef {
        kind,
        time_ns: time_ns?,
        value: value?,
        name: match name {
            Some(raw) => Some(unescape(raw)?),
            None => None,
        },
        status,
    })
}

/// Reads a tags object of string values, keeping the `name_key` tag and (optionally) `status`.
#[inline]
#[allow(clippy::type_complexity)]
fn tags<'a>(
    c: &mut Cursor<'a>,
    name_key: &[u8],
    want_status: bool,
) -> Option<(Option<RawStr<'a>>, Option<u16>)> {
    c.pos += 1; // '{'
    let mut name = None;
    let mut status = None;
    c.ws();
    if c.eat(b'}') {
        return Some((None, None));
    }
    loop {
        let key = c.key()?;
        if c.peek() != Some(b'"') {
            // A non-string tag value: not ours to judge, unless it repeats (and so replaces, as
            // serde_json reads it) the tag we keep.
            if key == name_key || (want_status && key == b"status") {
                return None;
            }
            c.skip_value()?;
        } else {
            let v = c.string()?;
            if key == name_key {
                name = Some(v);
            } else if want_status && key == b"status" {
                if v.escaped {
                    return None;
                }
                status = parse_status(v.bytes);
            }
        }
        if !c.next_member()? {
            return Some((name, status));
        }
    }
}

/// The authoritative path: serde_json decides what the line is.
pub(crate) fn slow_line(line: &[u8], agg: &mut Aggregate) -> Result<Handled, String> {
    if line
        .iter()
        .all(|c| matches!(c, b' ' | b'\t' | b'\r' | b'\n'))
    {
        return Ok(Handled::Blank);
    }
    let v: Value = serde_json::from_slice(line).map_err(|e| format!("invalid JSON ({e})"))?;
    let obj = v.as_object().ok_or("not a JSON object")?;
    let data = obj.get("data");
    match obj.get("type").and_then(Value::as_str) {
        Some("Point") => {
            let metric = obj
                .get("metric")
                .and_then(Value::as_str)
                .ok_or("Point line without a \"metric\" string")?;
            let kind = Kind::of(metric.as_bytes());
            let data = data
                .and_then(Value::as_object)
                .ok_or("Point line without a \"data\" object")?;
            let time = data
                .get("time")
                .and_then(Value::as_str)
                .ok_or("Point line without a \"data.time\" string")?;
            let time_ns = parse_rfc3339(time.as_bytes()).ok_or_else(|| time_error(time))?;
            let value = data
                .get("value")
                .and_then(Value::as_f64)
                .ok_or("Point line without a numeric \"data.value\"")?;
            if kind == Kind::Skip {
                return Ok(Handled::Skipped);
            }
            let tags = data.get("tags").and_then(Value::as_object);
            let tag = |k: &str| tags.and_then(|t| t.get(k)).and_then(Value::as_str);
            let name = kind
                .wants_name()
                .and_then(|k| tag(std::str::from_utf8(k).unwrap_or_default()))
                .map(|s| Cow::Owned(s.as_bytes().to_vec()));
            let status = match kind {
                Kind::HttpReqs => tag("status").and_then(|s| parse_status(s.as_bytes())),
                _ => None,
            };
            agg.apply_point(&PointRef {
                kind,
                time_ns,
                value,
                name,
                status,
            });
            Ok(Handled::Point)
        }
        Some("Metric") => {
            let data = data
                .and_then(Value::as_object)
                .ok_or("Metric line without a \"data\" object")?;
            let name = data
                .get("name")
                .and_then(Value::as_str)
                .or_else(|| obj.get("metric").and_then(Value::as_str))
                .ok_or("Metric line without a name")?;
            let metric_type = data.get("type").and_then(Value::as_str).unwrap_or("");
            let thresholds: Vec<String> = match data.get("thresholds") {
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|t| match t {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect(),
                _ => Vec::new(),
            };
            agg.apply_metric(name, metric_type, thresholds);
            Ok(Handled::Metric)
        }
        _ => Ok(Handled::Unknown),
    }
}
