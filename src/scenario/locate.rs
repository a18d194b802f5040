//! Finds where a field path (`load.stages[1].duration`) sits in YAML text, for errors found after
//! parsing (cross-field checks) when the parser can no longer tell the position. It reads the
//! block structure by indentation and looks inside one-line flow collections
//! (`- { duration: 2m, users: 100 }`); for anything fancier it returns the deepest position it
//! could find, which is still the right neighbourhood.

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// Parse `a.b[2].c` into segments.
pub fn parse_path(path: &str) -> Vec<Seg> {
    let mut segs = Vec::new();
    for part in path.split('.') {
        let mut rest = part;
        if let Some(open) = rest.find('[') {
            if open > 0 {
                segs.push(Seg::Key(rest[..open].to_string()));
            }
            rest = &rest[open..];
            while let Some(stripped) = rest.strip_prefix('[') {
                let Some(close) = stripped.find(']') else {
                    break;
                };
                if let Ok(i) = stripped[..close].parse() {
                    segs.push(Seg::Index(i));
                }
                rest = &stripped[close + 1..];
            }
        } else if !rest.is_empty() {
            segs.push(Seg::Key(rest.to_string()));
        }
    }
    segs
}

pub fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_content(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty() && !t.starts_with('#') && t != "---"
}

/// The 1-based (line, column) of the node at `path`, or of its deepest ancestor found; the
/// column counts characters, as the YAML parser's do.
pub fn locate(text: &str, path: &str) -> Option<(usize, usize)> {
    let (line, byte_col) = locate_bytes(text, path)?;
    let l = yaml_lines(text).get(line - 1).copied().unwrap_or("");
    let byte = byte_col - 1;
    let chars = l.char_indices().take_while(|&(i, _)| i < byte).count();
    Some((line, chars + 1))
}

/// Keeps a 1-based position inside `text`, counting lines as YAML does (`\n`, `\r\n`, `\r`,
/// NEL, LS, PS) and columns in characters: a parser error "at the end of the input" points just
/// past the last character, never at a line that does not exist.
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

/// Whether `c` ends a line in YAML (`\r\n` is one break).
pub fn is_yaml_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
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
pub fn yaml_lines_inclusive(text: &str) -> Vec<&str> {
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

/// [`locate`] with the column as a byte offset + 1.
fn locate_bytes(text: &str, path: &str) -> Option<(usize, usize)> {
    let lines = yaml_lines(text);
    // Scope: lines [start, end), and the column where this node's content begins on `start`.
    let (mut start, mut end, mut col) = (0usize, lines.len(), 0usize);
    let mut found: Option<(usize, usize)> = None;
    let mut inline: Option<(usize, usize)> = None; // (line, col) of a one-line flow value
    for seg in parse_path(path) {
        if let Some((l, c)) = inline {
            // Inside a flow collection on one line: look for the key; indices stay at the value.
            if let Seg::Key(k) = &seg {
                let pat = format!("{k}:");
                if let Some(p) = find_key(lines[l], c, &pat) {
                    let vcol = p + pat.len();
                    let skip = lines[l][vcol..].len() - lines[l][vcol..].trim_start().len();
                    inline = Some((l, vcol + skip));
                    found = Some((l + 1, vcol + skip + 1));
                    continue;
                }
            }
            return found;
        }
        // The indentation of direct children: the first content line's content column.
        // `col` is a byte offset into line `start` only; the lines below start at their indent.
        let Some(first) = (start..end).find(|&i| {
            let from = if i == start { col } else { 0 };
            is_content(lines[i].get(from..).unwrap_or(""))
        }) else {
            return found;
        };
        let child_col = if first == start {
            col.max(indent_of(lines[first]))
        } else {
            indent_of(lines[first])
        };
        match seg {
            Seg::Key(k) => {
                let pat = format!("{k}:");
                let Some(hit) = (start..end).find(|&i| {
                    let l = lines[i];
                    let c = if i == start {
                        col.max(indent_of(l))
                    } else {
                        indent_of(l)
                    };
                    c == child_col && l.len() > c && l[c..].starts_with(&pat)
                }) else {
                    return found;
                };
                let kcol = if hit == start {
                    col.max(indent_of(lines[hit]))
                } else {
                    indent_of(lines[hit])
                };
                let after = kcol + pat.len();
                let rest = &lines[hit][after..];
                let vcol = after + (rest.len() - rest.trim_start().len());
                let value_inline = is_content(rest)
                    && !rest.trim_start().starts_with('|')
                    && !rest.trim_start().starts_with('>');
                found = Some((hit + 1, if value_inline { vcol + 1 } else { kcol + 1 }));
                if value_inline {
                    inline = Some((hit, vcol));
                    continue;
                }
                let next = (hit + 1..end)
                    .find(|&i| is_content(lines[i]) && indent_of(lines[i]) <= kcol)
                    .unwrap_or(end);
                start = hit + 1;
                end = next;
                col = 0;
            }
            Seg::Index(n) => {
                let items: Vec<usize> = (start..end)
                    .filter(|&i| {
                        let l = lines[i];
                        let c = if i == start {
                            col.max(indent_of(l))
                        } else {
                            indent_of(l)
                        };
                        c == child_col
                            && l.len() > c
                            && (l[c..].starts_with("- ") || &l[c..] == "-")
                    })
                    .collect();
                let Some(&hit) = items.get(n) else {
                    return found;
                };
                let next = items.get(n + 1).copied().unwrap_or_else(|| {
                    (hit + 1..end)
                        .find(|&i| is_content(lines[i]) && indent_of(lines[i]) < child_col)
                        .unwrap_or(end)
                });
                let rest = &lines[hit][child_col + 1..];
                let vcol = child_col + 1 + (rest.len() - rest.trim_start().len());
                found = Some((hit + 1, vcol + 1));
                if rest.trim_start().starts_with('{') || rest.trim_start().starts_with('[') {
                    inline = Some((hit, vcol));
                    continue;
                }
                start = hit;
                end = next;
                col = vcol;
            }
        }
    }
    found
}

/// The 1-based (line, column) of the second `key` of the mapping at `parent` (`""` for the
/// top level): where a duplicate key is, which the YAML parser only reports as the mapping's
/// start. Looks on the first key's line (a flow mapping) and then down the block mapping.
pub fn locate_repeat(text: &str, parent: &str, key: &str) -> Option<(usize, usize)> {
    let path = if parent.is_empty() || parent == "." {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    };
    let (first, _) = locate(text, &path)?;
    let lines = yaml_lines(text);
    let pat = format!("{key}:");
    let line = lines.get(first - 1)?;
    let kcol = find_key(line, 0, &pat)?;
    if let Some(byte) = find_key(line, kcol + pat.len(), &pat) {
        return Some((first, line[..byte].chars().count() + 1));
    }
    for (i, l) in lines.iter().enumerate().skip(first) {
        if !is_content(l) {
            continue;
        }
        let indent = indent_of(l);
        if indent < kcol {
            break;
        }
        if indent == kcol && l[indent..].starts_with(&pat) {
            return Some((i + 1, l[..indent].chars().count() + 1));
        }
    }
    None
}

/// The byte offset of the first `key:` (`pat`) at or after byte `from` of `line` that is a key:
/// at the line's start or after a space, tab, `{` or `,`, and outside quotes (`url: "a, url: b"`
/// holds one key).
fn find_key(line: &str, from: usize, pat: &str) -> Option<usize> {
    let bytes = line.as_bytes();
    let mut quote: Option<u8> = None;
    // The last byte outside quotes that is not blank: a quote opens a scalar only where a
    // value or key can start, not inside `it's`.
    let mut last = b':';
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            // `\"` inside double quotes, `''` inside single quotes.
            Some(b'"') if b == b'\\' => i += 1,
            Some(b'\'') if b == b'\'' && bytes.get(i + 1) == Some(&b'\'') => i += 1,
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if (b == b'"' || b == b'\'')
                && matches!(last, b':' | b'-' | b'[' | b'{' | b',') =>
            {
                quote = Some(b)
            }
            // A comment ends the line's keys.
            None if b == b'#' && (i == 0 || matches!(bytes[i - 1], b' ' | b'\t')) => {
                return None;
            }
            None if i >= from
                && (i == 0 || matches!(bytes[i - 1], b' ' | b'\t' | b'{' | b','))
                && line[i..].starts_with(pat) =>
            {
                return Some(i);
            }
            None => {}
        }
        if quote.is_none() && b != b' ' && b != b'\t' {
            last = b;
        }
        i += 1;
    }
    None
}

/// A best-effort dotted path for the key on 1-based `line` (for errors found before parsing).
pub fn field_at_line(text: &str, line: usize) -> String {
    let lines = yaml_lines(text);
    let Some(idx) = line.checked_sub(1).filter(|&i| i < lines.len()) else {
        return String::new();
    };
    let key_of = |l: &str| -> Option<(usize, String)> {
        let t = l.trim_start_matches([' ', '-']);
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
        if !is_content(l) {
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

    const DOC: &str = "name: x\nload:\n  stages:\n    - { duration: 2m, users: 100 }\n    - duration: 5m\n      users: 100\n  requests:\n    - path: /\nworkload:\n  local:\n    command: [a]\n";

    #[test]
    fn parses_paths() {
        assert_eq!(
            parse_path("load.stages[1].duration"),
            vec![
                Seg::Key("load".into()),
                Seg::Key("stages".into()),
                Seg::Index(1),
                Seg::Key("duration".into())
            ]
        );
    }

    #[test]
    fn finds_block_and_flow_nodes() {
        assert_eq!(locate(DOC, "name"), Some((1, 7)));
        assert_eq!(locate(DOC, "load.stages[0].users"), Some((4, 30)));
        assert_eq!(locate(DOC, "load.stages[1].duration"), Some((5, 17)));
        assert_eq!(locate(DOC, "load.stages[1].users"), Some((6, 14)));
        assert_eq!(locate(DOC, "load.requests[0].path"), Some((8, 13)));
        assert_eq!(locate(DOC, "workload.local.command"), Some((11, 14)));
        assert_eq!(locate(DOC, "workload"), Some((9, 1)));
    }

    #[test]
    fn finds_the_repeated_key() {
        let doc = "name: x\nload:\n  stages: []\n  think_time: 1s\n  stages: [a]\nname: y\n";
        assert_eq!(locate_repeat(doc, "", "name"), Some((6, 1)));
        assert_eq!(locate_repeat(doc, "load", "stages"), Some((5, 3)));
        let flow = "target: { url: a, url: b }\n";
        assert_eq!(locate_repeat(flow, ".", "url"), None);
        assert_eq!(locate_repeat(flow, "target", "url"), Some((1, 19)));
        // Only keys count: not a longer key's tail, not text inside a quoted value.
        let hidden = "target: { myurl: a, x: \"b, url: c\", url: d }\n";
        assert_eq!(locate_repeat(hidden, "target", "url"), None);
        let commented = "target:\n  url: a # url: b\n  url: c\n";
        assert_eq!(locate_repeat(commented, "target", "url"), Some((3, 3)));
        let hidden = "target: { url: 'a,url: b', url: c }\n";
        assert_eq!(locate_repeat(hidden, "target", "url"), Some((1, 28)));
        let hidden = "target: { url: 'it''s, url: b' }\n";
        assert_eq!(locate_repeat(hidden, "target", "url"), None);
    }

    #[test]
    fn columns_count_characters_and_positions_stay_in_the_text() {
        assert_eq!(locate("näme: x\nname: ü\n", "name"), Some((2, 7)));
        assert_eq!(locate("a:\n  b: [x]\n  üü: 1\n", "a.b"), Some((2, 6)));
        assert_eq!(clamp("name: tx\narge", 3, Some(1)), (2, Some(5)));
        assert_eq!(clamp("a\rbb\u{2028}ccc", 3, Some(9)), (3, Some(4)));
        assert_eq!(clamp("", 0, None), (1, None));
    }

    #[test]
    fn lines_end_at_every_yaml_line_break() {
        // A lone \r, NEL, LS and PS end lines for the YAML parser, so they do here too.
        for br in ["\r", "\u{85}", "\u{2028}", "\u{2029}", "\r\n"] {
            let doc = format!("name: x{br}load:{br}  stages: []{br}");
            assert_eq!(locate(&doc, "load.stages"), Some((3, 11)), "{br:?}");
            assert_eq!(field_at_line(&doc, 3), "load.stages", "{br:?}");
            let dup = format!("name: x{br}load: 1{br}name: y{br}");
            assert_eq!(locate_repeat(&dup, "", "name"), Some((3, 1)), "{br:?}");
        }
    }

    #[test]
    fn names_the_field_on_a_line() {
        assert_eq!(field_at_line(DOC, 11), "workload.local.command");
        assert_eq!(field_at_line(DOC, 1), "name");
    }

    #[test]
    fn missing_leaf_gives_the_parent() {
        assert_eq!(locate(DOC, "load.thresholds"), Some((2, 1)));
        assert_eq!(locate(DOC, "load.stages[7]"), Some((3, 3)));
    }
}
