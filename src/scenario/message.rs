//! The words of a scenario parse error: serde-saphyr's user-facing messages
//! (`UserMessageFormatter`), with oomgate's wording for the mistakes people make in a scenario
//! (an unknown key with the known ones, a wrong type, a repeated key, nesting too deep). The
//! error's position and field path are printed by `ScenarioError`, so none is added here.

use std::borrow::Cow;

use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::granit_parser::ErrorKind;
use serde_saphyr::{Error, ExternalMessageSource, MessageFormatter, UserMessageFormatter};

use super::MAX_DEPTH;

/// The formatter, with the (expanded) text the error's location points into.
struct ScenarioMessages<'t> {
    text: &'t str,
}

/// What the node at `at` is, in serde's words: `sequence`, `mapping`, `integer `5``,
/// `string "fast"`.
fn found(text: &str, at: Option<serde_saphyr::Location>) -> String {
    let rest = at
        .and_then(|at| at.span().byte_offset())
        .and_then(|b| text.get(b as usize..))
        .unwrap_or("");
    let mut chars = rest.chars();
    match (chars.next(), chars.next()) {
        (Some('['), _) => return "sequence".into(),
        (Some('{'), _) => return "mapping".into(),
        (Some('-'), None | Some(' ' | '\t' | '\r' | '\n')) => return "sequence".into(),
        _ => {}
    }
    let line = rest.split(['\r', '\n']).next().unwrap_or("");
    let scalar = match line.chars().next() {
        Some(q @ ('"' | '\'')) => line[1..].split(q).next().unwrap_or(""),
        _ => line
            .split([',', ']', '}'])
            .next()
            .unwrap_or("")
            .split(" #")
            .next()
            .unwrap_or("")
            .trim(),
    };
    if scalar.parse::<i128>().is_ok() {
        format!("integer `{scalar}`")
    } else if scalar.parse::<f64>().is_ok() {
        format!("floating point `{scalar}`")
    } else {
        format!("string {scalar:?}")
    }
}

/// Nesting beyond the budget: the budget's own breach, or the parser's nesting limit when its
/// look-ahead gets there first.
pub fn too_deep(err: &Error) -> bool {
    match err {
        Error::Budget {
            breach: BudgetBreach::Depth { .. },
            ..
        } => true,
        Error::ExternalMessage { source, .. } => matches!(
            &**source,
            ExternalMessageSource::Parser(e) if matches!(e.kind(), ErrorKind::RecursionLimitExceeded)
        ),
        _ => false,
    }
}

/// `` `a`, `b` `` as serde words a list of names.
fn one_of(names: &[&str]) -> String {
    match names {
        [] => "there are none".to_string(),
        [one] => format!("`{one}`"),
        _ => {
            let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            format!("one of {}", quoted.join(", "))
        }
    }
}

impl MessageFormatter for ScenarioMessages<'_> {
    fn format_message<'a>(&self, err: &'a Error) -> Cow<'a, str> {
        if let Error::Budget {
            breach: BudgetBreach::Depth { .. },
            ..
        } = err
        {
            return Cow::Owned(format!(
                "mappings and sequences nested deeper than {} levels; a scenario needs a few",
                2 * MAX_DEPTH
            ));
        }
        if too_deep(err) {
            return Cow::Owned(format!(
                "brackets nested deeper than {MAX_DEPTH} levels; a scenario needs a few at \
                 most: check for an unclosed `[` or `{{`"
            ));
        }
        match err {
            Error::SerdeUnknownField {
                field, expected, ..
            } => Cow::Owned(format!(
                "unknown key `{field}` (expected {})",
                one_of(expected)
            )),
            Error::SerdeUnknownVariant {
                variant, expected, ..
            } => Cow::Owned(format!(
                "unknown variant `{variant}`, expected {}",
                one_of(expected)
            )),
            Error::SerdeInvalidType {
                unexpected,
                expected,
                ..
            } => Cow::Owned(format!("wrong type: {unexpected}, expected {expected}")),
            // serde-saphyr refuses the node before serde's visitor sees it: say what it is.
            Error::Unexpected { expected, .. } => {
                let expected = match *expected {
                    "mapping start" => "a mapping",
                    "sequence start" => "a sequence",
                    "string scalar" => "a string",
                    other => other,
                };
                Cow::Owned(format!(
                    "wrong type: {}, expected {expected}",
                    found(self.text, err.location())
                ))
            }
            // A number that does not fit the field (negative, too large, not a number).
            Error::InvalidScalar { ty, .. } => {
                let what = found(self.text, err.location());
                let negative = what.starts_with("integer `-");
                Cow::Owned(
                    if what.starts_with("integer") && !(negative && ty.starts_with('u')) {
                        format!("invalid value: {what}, expected {ty}")
                    } else {
                        format!("wrong type: {what}, expected {ty}")
                    },
                )
            }
            Error::DuplicateMappingKey { key, .. } => match key {
                Some(k) => Cow::Owned(format!(
                    "duplicate field `{k}`: a key may appear once in a mapping"
                )),
                None => Cow::Borrowed("duplicate key: a key may appear once in a mapping"),
            },
            _ => UserMessageFormatter.format_message(err),
        }
    }
}

/// The message for `err` in a scenario (`text`: the expanded text it was found in), without
/// position, control characters escaped.
pub fn text(err: &Error, text: &str) -> String {
    sanitize(&ScenarioMessages { text }.format_message(unwrap(err)))
}

/// serde-saphyr's own user-facing message for `err` (any YAML file), without position,
/// control characters escaped.
pub fn plain(err: &Error) -> String {
    sanitize(&UserMessageFormatter.format_message(unwrap(err)))
}

fn unwrap(err: &Error) -> &Error {
    match err {
        Error::WithSnippet { error, .. } => unwrap(error),
        other => other,
    }
}

fn sanitize(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}
