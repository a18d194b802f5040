//! `${VAR}` and `${VAR:-default}` expansion of scenario text before it is parsed. Expansion keeps
//! every line where it was (a value with a newline is refused) and remembers, per line, where
//! each replacement sits, so a parse error's column can be mapped back to the file the user
//! wrote. `$${VAR}` is a literal `${VAR}`. Comments are left alone, so a commented-out variable
//! need not be set.

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
/// replaced it (the YAML parser's columns count characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Replacement {
    orig_start: usize,
    orig_len: usize,
    new_len: usize,
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
    for (line_idx, line) in super::locate::yaml_lines_inclusive(text)
        .into_iter()
        .enumerate()
    {
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
                if value.contains(super::locate::is_yaml_break) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "URL" => Some("http://127.0.0.1:8080".into()),
            "EMPTY" => Some(String::new()),
            "NL" => Some("a\nb".into()),
            "LS" => Some("a\u{2028}b".into()),
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
        for br in ["NL", "LS"] {
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
        let e = expand("a: 1\rä: ${WIDE} x\u{2028}b: ${NOPE:-ü}\n", env).unwrap();
        assert_eq!(e.original_position(2, 8), (2, 12));
        assert_eq!(e.original_position(2, 5), (2, 4));
        assert_eq!(e.original_position(3, 5), (3, 14));
        let err = expand("a: 1\r\nü: ${NOPE}\n", env).unwrap_err();
        assert_eq!((err.line, err.column), (2, 4));
    }
}
