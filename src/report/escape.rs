//! Escaping of strings from outside (pod, container, scenario and workload names, k6 tags,
//! reasons, notes) for each output syntax: Markdown, XML (JUnit, SVG), HTML and OpenMetrics
//! label values. Every function also neutralises what could forge structure or fool a reader:
//! control characters (ANSI escapes, C1 controls) and bidirectional overrides become U+FFFD, and
//! the one-line formats turn newlines into spaces. The renderers call these on every outside
//! string; generated text (numbers, rule ids) may go through them too, harmlessly.

use std::fmt::Write;

/// Bidirectional formatting characters that can make text read differently from its bytes.
fn bidi(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// One line of text: CR, LF and tabs become spaces, other controls and bidi overrides U+FFFD.
pub fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' => ' ',
            c if c.is_control() || bidi(c) => '\u{FFFD}',
            c => c,
        })
        .collect()
}

/// Markdown inline text (a table cell, a list item): backslash before `\` `|` `*` `_` `` ` ``
/// `[` `]` `~`, entities for `&` `<` `>`, newlines as spaces. Safe inside a GFM table cell.
pub fn markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in one_line(s).chars() {
        match c {
            '\\' | '|' | '*' | '_' | '`' | '[' | ']' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Whether XML 1.0 allows `c` (and it is not a discouraged C1/DEL control).
fn xml_char(c: char) -> bool {
    match c {
        '\t' | '\n' | '\r' => true,
        '\u{0}'..='\u{1F}' | '\u{7F}'..='\u{9F}' | '\u{FFFE}' | '\u{FFFF}' => false,
        _ => true,
    }
}

/// XML character data: `&` `<` `>` escaped; characters XML 1.0 does not allow (C0 controls such
/// as ESC, C1 controls, U+FFFE/U+FFFF) are dropped; bidi overrides become U+FFFD.
pub fn xml_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars().filter(|c| xml_char(*c)) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c if bidi(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// An XML attribute value (for double or single quotes): `xml_text` plus `"` `'`, and tab, CR and
/// LF as character references so attribute normalisation keeps them.
pub fn xml_attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in xml_text(s).chars() {
        match c {
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    out
}

/// HTML text or attribute value: `&` `<` `>` `"` `'` as entities; controls other than newline
/// and tab, and bidi overrides, become U+FFFD.
pub fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' => out.push(c),
            c if c.is_control() || bidi(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// An OpenMetrics label value (inside double quotes): `\` `"` and newline escaped as the format
/// requires; other controls become U+FFFD.
pub fn label_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if c.is_control() || bidi(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// A YAML scalar for a name: plain when it is a DNS label (what Kubernetes allows for container
/// names), else a double-quoted string with escapes.
pub fn yaml_scalar(s: &str) -> String {
    let dns_label = !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if dns_label
        && !matches!(
            s,
            "y" | "n" | "yes" | "no" | "on" | "off" | "null" | "true" | "false"
        )
        && !s.bytes().all(|b| b.is_ascii_digit())
    {
        return s.to_string();
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() || bidi(c) || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str =
        "<script>alert('x')</script> | *a* _b_ `c` [d](e) \"q\" & \x1b[31mred\nnext\r~~s~~ \\";

    #[test]
    fn markdown_escapes_structure_and_keeps_one_line() {
        let md = markdown(HOSTILE);
        assert!(!md.contains('\n') && !md.contains('\r') && !md.contains('\x1b'));
        assert!(!md.contains('<') && !md.contains('>'));
        assert_eq!(
            md,
            "&lt;script&gt;alert('x')&lt;/script&gt; \\| \\*a\\* \\_b\\_ \\`c\\` \\[d\\](e) \"q\" &amp; \u{FFFD}\\[31mred next ~~s~~ \\\\"
                .replace("~~s~~", "\\~\\~s\\~\\~")
        );
        assert_eq!(markdown("web-7d9f-x2k4p"), "web-7d9f-x2k4p");
    }

    #[test]
    fn xml_drops_illegal_characters_and_escapes_markup() {
        assert_eq!(
            xml_text("a\x1b[31m<b>&\u{0}\u{FFFF}\u{85}"),
            "a[31m&lt;b&gt;&amp;"
        );
        assert_eq!(
            xml_attr("say \"hi\"\n'there'\t"),
            "say &quot;hi&quot;&#10;&apos;there&apos;&#9;"
        );
        assert_eq!(xml_text("x\u{202E}y"), "x\u{FFFD}y");
    }

    #[test]
    fn html_escapes_the_five_and_neutralises_controls() {
        assert_eq!(
            html("<img src=x onerror='a'>\"&\x1b"),
            "&lt;img src=x onerror=&#39;a&#39;&gt;&quot;&amp;\u{FFFD}"
        );
        assert_eq!(html("two\nlines"), "two\nlines");
    }

    #[test]
    fn label_values_escape_backslash_quote_and_newline() {
        assert_eq!(label_value("a\\b\"c\nd\x1b"), "a\\\\b\\\"c\\nd\u{FFFD}");
    }

    #[test]
    fn yaml_names_stay_plain_when_they_are_dns_labels() {
        assert_eq!(yaml_scalar("app"), "app");
        assert_eq!(yaml_scalar("istio-proxy"), "istio-proxy");
        assert_eq!(yaml_scalar("yes"), "\"yes\"");
        assert_eq!(yaml_scalar("123"), "\"123\"");
        assert_eq!(
            yaml_scalar("a: b\n\"c\"\x1b"),
            "\"a: b\\n\\\"c\\\"\\u001B\""
        );
        assert_eq!(yaml_scalar("```"), "\"```\"");
    }
}
