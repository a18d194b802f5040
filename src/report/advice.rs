//! "What to change": the sentence per container that turns this run's numbers into a suggested
//! limit and request, and the `resources:` YAML snippet to paste into the pod spec. Shared by the
//! Markdown and HTML reports so both say the same; the text is plain (the caller escapes it) and
//! never contains the container name, which each format prints in its own markup.

use super::escape::yaml_scalar;
use super::{ContainerRow, ReportView};
use crate::model::{Rule, Severity};
use crate::units::{format_bytes, format_bytes_exact_quantity, format_percent};

/// A suggested size, exact (suggestions are whole MiB): "1088 MiB", "2 GiB".
fn exact(b: u64) -> String {
    format_bytes_exact_quantity(b)
        .replace("Ki", " KiB")
        .replace("Mi", " MiB")
        .replace("Gi", " GiB")
        .replace("Ti", " TiB")
}

/// What to do with `row`'s limit and request, in one sentence; `None` without a suggestion.
pub fn sentence(row: &ContainerRow, headroom: f64) -> Option<String> {
    let s = row.suggestion.as_ref()?;
    let peak = row.peak?;
    let why = format!(
        "peak {} ÷ (1 − {} headroom)",
        format_bytes(peak),
        format_percent(headroom)
    );
    let new = exact(s.limit);
    let mut text = match row.limit {
        None => format!("set a memory limit of {new} ({why})"),
        Some(l) if l < s.limit => {
            format!("raise the limit from {} to {new} ({why})", format_bytes(l))
        }
        Some(l) if l >= s.limit.saturating_mul(2) => format!(
            "the limit {} is more than twice what this load needs; {new} would do ({why})",
            format_bytes(l)
        ),
        Some(l) => format!("keep the limit {} ({why} = {new})", format_bytes(l)),
    };
    if row.results.get(&Rule::OomKilled) == Some(&Severity::Fail) {
        text.push_str(
            "; it was OOM-killed, so its real need lies above what was measured: treat this as a \
             lower bound and run the gate again",
        );
    }
    match (&s.request, &s.request_basis) {
        (Some(r), Some((median, stage))) => {
            let basis = format!("median {} in {stage} × 1.15", format_bytes(*median));
            let r_text = exact(*r);
            text.push_str(&match row.request {
                None => format!("; set a memory request of {r_text} ({basis})"),
                Some(now) if now == *r => format!("; the request {r_text} fits ({basis})"),
                Some(now) => format!(
                    "; {} the request from {} to {r_text} ({basis})",
                    if now < *r { "raise" } else { "lower" },
                    format_bytes(now)
                ),
            });
        }
        _ => text.push_str("; no sample in the busiest hold to base a request on"),
    }
    text.push('.');
    Some(text)
}

/// The suggested `resources:` of every container with a suggestion, as YAML for a pod template's
/// `containers:` list; `None` when no container has one.
pub fn yaml(view: &ReportView) -> Option<String> {
    let rows: Vec<&ContainerRow> = view
        .containers
        .iter()
        .filter(|c| c.suggestion.is_some())
        .collect();
    if rows.is_empty() {
        return None;
    }
    let mut out = format!(
        "# suggested by oomgate: limit = peak ÷ (1 − {} headroom); request = median of the busiest hold × 1.15\ncontainers:\n",
        format_percent(view.policy.headroom)
    );
    for row in rows {
        let s = row.suggestion.as_ref().expect("filtered");
        out.push_str(&format!(
            "  - name: {}\n    resources:\n",
            yaml_scalar(&row.container)
        ));
        if let Some(r) = s.request {
            out.push_str(&format!(
                "      requests:\n        memory: {}\n",
                format_bytes_exact_quantity(r)
            ));
        }
        out.push_str(&format!(
            "      limits:\n        memory: {}\n",
            format_bytes_exact_quantity(s.limit)
        ));
    }
    Some(out)
}
