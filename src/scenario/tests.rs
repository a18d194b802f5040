//! Scenario parsing: what is accepted, what each mistake says, and where it points.

use std::path::Path;

use super::*;

const GOOD: &str = r#"name: checkout
target: { url: "http://127.0.0.1:8080/" }
load:
  stages:
    - { duration: 2m, users: 100 }
    - { duration: 5m, users: 100 }
  requests:
    - { name: list, method: GET, path: /api/users, weight: 3, expect_status: 200 }
    - { method: POST, path: /api/orders, headers: { Content-Type: application/json }, body: '{"a":1}', expect_status: [200, 201] }
  think_time: 500ms..1500ms
  thresholds: { p95: 500ms, error_rate: 1% }
workload:
  local:
    command: [./app]
    limit: 512Mi
policy:
  headroom: 25%
"#;

fn env(name: &str) -> Option<String> {
    match name {
        "URL" => Some("http://127.0.0.1:9999".into()),
        _ => None,
    }
}

fn parse_str(text: &str) -> Result<Scenario, ScenarioError> {
    parse(Path::new("s.yaml"), text, &Overrides::default(), env)
}

fn err(text: &str) -> String {
    parse_str(text).expect_err("should be rejected").to_string()
}

#[test]
fn a_full_scenario_is_read() {
    let s = parse_str(GOOD).unwrap();
    assert_eq!(s.name, "checkout");
    assert_eq!(s.target_url.as_deref(), Some("http://127.0.0.1:8080"));
    assert_eq!(s.load.stages.len(), 2);
    assert_eq!(s.load.stages[1].from_users, 100);
    assert_eq!(s.load.stages[1].kind(), crate::model::StageKind::Hold);
    assert_eq!(s.load.requests[0].weight, 3);
    assert_eq!(s.load.requests[1].name, "POST /api/orders");
    assert_eq!(s.load.requests[1].expect_status, vec![200, 201]);
    assert_eq!(s.load.think_time.0.as_millis(), 500);
    assert_eq!(s.policy.headroom, 0.25);
    assert_eq!(s.policy.max_error_rate, Some(0.01));
    assert_eq!(s.policy.max_p95.map(|d| d.as_millis()), Some(500));
    assert_eq!(s.memory.source, SourceKind::Cgroup);
    // A local cgroup is cheap to read: sampled every 100 ms unless told otherwise.
    assert_eq!(s.memory.interval.as_millis(), 100);
    let WorkloadSpec::Local(l) = &s.workload else {
        panic!("local")
    };
    assert_eq!(l.limit, Some(512 * 1024 * 1024));
}

#[test]
fn the_shipped_scenarios_parse() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for f in ["scenarios/checkout-api.yaml", "scenarios/demo.yaml"] {
        let p = root.join(f);
        let text = std::fs::read_to_string(&p).unwrap();
        let s = parse(&p, &text, &Overrides::default(), |n| match n {
            "OOMGATE_BIN" => Some("/bin/oomgate".into()),
            _ => None,
        });
        assert!(s.is_ok(), "{f}: {}", s.unwrap_err());
    }
}

#[test]
fn variables_expand_and_overrides_win() {
    let text = GOOD.replace("\"http://127.0.0.1:8080/\"", "${URL}");
    assert_eq!(
        parse_str(&text).unwrap().target_url.as_deref(),
        Some("http://127.0.0.1:9999")
    );
    let ov = Overrides {
        target_url: Some("http://127.0.0.1:7".into()),
        namespace: None,
        ..Overrides::default()
    };
    let s = parse(Path::new("s.yaml"), &text, &ov, env).unwrap();
    assert_eq!(s.target_url.as_deref(), Some("http://127.0.0.1:7"));
    let e = err(&GOOD.replace("\"http://127.0.0.1:8080/\"", "${STAGING_URL}"));
    assert!(e.starts_with("s.yaml:2:16: "), "{e}");
    assert!(e.contains("STAGING_URL is not set"), "{e}");
}

#[test]
fn bad_duration_names_file_line_column_and_field() {
    let e = err(&GOOD.replace(
        "{ duration: 5m, users: 100 }",
        "{ duration: 5 minutes, users: 100 }",
    ));
    assert_eq!(
        e,
        "s.yaml:6:19: load.stages[1].duration: \"5 minutes\" is not a duration (write 5m)"
    );
}

#[test]
fn columns_point_into_the_file_as_written_after_expansion() {
    // The variable on the same line is longer once expanded; the column still matches the file.
    let text = "name: x\ntarget: { url: \"${URL}\" }\nload:\n  stages: [{ duration: 1s, users: 1 }]\n  requests: [{ path: / }]\nworkload: { local: { command: [a], limit: 1Gi } }\npolicy: { headroom: ${H:-20} }\n";
    let e = err(text);
    assert!(e.starts_with("s.yaml:7:21: policy.headroom: "), "{e}");
    assert!(e.contains("20%"), "hint to write a percentage: {e}");
}

#[test]
fn unknown_keys_are_rejected_with_the_known_ones() {
    let e = err(&GOOD.replace("  think_time:", "  thinktime:"));
    assert!(
        e.starts_with("s.yaml:10:3: load.thinktime: unknown key `thinktime` (expected one of"),
        "{e}"
    );
    let e = err(&format!("{GOOD}extra: 1\n"));
    assert!(e.contains("unknown key `extra`"), "{e}");
}

#[test]
fn quantities_are_checked() {
    let e = err(&GOOD.replace("limit: 512Mi", "limit: 400m"));
    assert!(
        e.starts_with("s.yaml:15:12: workload.local.limit: \"400m\" is 0.4 bytes"),
        "{e}"
    );
    let s = parse_str(&GOOD.replace("limit: 512Mi", "limit: 0.5Gi")).unwrap();
    let WorkloadSpec::Local(l) = s.workload else {
        panic!()
    };
    assert_eq!(l.limit, Some(536_870_912));
}

#[test]
fn goose_stages_must_be_whole_seconds() {
    let e = err(&GOOD.replace("duration: 2m,", "duration: 1500ms,"));
    assert_eq!(
        e,
        "s.yaml:5:19: load.stages[0].duration: 1.5s is not a whole number of seconds: the Goose driver plans in whole seconds (write 1s or 2s)"
    );
}

#[test]
fn workload_must_be_exactly_one() {
    let both = GOOD.replace(
        "workload:\n  local:",
        "workload:\n  kubernetes: { deployment: web }\n  local:",
    );
    assert!(
        err(&both).contains("workload: give exactly one of"),
        "{}",
        err(&both)
    );
    let k = GOOD.replace(
        "  local:\n    command: [./app]\n    limit: 512Mi\n",
        "  kubernetes: { deployment: web, statefulset: db }\n",
    );
    let e = err(&k);
    assert!(
        e.contains("workload.kubernetes.statefulset: give only one of deployment, statefulset"),
        "{e}"
    );
}

#[test]
fn kubernetes_defaults_and_source_checks() {
    let k = GOOD.replace(
        "  local:\n    command: [./app]\n    limit: 512Mi\n",
        "  kubernetes: { deployment: web }\n",
    );
    let s = parse_str(&k).unwrap();
    assert_eq!(s.memory.source, SourceKind::MetricsApi);
    assert_eq!(s.memory.interval.as_secs(), 5);
    let WorkloadSpec::Kubernetes(spec) = &s.workload else {
        panic!()
    };
    assert_eq!(spec.namespace, "default");
    assert_eq!(spec.workload, WorkloadRef::Deployment("web".into()));
    let e = err(&format!("{k}memory: {{ source: cgroup }}\n"));
    assert!(
        e.contains("memory.source: the cgroup source measures local workloads only"),
        "{e}"
    );
    let e = err(&format!("{k}memory: {{ source: prometheus }}\n"));
    assert!(
        e.contains("memory.prometheus: source: prometheus needs memory.prometheus.url"),
        "{e}"
    );
    // The cluster sources cannot be read faster than 100 ms; a local cgroup down to 20 ms.
    let e = err(&format!("{k}memory: {{ interval: 50ms }}\n"));
    assert!(
        e.contains("memory.interval: 50ms is too fine: sample at 100ms or slower"),
        "{e}"
    );
    let s = parse_str(&format!("{GOOD}memory: {{ interval: 20ms }}\n")).unwrap();
    assert_eq!(s.memory.interval.as_millis(), 20);
    let e = err(&format!("{GOOD}memory: {{ interval: 10ms }}\n"));
    assert!(e.contains("sample at 20ms or slower"), "{e}");
}

#[test]
fn requests_and_stages_are_required_for_goose() {
    let e = err(&GOOD.replace(
        "  stages:\n    - { duration: 2m, users: 100 }\n    - { duration: 5m, users: 100 }\n",
        "",
    ));
    assert!(
        e.contains("load.stages: the Goose driver needs at least one stage"),
        "{e}"
    );
    let e = err(&GOOD.replace("path: /api/users", "path: api/users"));
    assert!(
        e.contains("load.requests[0].path: \"api/users\" must start with /"),
        "{e}"
    );
    let e = err(&GOOD.replace("expect_status: 200 }", "expect_status: 99 }"));
    assert!(e.contains("99 is not an HTTP status code"), "{e}");
    let e = err(&GOOD.replace("weight: 3", "weight: 0"));
    assert!(e.contains("load.requests[0].weight: a weight of 0"), "{e}");
    let e = err(&GOOD.replace("think_time: 500ms..1500ms", "think_time: 2s..1s"));
    assert!(e.contains("lower end is above its upper end"), "{e}");
}

#[test]
fn target_url_is_derived_from_ready_url_for_local_services() {
    let text = GOOD
        .replace("target: { url: \"http://127.0.0.1:8080/\" }\n", "")
        .replace(
            "limit: 512Mi",
            "limit: 512Mi\n    ready_url: http://127.0.0.1:8181/healthz",
        );
    assert_eq!(
        parse_str(&text).unwrap().target_url.as_deref(),
        Some("http://127.0.0.1:8181")
    );
    let none = GOOD.replace("target: { url: \"http://127.0.0.1:8080/\" }\n", "");
    assert!(err(&none).contains("give target.url"), "{}", err(&none));
}

#[test]
fn credentials_in_a_bad_url_are_not_echoed() {
    let e = err(&GOOD.replace("http://127.0.0.1:8080/", "ftp://user:hunter2@host/"));
    assert!(!e.contains("hunter2"), "{e}");
}

#[test]
fn manifest_gives_limit_request_and_env() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("deploy.yaml"),
        "apiVersion: v1\nkind: Service\nmetadata: { name: web }\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: { name: web }\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          env: [{ name: GOMEMLIMIT, value: 400MiB }]\n          resources: { limits: { memory: 512Mi }, requests: { memory: 256Mi } }\n",
    )
    .unwrap();
    let text = GOOD.replace("limit: 512Mi", "manifest: deploy.yaml\n    container: app");
    let s = parse(
        &dir.path().join("s.yaml"),
        &text,
        &Overrides::default(),
        env,
    )
    .unwrap();
    let WorkloadSpec::Local(l) = s.workload else {
        panic!()
    };
    assert_eq!((l.limit, l.request), (Some(512 << 20), Some(256 << 20)));
    assert_eq!(
        l.env,
        vec![("GOMEMLIMIT".to_string(), "400MiB".to_string())]
    );
    assert!(l.limit_from.contains("Deployment/web"), "{}", l.limit_from);
    let text = GOOD.replace("limit: 512Mi", "manifest: deploy.yaml\n    container: nope");
    let e = parse(
        &dir.path().join("s.yaml"),
        &text,
        &Overrides::default(),
        env,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("workload.local.manifest") && e.contains("nope"),
        "{e}"
    );
}

#[test]
fn yaml_syntax_errors_point_at_the_spot() {
    let e = err("name: x\nload: [\n");
    assert!(e.starts_with("s.yaml:"), "{e}");
    assert!(
        e.split(':')
            .nth(1)
            .is_some_and(|l| l.parse::<usize>().is_ok()),
        "{e}"
    );
}

#[test]
fn brackets_nested_too_deep_are_refused_before_parsing() {
    let deep = format!(
        "name: x\nload: {{ stages: {}{} }}\n",
        "[".repeat(65),
        "]".repeat(65)
    );
    let started = std::time::Instant::now();
    let e = err(&deep);
    assert!(e.starts_with("s.yaml:2:"), "{e}");
    assert!(e.contains("nested deeper than 64 levels"), "{e}");
    // The 64th level is still parsed (and rejected for its type, not its depth).
    let ok_depth = format!(
        "name: x\nload: {{ stages: {}{} }}\n",
        "[".repeat(62),
        "]".repeat(62)
    );
    assert!(!err(&ok_depth).contains("nested deeper"));
    // Brackets inside quoted scalars and comments are text.
    let quoted = format!(
        "name: \"{}\" # {}\nload: [\n",
        "[".repeat(100),
        "{".repeat(100)
    );
    assert!(!err(&quoted).contains("nested deeper"), "{}", err(&quoted));
    // Nothing hides deep brackets: a comment ended by a lone \r, a backslash at the end of a
    // single-quoted scalar, an apostrophe inside a plain scalar.
    let deep = "[".repeat(100);
    for hiding in [
        format!("name: x #\r{deep}\n"),
        format!("name: 'C:\\'\nload: {deep}\n"),
        format!("name: x 'y\nload: {deep}\n"),
        format!("name: it's\nload: {deep}\n"),
    ] {
        assert!(
            err(&hiding).contains("nested deeper"),
            "{hiding:?}: {}",
            err(&hiding)
        );
    }
    // A 200 KB file of brackets answers at once (parsed, it took 38 s).
    let huge = format!("name: {}\n", "[".repeat(200_000));
    assert!(err(&huge).contains("nested deeper"));
    eprintln!("took {:?}", started.elapsed());
}

#[test]
fn a_deeply_nested_body_in_a_block_scalar_is_text() {
    let json = format!("{}1{}", "[".repeat(100), "]".repeat(100));
    let text = GOOD.replace(
        "  think_time: 500ms..1500ms\n",
        &format!(
            "    - method: POST\n      path: /deep\n      body: |\n        {json}\n  think_time: 500ms..1500ms\n"
        ),
    );
    let s = parse_str(&text).expect("a block scalar body is text, however it nests");
    assert_eq!(
        s.load.requests[2].body.as_deref(),
        Some(format!("{json}\n").as_str())
    );
    // The same body as a flow value is refused before parsing, at the 65th bracket.
    let flow = text.replace("body: |\n        ", "body: ");
    let e = err(&flow);
    assert!(e.contains("nested deeper than 64 levels"), "{e}");
}

#[test]
fn judge_needs_no_target_requests_script_or_load() {
    let text = "name: finished\nworkload:\n  kubernetes: { namespace: staging, deployment: web }\n\
memory:\n  source: prometheus\n  prometheus: { url: \"http://127.0.0.1:9090\" }\n";
    let judge = Overrides {
        purpose: super::Purpose::Judge,
        ..Overrides::default()
    };
    let s = parse(Path::new("s.yaml"), text, &judge, env).unwrap();
    assert!(s.target_url.is_none() && s.load.stages.is_empty() && s.load.k6.is_none());
    // a k6 driver without its script, and Goose stages without requests, are fine for judge
    let k6 = format!("{text}load:\n  driver: k6\n  stages: [{{ duration: 2.5s, users: 3 }}]\n");
    assert_eq!(
        parse(Path::new("s.yaml"), &k6, &judge, env)
            .unwrap()
            .load
            .stages
            .len(),
        1
    );
    // control: the same scenarios cannot run a load
    let e = parse(Path::new("s.yaml"), text, &Overrides::default(), env)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("load") && e.contains("needs a load section"),
        "{e}"
    );
    let e = parse(Path::new("s.yaml"), &k6, &Overrides::default(), env)
        .unwrap_err()
        .to_string();
    assert!(e.contains("load.k6"), "{e}");
}

#[test]
fn a_variable_gives_a_value_never_structure() {
    let lookup = |name: &str| -> Option<String> {
        match name {
            "ARGS" => Some("--port, 8080".into()),
            "MAP" => Some("{ a: 1 }".into()),
            "QUOTED" => Some("a\", \"b".into()),
            "COMMENT" => Some("x # y".into()),
            "PLAIN" => Some("a, b [c] it's".into()),
            "TEXT" => Some("a, b: c [d] #e 'f'".into()),
            _ => None,
        }
    };
    let parse_with = |text: &str| parse(Path::new("s.yaml"), text, &Overrides::default(), lookup);
    for (var, text) in [
        ("ARGS", GOOD.replace("[./app]", "[./app, ${ARGS}]")),
        ("MAP", GOOD.replace("limit: 512Mi", "limit: ${MAP}")),
        ("QUOTED", GOOD.replace("[./app]", "[\"${QUOTED}\"]")),
        (
            "COMMENT",
            GOOD.replace("name: checkout", "name: checkout ${COMMENT}"),
        ),
    ] {
        let e = parse_with(&text).expect_err(var).to_string();
        assert!(
            e.contains(&format!(
                "environment variable {var} would change the scenario's structure"
            )),
            "{var}: {e}"
        );
        assert!(e.starts_with("s.yaml:"), "{e}");
    }
    // Any text that stays one value is fine, plain or quoted.
    let s = parse_with(&GOOD.replace("name: checkout", "name: ${PLAIN}")).unwrap();
    assert_eq!(s.name, "a, b [c] it's");
    let s = parse_with(&GOOD.replace("Content-Type: application/json", "X: \"${TEXT}x\"")).unwrap();
    assert_eq!(s.load.requests[1].headers[0].1, "a, b: c [d] #e 'f'x");
}
