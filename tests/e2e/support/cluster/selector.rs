//! Label and field selectors as the API server parses them from `labelSelector` and
//! `fieldSelector` query parameters: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k`,
//! `!k`, `k>N`, `k<N`, comma-separated and ANDed. Parse errors are messages for a 400
//! BadRequest Status, never panics. Field selectors support `=`, `==` and `!=` on the fields the
//! caller offers (e.g. `metadata.name`); an unknown field is an error like the real server's.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Eq(String),
    NotEq(String),
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    NotExists,
    Gt(i64),
    Lt(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: Op,
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct LabelSelector(Vec<Requirement>);

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/')
}

fn check_value(v: &str) -> Result<String, String> {
    if v.len() > 63 {
        return Err(format!(
            "invalid label value: {v:?}: must be no more than 63 characters"
        ));
    }
    if !v
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(format!(
            "invalid label value: {v:?}: a valid label must be an empty string or consist of \
             alphanumeric characters, '-', '_' or '.'"
        ));
    }
    Ok(v.to_string())
}

/// Split at commas that are not inside parentheses.
fn split_top(s: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err("unbalanced parentheses".to_string());
                }
            }
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("unbalanced parentheses".to_string());
    }
    parts.push(&s[start..]);
    Ok(parts)
}

fn parse_set(rest: &str) -> Result<Vec<String>, String> {
    let inner = rest
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| format!("found '{rest}', expected: '(' … ')'"))?;
    let values: Vec<String> = inner
        .split(',')
        .map(|v| check_value(v.trim()))
        .collect::<Result<_, _>>()?;
    Ok(values)
}

fn parse_requirement(part: &str) -> Result<Requirement, String> {
    let part = part.trim();
    if part.is_empty() {
        return Err("found '', expected: identifier".to_string());
    }
    if let Some(key) = part.strip_prefix('!') {
        let key = key.trim();
        if key.is_empty() || !key.chars().all(is_key_char) {
            return Err(format!("invalid label key {key:?}"));
        }
        return Ok(Requirement {
            key: key.to_string(),
            op: Op::NotExists,
        });
    }
    let key_end = part.find(|c: char| !is_key_char(c)).unwrap_or(part.len());
    let key = &part[..key_end];
    if key.is_empty() || key.len() > 316 {
        return Err(format!("invalid label key in {part:?}"));
    }
    let rest = part[key_end..].trim_start();
    let op = if rest.is_empty() {
        Op::Exists
    } else if let Some(v) = rest.strip_prefix("!=") {
        Op::NotEq(check_value(v.trim())?)
    } else if let Some(v) = rest.strip_prefix("==") {
        Op::Eq(check_value(v.trim())?)
    } else if let Some(v) = rest.strip_prefix('=') {
        Op::Eq(check_value(v.trim())?)
    } else if let Some(v) = rest.strip_prefix('>') {
        Op::Gt(
            v.trim()
                .parse()
                .map_err(|_| format!("{v:?} is not an integer"))?,
        )
    } else if let Some(v) = rest.strip_prefix('<') {
        Op::Lt(
            v.trim()
                .parse()
                .map_err(|_| format!("{v:?} is not an integer"))?,
        )
    } else if let Some(v) = rest.strip_prefix("notin") {
        Op::NotIn(parse_set(v)?)
    } else if let Some(v) = rest.strip_prefix("in") {
        Op::In(parse_set(v)?)
    } else {
        return Err(format!(
            "found '{rest}', expected: in, notin, =, ==, !=, gt, lt"
        ));
    };
    Ok(Requirement {
        key: key.to_string(),
        op,
    })
}

impl LabelSelector {
    /// Parse a `labelSelector` value; `Err` carries the message for a 400 Status.
    pub fn parse(s: &str) -> Result<LabelSelector, String> {
        if s.trim().is_empty() {
            return Ok(LabelSelector::default());
        }
        let reqs = split_top(s)?
            .into_iter()
            .map(parse_requirement)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("unable to parse requirement: {e}"))?;
        Ok(LabelSelector(reqs))
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| {
            let v = labels.get(&r.key);
            match &r.op {
                Op::Eq(x) => v == Some(x),
                Op::NotEq(x) => v != Some(x),
                Op::In(set) => v.is_some_and(|v| set.contains(v)),
                Op::NotIn(set) => v.is_none_or(|v| !set.contains(v)),
                Op::Exists => v.is_some(),
                Op::NotExists => v.is_none(),
                Op::Gt(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|v| v > *n),
                Op::Lt(n) => v
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_some_and(|v| v < *n),
            }
        })
    }
}

/// A parsed field selector: (field, wanted value, equal?) triples.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct FieldSelector(Vec<(String, String, bool)>);

impl FieldSelector {
    /// Parse a `fieldSelector` value, accepting only the fields in `supported`.
    pub fn parse(s: &str, supported: &[&str]) -> Result<FieldSelector, String> {
        let mut out = Vec::new();
        for part in s.split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (field, value, eq) = if let Some((f, v)) = part.split_once("!=") {
                (f, v, false)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, v, true)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, v, true)
            } else {
                return Err(format!(
                    "invalid selector: '{part}'; can't understand '{part}'"
                ));
            };
            let field = field.trim();
            if !supported.contains(&field) {
                return Err(format!("field label not supported: {field}"));
            }
            out.push((field.to_string(), value.trim().to_string(), eq));
        }
        Ok(FieldSelector(out))
    }

    /// Whether an object whose fields are looked up by `get` matches.
    pub fn matches(&self, get: impl Fn(&str) -> String) -> bool {
        self.0
            .iter()
            .all(|(field, value, eq)| (get(field) == *value) == *eq)
    }
}
