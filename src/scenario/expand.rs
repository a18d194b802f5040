//! `${VAR}` and `${VAR:-default}` expansion of scenario text before it is parsed. Expansion keeps
//! every line where it was (a value with a line break is refused) and remembers, per line, where
//! each replacement sits, so a parse error's column can be mapped back to the file the user
//! wrote. `$${VAR}` is a literal `${VAR}`. Comments are left alone, so a commented-out variable
//! need not be set. Lines end where YAML 1.2 (and so serde-saphyr) ends them: `\n`, `\r\n`, `\r`.
//!
//! Why not serde-saphyr's `properties`: its `${NAME}` mode leaves quoted scalars literal
//! (`Authorization: "Bearer ${TOKEN}"` must expand), and its Compose mode also expands a bare
//! `$name` (Prometheus queries use `$namespace` and `$pods`) and turns an unset variable into an
//! empty string instead of an error that names it.

use std::collections::BTreeSet;

/// Why expansion failed; `line`/`column` are 1-based positions in the original text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct ExpandError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// One replacement on a line: original character range and the length in characters of what
/// replaced it (the YAML parser's columns count characters); the variable, unless it is a `$$`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Replacement {
    orig_start: usize,
    orig_len: usize,
    new_len: usize,
    var: Option<String>,
}

/// Where a variable's value landed in the expanded text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub name: String,
    /// 1-based position of the `${` in the original text.
    pub line: usize,
    pub column: usize,
    /// Character offset and length of the value in the expanded text.
    pub offset: usize,
    pub len: usize,
}

/// Expanded text plus what is needed to map positions back to the original.
#[derive(Debug, Clone, Default)]
pub struct Expanded {
    pub text: String,
    /// Per line (0-based), the replacements in order.
    replacements: Vec<Vec<Replacement>>,
    /// Variable names that were read from the environment (for diagnostics).
    pub used: BTreeSet<String>,
}

impl Expanded {
    /// Every non-empty variable value, where it sits in the expanded text.
    pub fn placed(&self) -> Vec<Placed> {
        let mut out = Vec::new();
        let mut line_start = 0; // characters before this line in the expanded text
        for (idx, line) in yaml_lines_inclusive(&self.text).into_iter().enumerate() {
            let mut shift: isize = 0;
            for r in self.replacements.get(idx).into_iter().flatten() {
                let new_start = (r.orig_start as isize + shift) as usize;
                shift += r.new_len as isize - r.orig_len as isize;
                if let (Some(name), true) = (&r.var, r.new_len > 0) {
                    out.push(Placed {
                        name: name.clone(),
                        line: idx + 1,
                        column: r.orig_start + 1,
                        offset: line_start + new_start,
                        len: r.new_len,
                    });
                }
            }
            line_start += line.chars().count();
        }
        out
    }

    /// Map a 1-based (line, column) in the expanded text to the original text. Lines end at
    /// every YAML line break and columns count characters, as the YAML parser's do.
    pub fn original_position(&self, line: usize, column: usize) -> (usize, usize) {
        let Some(reps) = line.checked_sub(1).and_then(|l| self.replacements.get(l)) else {
            return (line, column);
        };
        let col0 = column.saturating_sub(1);
        let mut shift: isize = 0; // expanded − original, accumulated before the column
        for r in reps {
            let new_start = (r.orig_start as isize + shift) as usize;
            if col0 < new_start {
                break;
            }
            if col0 < new_start + r.new_len {
                // Inside a replacement: point at the `${`.
                return (line, r.orig_start + 1);
            }
            shift += r.new_len as isize - r.orig_len as isize;
        }
        (line, ((col0 as isize - shift).max(0) as usize) + 1)
    }
}

/// Expand `text` with variables looked up through `lookup` (normally `std::env::var`).
pub fn expand(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Expanded, ExpandError> {
    let mut out = Expanded {
        text: String::with_capacity(text.len()),
        ..Default::default()
    };
    for (line_idx, line) in yaml_lines_inclusive(text).into_iter().enumerate() {
        let mut reps = Vec::new();
        let bytes = line.as_bytes();
        let mut i = 0;
        let mut quote: Option<u8> = None;
        let mut copied_to = 0;
        // Columns count characters (the bytes looked at here are all ASCII), counted on from
        // the last position asked for, so a long line stays linear.
        let mut counted = (0usize, 0usize);
        let mut col = |i: usize| {
            counted.1 += line[counted.0..i].chars().count();
            counted.0 = i;
            counted.1
        };
        while i < bytes.len() {
            let b = bytes[i];
            match quote {
                Some(q) if b == q => quote = None,
                Some(_) => {}
                None if b == b'\'' || b == b'"' => quote = Some(b),
                None if b == b'#' && (i == 0 || bytes[i - 1].is_ascii_whitespace()) => break,
                None => {}
            }
            if b == b'$' && bytes.get(i + 1) == Some(&b'$') && bytes.get(i + 2) == Some(&b'{') {
                out.text.push_str(&line[copied_to..i]);
                out.text.push('$');
                reps.push(Replacement {
                    orig_start: col(i),
                    orig_len: 2,
                    new_len: 1,
                    var: None,
                });
                i += 2;
                copied_to = i;
                continue;
            }
            if b == b'$' && bytes.get(i + 1) == Some(&b'{') {
                let here = col(i);
                let err = |message: String| ExpandError {
                    line: line_idx + 1,
                    column: here + 1,
                    message,
                };
                let Some(close) = line[i + 2..].find('}') else {
                    return Err(err("unclosed ${ (write ${NAME} or ${NAME:-default})".into()));
                };
                let inner = &line[i + 2..i + 2 + close];
                let (name, default) = match inner.split_once(":-") {
                    Some((n, d)) => (n, Some(d)),
                    None => (inner, None),
                };
                if name.is_empty()
                    || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    || name.starts_with(|c: char| c.is_ascii_digit())
                {
                    return Err(err(format!(
                        "\"${{{inner}}}\" is not a variable reference (write ${{NAME}} or ${{NAME:-default}})"
                    )));
                }
                let value = match lookup(name).filter(|v| !(v.is_empty() && default.is_some())) {
                    Some(v) => {
                        out.used.insert(name.to_string());
                        v
                    }
                    None => match default {
                        Some(d) => d.to_string(),
                        None => {
                            return Err(err(format!(
                                "environment variable {name} is not set (export it, or write ${{{name}:-default}})"
                            )))
                        }
                    },
                };
                if value.contains(is_yaml_break) {
                    return Err(err(format!(
                        "environment variable {name} holds a line break, which a scenario value cannot take"
                    )));
                }
                let orig_len = close + 3;
                out.text.push_str(&line[copied_to..i]);
                out.text.push_str(&value);
                reps.push(Replacement {
                    orig_start: here,
                    orig_len: inner.chars().count() + 3,
                    new_len: value.chars().count(),
                    var: Some(name.to_string()),
                });
                i += orig_len;
                copied_to = i;
                continue;
            }
            i += 1;
        }
        out.text.push_str(&line[copied_to..]);
        out.replacements.push(reps);
    }
    Ok(out)
}

/// Whether `c` ends a line in YAML 1.2 (`\r\n` is one break).
pub fn is_yaml_break(c: char) -> bool {
    matches!(c, '\r' | '\n')
}

/// The text split at YAML line breaks, breaks removed (a text always has at least one,
/// possibly empty, line). Line numbers here are the YAML parser's.
pub fn yaml_lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = yaml_lines_inclusive(text)
        .into_iter()
        .map(|l| {
            l.strip_suffix("\r\n")
                .unwrap_or_else(|| l.strip_suffix(is_yaml_break).unwrap_or(l))
        })
        .collect();
    // After a final break (or in an empty text) comes one more, empty line.
    if text.is_empty() || text.ends_with(is_yaml_break) {
        lines.push("");
    }
    lines
}

/// The text split after each YAML line break, breaks kept (`"a\r\nb"` → `"a\r\n"`, `"b"`); no
/// empty last piece.
fn yaml_lines_inclusive(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c == '\r' && matches!(chars.peek(), Some((_, '\n'))) {
            chars.next();
        }
        if is_yaml_break(c) {
            let end = chars.peek().map_or(text.len(), |&(j, _)| j);
            lines.push(&text[start..end]);
            start = end;
        }
    }
    if start < text.len() {
        lines.push(&text[start..]);
    }
    lines
}

/// Keeps a 1-based position inside `text`, lines as YAML counts them and columns in
/// characters: an error "at the end of the input" points just past the last character, never
/// at a line that does not exist.
pub fn clamp(text: &str, line: usize, column: Option<usize>) -> (usize, Option<usize>) {
    let lines = yaml_lines(text);
    let last = lines.len();
    if line > last {
        let width = lines[last - 1].chars().count();
        return (last, column.map(|_| width + 1));
    }
    let line = line.max(1);
    let width = lines[line - 1].chars().count();
    (line, column.map(|c| c.clamp(1, width + 1)))
}

/// A best-effort dotted path for the key on 1-based `line`, for an expansion error (found
/// before the text can be parsed): the line's key and the keys it is indented under.
pub fn field_at_line(text: &str, line: usize) -> String {
    let lines = yaml_lines(text);
    let Some(idx) = line.checked_sub(1).filter(|&i| i < lines.len()) else {
        return String::new();
    };
    let key_of = |l: &str| -> Option<(usize, String)> {
        let t = l.trim_start_matches([' ', '\t', '-']);
        let indent = l.len() - t.len();
        let (k, _) = t.split_once(':')?;
        let k = k.trim();
        (!k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .then(|| (indent, k.to_string()))
    };
    let mut keys = Vec::new();
    let mut limit = usize::MAX;
    for l in lines[..=idx].iter().rev() {
        let t = l.trim();
        if t.is_empty() || t.starts_with('#') || t == "---" {
            continue;
        }
        if let Some((indent, k)) = key_of(l) {
            if indent < limit {
                keys.push(k);
                limit = indent;
                if indent == 0 {
                    break;
                }
            }
        }
    }
    keys.reverse();
    keys.join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "URL" => Some("http://127.0.0.1:8080".into()),
            "EMPTY" => Some(String::new()),
            "NL" => Some("a\nb".into()),
            "CR" => Some("a\rb".into()),
            "WIDE" => Some("ü€𝄞".into()),
            _ => None,
        }
    }

    #[test]
    fn expands_set_and_default() {
        let e = expand("url: ${URL}/x\nn: ${MISSING:-5}\nm: ${EMPTY:-d}\n", env).unwrap();
        assert_eq!(e.text, "url: http://127.0.0.1:8080/x\nn: 5\nm: d\n");
        assert!(e.used.contains("URL"));
    }

    #[test]
    fn unset_without_default_names_the_variable() {
        let err = expand("a: 1\nurl: ${NOPE}\n", env).unwrap_err();
        assert_eq!((err.line, err.column), (2, 6));
        assert!(err.message.contains("NOPE is not set"), "{}", err.message);
    }

    #[test]
    fn escaped_and_commented_are_left() {
        let e = expand("a: $${URL} # ${NOPE}\n# ${ALSO_NOPE}\n", env).unwrap();
        assert_eq!(e.text, "a: ${URL} # ${NOPE}\n# ${ALSO_NOPE}\n");
    }

    #[test]
    fn hash_inside_quotes_is_not_a_comment() {
        let e = expand("a: \"x #${URL}\"\n", env).unwrap();
        assert_eq!(e.text, "a: \"x #http://127.0.0.1:8080\"\n");
    }

    #[test]
    fn rejects_bad_references() {
        assert!(expand("a: ${URL\n", env)
            .unwrap_err()
            .message
            .contains("unclosed"));
        assert!(expand("a: ${1X}\n", env)
            .unwrap_err()
            .message
            .contains("not a variable"));
        for br in ["NL", "CR"] {
            assert!(expand(&format!("a: ${{{br}}}\n"), env)
                .unwrap_err()
                .message
                .contains("line break"));
        }
    }

    #[test]
    fn maps_columns_back() {
        // "url: ${URL} x: 5m" → "url: http://127.0.0.1:8080 x: 5m"
        let e = expand("url: ${URL} x: 5m\n", env).unwrap();
        let exp_col = e.text.find("5m").unwrap() + 1;
        let orig_col = "url: ${URL} x: 5m".find("5m").unwrap() + 1;
        assert_eq!(e.original_position(1, exp_col), (1, orig_col));
        // Inside the replacement → the `${`.
        assert_eq!(e.original_position(1, 10), (1, 6));
        // Before it: unchanged; other lines unchanged.
        assert_eq!(e.original_position(1, 2), (1, 2));
        assert_eq!(e.original_position(2, 3), (2, 3));
    }

    #[test]
    fn positions_count_characters_and_yaml_line_breaks() {
        // "ä: ${WIDE} x" → "ä: ü€𝄞 x": the `x` is column 8 expanded, 12 in the file.
        let e = expand("a: 1\rä: ${WIDE} x\r\nb: ${NOPE:-ü}\n", env).unwrap();
        assert_eq!(e.original_position(2, 8), (2, 12));
        assert_eq!(e.original_position(2, 5), (2, 4));
        assert_eq!(e.original_position(3, 5), (3, 14));
        let err = expand("a: 1\r\nü: ${NOPE}\n", env).unwrap_err();
        assert_eq!((err.line, err.column), (2, 4));
        // U+2028 is no line break in YAML 1.2: one line.
        let err = expand("a: 1\u{2028}b: ${NOPE}\n", env).unwrap_err();
        assert_eq!((err.line, err.column), (1, 9));
    }

    #[test]
    fn lines_and_positions_stay_in_the_text() {
        assert_eq!(yaml_lines("a\rb\r\nc\n"), vec!["a", "b", "c", ""]);
        assert_eq!(clamp("name: tx\narge", 3, Some(1)), (2, Some(5)));
        assert_eq!(clamp("a\rbb\nccc", 3, Some(9)), (3, Some(4)));
        assert_eq!(clamp("", 0, None), (1, None));
    }

    #[test]
    fn names_the_field_on_a_line() {
        let doc = "name: x\nload:\n  stages: []\nworkload:\n  local:\n    command: [a]\n";
        assert_eq!(field_at_line(doc, 6), "workload.local.command");
        assert_eq!(field_at_line(doc, 3), "load.stages");
        assert_eq!(field_at_line(doc, 1), "name");
        assert_eq!(
            field_at_line("a: 1\rload:\r  stages: x\r", 3),
            "load.stages"
        );
    }
}
