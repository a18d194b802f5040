//! The `runtime-setting` rule: each heap setting `analysis::runtime` finds in a container's
//! environment (`Run.env`), weighed against the container's memory limit. Too close to the limit
//! warns, at or above it fails, a GOMEMLIMIT far below it warns, an unreadable value warns; each
//! message names the variable, its value, the limit and what to set. A container whose
//! environment is known but sets no heap passes; one whose environment is unknown gets no
//! finding.

use super::finding;
use crate::analysis::recommend::{gomemlimit_for, node_heap_mib_for, recommend};
use crate::analysis::runtime::{
    advice, assess, container_env, heap_settings, Assessment, HeapKind, HeapSetting, HeapValue,
};
use crate::model::group_containers;
use crate::model::{Finding, Policy, Rule, Run, Severity};
use crate::units::{format_bytes, format_bytes_exact, format_percent};

/// `leaking`: the container names that failed the leak rule; nothing is sized from their peak
/// ("What to change" withholds it), so their settings are weighed against the current limit.
pub(super) fn check(policy: &Policy, run: &Run, leaking: &[String]) -> Vec<Finding> {
    let mut out = Vec::new();
    let recommendations = recommend(run, policy);
    for group in group_containers(run) {
        let Some(env) = container_env(run, group.name) else {
            continue;
        };
        let settings = heap_settings(env);
        if settings.is_empty() {
            out.push(named(
                group.name,
                finding(
                    Rule::RuntimeSetting,
                    Severity::Pass,
                    format!(
                        "{}: no heap setting in its environment (GOMEMLIMIT, NODE_OPTIONS \
                         --max-old-space-size, Java -Xmx or -XX:MaxRAMPercentage)",
                        group.name
                    ),
                ),
            ));
            continue;
        }
        // What to set comes from the limit "What to change" suggests, so both say one number.
        let suggested = recommendations
            .iter()
            .find(|r| r.container == group.name)
            .map(|r| r.limit)
            .filter(|_| !leaking.iter().any(|n| n == group.name));
        for setting in &settings {
            out.push(named(
                group.name,
                judge(group.name, setting, group.limit(), suggested),
            ));
        }
    }
    out
}

fn named(container: &str, mut f: Finding) -> Finding {
    f.container = Some(container.to_string());
    f
}

/// "GOMEMLIMIT=482344960 (460 MiB)", "JAVA_OPTS -Xmx900m (900 MiB)",
/// "JAVA_TOOL_OPTIONS -XX:MaxRAMPercentage=90".
fn shown(setting: &HeapSetting) -> String {
    match setting.value {
        Ok(HeapValue::Bytes(b)) => format!("{} ({})", setting.describe(), format_bytes(b)),
        _ => setting.describe(),
    }
}

fn judge(name: &str, setting: &HeapSetting, limit: Option<u64>, suggested: Option<u64>) -> Finding {
    let what = shown(setting);
    let Some(limit) = limit else {
        return finding(
            Rule::RuntimeSetting,
            if setting.value.is_ok() {
                Severity::Skipped
            } else {
                Severity::Warn
            },
            match &setting.value {
                Ok(_) => {
                    format!("{name}: not judged: {what}, with no memory limit to compare with")
                }
                Err(why) => format!("{name}: {} cannot be read: {why}", setting.describe()),
            },
        );
    };
    let limit_text = format_bytes(limit);
    let kind = setting.kind;
    let assessment = assess(setting, limit);
    let current = setting.heap_bytes(limit);
    // The suggested limit's value, unless it points the wrong way for this finding (a heap
    // called too low must not be told to go lower, one too high not higher).
    let toward = |s: u64| match (heap_for(kind, s), current, assessment) {
        (Some(new), Some(now), Assessment::Low { .. }) => new > now,
        (Some(new), Some(now), Assessment::High { .. } | Assessment::AtOrAboveLimit { .. }) => {
            new < now
        }
        _ => true,
    };
    let set = match suggested {
        Some(s) if s != limit && toward(s) => advice(
            kind,
            s,
            &format!(
                "the {} limit suggested in \"What to change\"",
                format_bytes_exact(s)
            ),
        ),
        _ => advice(kind, limit, "the limit"),
    };
    let heap = setting.heap_bytes(limit).map(|b| b as f64);
    let (severity, message, threshold) = match assessment {
        Assessment::Unreadable => {
            let why = setting.value.as_ref().err().cloned().unwrap_or_default();
            (
                Severity::Warn,
                format!(
                    "{name}: {} cannot be read: {why}; for the {limit_text} limit set {set}",
                    setting.describe()
                ),
                None,
            )
        }
        Assessment::AtOrAboveLimit { share } => (
            Severity::Fail,
            format!(
                "{name}: {what} is at or above the {limit_text} limit ({}): the kernel OOM-kills \
                 the container before the garbage collector tries hard; set {set}",
                format_percent(round_share(share))
            ),
            Some(limit as f64),
        ),
        Assessment::High { share } => (
            Severity::Warn,
            format!(
                "{name}: {what} is {} of the {limit_text} limit, above {}: no room for {}; set \
                 {set}",
                format_percent(round_share(share)),
                format_percent(kind.high()),
                kind.outside()
            ),
            Some(limit as f64 * kind.high()),
        ),
        Assessment::Low { share } => (
            Severity::Warn,
            format!(
                "{name}: {what} is {} of the {limit_text} limit, below {}: the garbage collector \
                 works to stay far under memory the container is allowed; set {set}",
                format_percent(round_share(share)),
                format_percent(kind.low().unwrap_or(0.0))
            ),
            Some(limit as f64 * kind.low().unwrap_or(0.0)),
        ),
        Assessment::Fine { share } => {
            let range = match kind {
                HeapKind::GoMemLimit => format!(
                    "between {} and {}",
                    format_percent(kind.low().unwrap_or(0.0)),
                    format_percent(kind.high())
                ),
                _ => format!("at most {}", format_percent(kind.high())),
            };
            (
                Severity::Pass,
                format!(
                    "{name}: {what} is {} of the {limit_text} limit, {range}",
                    format_percent(round_share(share))
                ),
                Some(limit as f64 * kind.high()),
            )
        }
    };
    let mut f = finding(Rule::RuntimeSetting, severity, message);
    f.observed = heap.map(f64::round);
    f.threshold = threshold.map(f64::round);
    f
}

/// The heap `advice` sets for `kind` under `limit`, bytes (Java's is a share: `None`).
fn heap_for(kind: HeapKind, limit: u64) -> Option<u64> {
    match kind {
        HeapKind::GoMemLimit => Some(gomemlimit_for(limit)),
        HeapKind::NodeMaxOldSpace => Some(node_heap_mib_for(limit) << 20),
        HeapKind::JavaXmx | HeapKind::JavaMaxRamPercentage => None,
    }
}

/// A share rounded to a tenth of a percent for messages.
fn round_share(share: f64) -> f64 {
    (share * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::fixtures::*;

    fn check_all(run: &Run) -> Vec<Finding> {
        check(&Policy::default(), run, &[])
    }

    fn run_with_env(limit: Option<u64>, env: &[(&str, &str)]) -> Run {
        let mut run = local_run();
        run.containers[0].limit = limit;
        run.env = vec![(
            "app".into(),
            env.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )];
        run
    }

    fn findings(limit: Option<u64>, env: &[(&str, &str)]) -> Vec<Finding> {
        check_all(&run_with_env(limit, env))
    }

    fn one(limit: u64, env: &[(&str, &str)]) -> Finding {
        let mut f = findings(Some(limit), env);
        assert_eq!(f.len(), 1, "{f:#?}");
        f.remove(0)
    }

    #[test]
    fn gomemlimit_between_half_and_95_percent_passes() {
        let f = one(512 * MIB, &[("GOMEMLIMIT", "460MiB")]);
        assert_eq!(f.severity, Severity::Pass);
        assert_eq!(
            f.message,
            "app: GOMEMLIMIT=460MiB (460 MiB) is 89.8% of the 512 MiB limit, between 50% and 95%"
        );
        assert_eq!(f.container.as_deref(), Some("app"));
        assert_eq!(f.observed, Some((460 * MIB) as f64));
    }

    #[test]
    fn gomemlimit_close_to_the_limit_warns_with_what_to_set() {
        let f = one(GIB, &[("GOMEMLIMIT", "1000MiB")]);
        assert_eq!(f.severity, Severity::Warn);
        assert_eq!(
            f.message,
            "app: GOMEMLIMIT=1000MiB (1000 MiB) is 97.7% of the 1 GiB limit, above 95%: no room \
             for memory the Go runtime does not manage (cgo, mmaps); set GOMEMLIMIT=112MiB (90% \
             of the 125 MiB limit suggested in \"What to change\")"
        );
    }

    #[test]
    fn gomemlimit_far_below_the_limit_warns() {
        let f = one(GIB, &[("GOMEMLIMIT", "268435456")]);
        assert_eq!(f.severity, Severity::Warn);
        assert!(
            f.message.starts_with(
                "app: GOMEMLIMIT=268435456 (256 MiB) is 25% of the 1 GiB limit, below 50%"
            ),
            "{}",
            f.message
        );
    }

    #[test]
    fn a_heap_at_or_above_the_limit_fails() {
        let f = one(GIB, &[("GOMEMLIMIT", "1GiB")]);
        assert_eq!(f.severity, Severity::Fail);
        assert!(f.message.contains("is at or above the 1 GiB limit (100%)"));
        let f = one(512 * MIB, &[("NODE_OPTIONS", "--max-old-space-size=1024")]);
        assert_eq!(f.severity, Severity::Fail);
        let f = one(512 * MIB, &[("JAVA_OPTS", "-Xmx1g")]);
        assert_eq!(f.severity, Severity::Fail, "{}", f.message);
        assert!(f
            .message
            .ends_with("set -XX:MaxRAMPercentage=75 (and no -Xmx) so the heap follows the limit"));
        assert_eq!(f.threshold, Some((512 * MIB) as f64));
    }

    #[test]
    fn node_old_space_above_80_percent_warns() {
        let f = one(
            GIB,
            &[(
                "NODE_OPTIONS",
                "--enable-source-maps --max-old-space-size=900",
            )],
        );
        assert_eq!(f.severity, Severity::Warn);
        assert_eq!(
            f.message,
            "app: NODE_OPTIONS --max-old-space-size=900 (900 MiB) is 87.9% of the 1 GiB limit, \
             above 80%: no room for code, stacks and buffers outside the V8 heap; set \
             --max-old-space-size=93 (75% of the 125 MiB limit suggested in \"What to change\")"
        );
        let f = one(GIB, &[("NODE_OPTIONS", "--max-old-space-size=768")]);
        assert_eq!(f.severity, Severity::Pass);
    }

    #[test]
    fn a_leaking_container_and_a_heap_called_too_low_are_told_the_value_for_the_current_limit() {
        let run = run_with_env(
            Some(512 * MIB),
            &[("NODE_OPTIONS", "--max-old-space-size=600")],
        );
        let f = check(&Policy::default(), &run, &["app".to_string()]).remove(0);
        assert!(
            f.message
                .ends_with("set --max-old-space-size=384 (75% of the limit)"),
            "{}",
            f.message
        );
        // GOMEMLIMIT far below a 1 GiB limit: never told to go lower still.
        let f = one(GIB, &[("GOMEMLIMIT", "400MiB")]);
        assert_eq!(f.severity, Severity::Warn);
        assert!(
            f.message
                .ends_with("set GOMEMLIMIT=921MiB (90% of the limit)"),
            "{}",
            f.message
        );
    }

    #[test]
    fn the_finding_and_what_to_change_give_one_number() {
        // 512 MiB limit, a heap above it: the finding's value is the recommendation's.
        let run = run_with_env(
            Some(512 * MIB),
            &[("NODE_OPTIONS", "--max-old-space-size=600")],
        );
        let f = check_all(&run).remove(0);
        assert_eq!(f.severity, Severity::Fail);
        let rec = recommend(&run, &Policy::default()).remove(0);
        let env = &rec.env[0].value;
        let value = env.strip_prefix("--max-old-space-size=").unwrap();
        assert!(
            f.message
                .contains(&format!("set --max-old-space-size={value} (75% of the")),
            "{} / {env}",
            f.message
        );
        assert_eq!(value, rec.node_max_old_space_mib.to_string());
        // Where the suggested limit is the current one, the finding says "the limit".
        let mut same = run_with_env(
            Some(rec.limit),
            &[("NODE_OPTIONS", "--max-old-space-size=600")],
        );
        same.containers[0].limit = Some(rec.limit);
        let f = check_all(&same).remove(0);
        assert!(
            f.message.ends_with(&format!(
                "set --max-old-space-size={value} (75% of the limit)"
            )),
            "{}",
            f.message
        );
    }

    #[test]
    fn java_xmx_and_max_ram_percentage_above_80_percent_warn() {
        let f = one(GIB, &[("JAVA_TOOL_OPTIONS", "-XX:+UseG1GC -Xmx900m")]);
        assert_eq!(f.severity, Severity::Warn);
        assert!(
            f.message.starts_with(
                "app: JAVA_TOOL_OPTIONS -Xmx900m (900 MiB) is 87.9% of the 1 GiB limit, above \
                 80%: no room for metaspace, threads and buffers outside the heap"
            ),
            "{}",
            f.message
        );
        let f = one(GIB, &[("JDK_JAVA_OPTIONS", "-XX:MaxRAMPercentage=90.0")]);
        assert_eq!(f.severity, Severity::Warn);
        assert!(f
            .message
            .contains("-XX:MaxRAMPercentage=90.0 is 90% of the 1 GiB limit"));
        let f = one(GIB, &[("JAVA_OPTS", "-XX:MaxRAMPercentage=75")]);
        assert_eq!(f.severity, Severity::Pass);
        let f = one(GIB, &[("JAVA_OPTS", "-XX:MaxRAMPercentage=100")]);
        assert_eq!(f.severity, Severity::Fail);
    }

    #[test]
    fn unreadable_values_warn_and_no_setting_passes() {
        let f = one(GIB, &[("GOMEMLIMIT", "1.5GB")]);
        assert_eq!(f.severity, Severity::Warn);
        assert!(f
            .message
            .contains("cannot be read: \"1.5GB\" is not a Go byte count"));
        let f = one(GIB, &[("PATH", "/bin"), ("GOMEMLIMIT", "off")]);
        assert_eq!(f.severity, Severity::Pass);
        assert!(f
            .message
            .starts_with("app: no heap setting in its environment"));
        // Unknown environment: no finding at all.
        assert!(check_all(&local_run()).is_empty());
    }

    #[test]
    fn without_a_limit_settings_are_only_shown() {
        let f = findings(None, &[("GOMEMLIMIT", "460MiB")]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Skipped);
        assert!(f[0]
            .message
            .ends_with("with no memory limit to compare with"));
    }
}
