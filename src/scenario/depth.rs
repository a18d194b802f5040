//! The guard against pathologically nested flow collections (`[[[[…`), run on the expanded text
//! before the YAML parser sees it: the parser's time grows with the square of the depth (100 000
//! levels took 38 s). It is a bracket counter that knows just enough YAML to not count text:
//! quoted scalars, comments and block scalars (`body: |`). Where it is unsure it counts, so
//! nothing deep gets past it.

use super::locate::{indent_of, is_yaml_break, yaml_lines};

/// How deep `[`/`{` may nest.
pub const MAX_FLOW_DEPTH: usize = 64;

/// The 1-based (line, column) of the first bracket nested deeper than [`MAX_FLOW_DEPTH`], if
/// any. Lines end at YAML line breaks and columns count characters, as the parser's do.
pub fn too_deep(text: &str) -> Option<(usize, usize)> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    // Inside a quote guessed in a flow collection: the balance of the brackets in it.
    let mut quoted = 0usize;
    // An open block scalar: the indentation its lines must exceed and, once its first line is
    // seen, the indentation of its content.
    let mut block: Option<(usize, Option<usize>)> = None;
    for (idx, line) in yaml_lines(text).into_iter().enumerate() {
        if let Some((parent, content)) = block {
            let indent = indent_of(line);
            // A line of spaces belongs to the scalar; tabs are not indentation.
            match content {
                _ if indent == line.len() => continue,
                None if indent > parent => {
                    block = Some((parent, Some(indent)));
                    continue;
                }
                Some(c) if indent >= c => continue,
                _ => block = None,
            }
        }
        let starts_in_quote = quote.is_some();
        let mut comment_at: Option<usize> = None;
        let mut prev = ' ';
        // The last non-blank character on this line outside quotes ('\n' at its start): in
        // block context a quote opens a scalar only where one can start (after `: `, `- `,
        // `? ` or at the start), not inside `it's`.
        let mut last_sig = '\n';
        let mut skip = false;
        for (col0, (byte, c)) in line.char_indices().enumerate() {
            debug_assert!(!is_yaml_break(c));
            if skip {
                // The second `'` of `''` inside single quotes.
                (skip, prev) = (false, c);
                continue;
            }
            let in_flow = depth > 0;
            let closes = match quote {
                // Double quotes escape with a backslash, single quotes with ''.
                Some('"') => c == '"' && prev != '\\',
                Some('\'') if c == '\'' => {
                    skip = line[byte + 1..].starts_with('\'');
                    !skip
                }
                _ => false,
            };
            if closes {
                quote = None;
                depth += std::mem::take(&mut quoted);
            } else if quote.is_none() && comment_at.is_none() {
                match c {
                    // Only a space or tab before `#` starts a comment (not U+3000, not `,#`).
                    '#' if matches!(prev, ' ' | '\t') => comment_at = Some(byte),
                    // In a flow collection every quote is taken as opening one: that can only
                    // hide closers, which over-counts.
                    '"' | '\''
                        if in_flow
                            || (matches!(prev, ' ' | '\t')
                                && matches!(last_sig, '\n' | ':' | '-' | '?')) =>
                    {
                        quote = Some(c)
                    }
                    _ => count(c, &mut depth),
                }
            } else if quote.is_some() && in_flow {
                // A quote guessed inside a flow collection may be plain text to the parser
                // (`[-", [[…`), so its brackets still count: their peak at once, and what is
                // left unclosed when the quote ends. A real quoted `'{"a":[1]}'` adds nothing.
                count(c, &mut quoted);
            }
            if depth + quoted > MAX_FLOW_DEPTH {
                return Some((idx + 1, col0 + 1));
            }
            if quote.is_none() && !c.is_whitespace() {
                last_sig = c;
            }
            prev = if prev == '\\' && c == '\\' { ' ' } else { c };
        }
        if !starts_in_quote && quote.is_none() && depth == 0 {
            let code = &line[..comment_at.unwrap_or(line.len())];
            block = block_scalar_parent(code).map(|parent| (parent, None));
        }
    }
    None
}

/// One more level for an opening bracket, one less for a closing one.
fn count(c: char, depth: &mut usize) {
    match c {
        '[' | '{' => *depth += 1,
        ']' | '}' => *depth = depth.saturating_sub(1),
        _ => {}
    }
}

/// If `code` (one line, without its comment) ends with a block scalar header (`key: |`,
/// `- >-`), the indentation the scalar's lines must exceed, as the YAML parser reckons it: the
/// column of the key's mapping or of the `-`'s sequence. Anything unusual (an explicit
/// indentation digit, a tag or anchor before the indicator, a document marker) gives `None`,
/// and the brackets below are counted.
fn block_scalar_parent(code: &str) -> Option<usize> {
    let t = code.trim_end_matches([' ', '\t']);
    let t = t
        .strip_suffix(['+', '-'])
        .filter(|s| s.ends_with(['|', '>']))
        .unwrap_or(t);
    let before = t.strip_suffix(['|', '>'])?;
    let head = before.trim_end_matches([' ', '\t']);
    if head.len() == before.len() {
        return None; // `a:|` is a plain scalar
    }
    // The leading indentation and `- ` entries, and the column where the rest starts.
    let mut col = indent_of(code);
    let mut last_dash = None;
    while code[col..].starts_with('-')
        && code[col + 1..].starts_with([' ', '\t'])
        && col < head.len()
    {
        last_dash = Some(col);
        col += 1;
        col += code[col..].len() - code[col..].trim_start_matches([' ', '\t']).len();
    }
    if code[col..].starts_with(['?', ':']) {
        // `? k: |`: the key's mapping starts past the `? `; not worth reckoning.
        return None;
    }
    if head.len() == col.min(head.len()) && head.ends_with('-') {
        // `- |`: the scalar is the entry of the sequence at the last dash.
        return last_dash;
    }
    // `key: |`: a key starting at `col` (not a dash, quote-free enough to end with `:`).
    (head.ends_with(':') && head.len() > col).then_some(col)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deep(n: usize) -> String {
        "[".repeat(n)
    }

    #[test]
    fn finds_the_bracket_that_goes_too_deep() {
        let text = format!("name: x\r\nload: {}\n", deep(70));
        assert_eq!(too_deep(&text), Some((2, 7 + MAX_FLOW_DEPTH)));
        let text = format!("a: 1\rb: ü{}\n", deep(70));
        assert_eq!(too_deep(&text), Some((2, 5 + MAX_FLOW_DEPTH)));
        assert_eq!(too_deep(&format!("a: {}", deep(MAX_FLOW_DEPTH))), None);
    }

    #[test]
    fn block_scalars_are_text() {
        for header in ["|", ">", "|-", ">+", "|  # a JSON body"] {
            let text = format!(
                "body: {header}\n  {}\n\n    {}\n  tail\nnext: 1\n",
                deep(100),
                "{".repeat(100)
            );
            assert_eq!(too_deep(&text), None, "{header}");
        }
        let in_list = format!(
            "requests:\n  - body: |\n      {}\n  - |\n   {}\n",
            deep(80),
            deep(80)
        );
        assert_eq!(too_deep(&in_list), None);
    }

    #[test]
    fn nothing_deep_hides_behind_a_block_scalar_header() {
        let d = deep(100);
        for text in [
            // The scalar ends at the first line indented no more than its key.
            format!("body: |\n  text\nload: {d}\n"),
            format!("body: |\nload: {d}\n"),
            // Less indented than the scalar's first line: the scalar has ended.
            format!("body: |\n    text\n  {d}\n"),
            // Under `- key: |` the scalar must be indented past the key, not the dash.
            format!("- body: |\n  {d}\n"),
            // Tabs are not indentation.
            format!("body: |\n\t{d}\n"),
            // Headers that are not (only) a block scalar indicator count what follows.
            format!("body: |2\n  {d}\n"),
            format!("body: &a |\n  {d}\n"),
            format!("body:|\n  {d}\n"),
            format!("--- |\n  {d}\n"),
            format!("body: \"x\n  \" |\n  {d}\n"),
            format!("body: [ |\n  {d}\n"),
            format!("body: x # |\n  {d}\n"),
            // A key after `? ` opens a mapping further right than the `?`.
            format!("? k: |\n  x: {d}\n"),
            format!("- ? k: |\n    x: {d}\n"),
        ] {
            assert!(too_deep(&text).is_some(), "{text:?}");
        }
    }

    #[test]
    fn quotes_and_comments_the_parser_reads_otherwise_hide_nothing() {
        let d = deep(100);
        let close = "]".repeat(100);
        for text in [
            // `-"` is a plain scalar to the parser, ended by the `,`.
            format!("a: [-\", {d}1{close}]\n"),
            format!("a: -\"\nb: {d}\n"),
            // Only a space or tab starts a comment.
            format!("a: [x\u{3000}#, {d}1{close}]\n"),
            format!("a: [x\u{a0}#, {d}1{close}]\n"),
            // After a tag or anchor the quote is seen; its `]` closes nothing.
            format!("a: {}1{}\n", "[!!str \"]\", ".repeat(100), close),
            format!("a: {}1{}\n", "[&a \"]\", ".repeat(100), close),
            // `''` does not end a single-quoted scalar.
            format!("a: 'it''s'\nb: {d}\n"),
        ] {
            assert!(too_deep(&text).is_some(), "{text:?}");
        }
        // Balanced brackets inside real quoted values in flow collections add nothing.
        let body = "  - { body: '{\"a\":[[1]]}', x: \"]}\" }\n".repeat(100);
        assert_eq!(too_deep(&format!("r:\n{body}")), None);
        // An unbalanced `[` in one stays counted (the price of not trusting the guess).
        let body = "  - { x: \"[\" }\n".repeat(70);
        assert!(too_deep(&format!("r:\n{body}")).is_some());
    }

    #[test]
    fn block_scalar_parents() {
        assert_eq!(block_scalar_parent("body: |"), Some(0));
        assert_eq!(block_scalar_parent("  body: >-  "), Some(2));
        assert_eq!(block_scalar_parent("  - body: |"), Some(4));
        assert_eq!(block_scalar_parent("  - - |"), Some(4));
        assert_eq!(block_scalar_parent("- |"), Some(0));
        assert_eq!(block_scalar_parent("|"), None);
        assert_eq!(block_scalar_parent("a: x|"), None);
        assert_eq!(block_scalar_parent("a: |+-"), None);
        assert_eq!(block_scalar_parent("-|"), None);
        assert_eq!(block_scalar_parent("? k: |"), None);
        assert_eq!(block_scalar_parent("- : |"), None);
    }
}
