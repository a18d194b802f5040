//! Rounding of suggested limits and requests, runtime settings, and the YAML patch.

use super::*;
use crate::analysis::testdata::*;
use crate::analysis::testdata::{GIB, MIB};
use crate::model::Policy;
use crate::units::format_go_bytes;

#[test]
fn the_limit_keeps_the_headroom_rounded_up_to_a_mib() {
    assert_eq!(suggested_limit(600 * MIB, 0.2), 750 * MIB);
    assert_eq!(suggested_limit(600 * MIB + 1, 0.2), 751 * MIB);
    assert_eq!(suggested_limit(100 * MIB, 0.0), 100 * MIB);
    assert_eq!(suggested_limit(819 * MIB, 0.2), 1024 * MIB);
}

#[test]
fn above_a_gib_the_limit_goes_in_64_mib_steps() {
    let peak = (1.3 * GIB as f64) as u64;
    let limit = suggested_limit(peak, 0.2);
    assert_eq!(limit % (64 * MIB), 0);
    assert!(limit as f64 >= peak as f64 / 0.8);
    assert!((limit as f64) < peak as f64 / 0.8 + (64 * MIB) as f64);
    assert_eq!(limit, 1664 * MIB);
    // Just above 1 GiB after rounding to a MiB: the next 64 MiB step.
    assert_eq!(suggested_limit(820 * MIB, 0.2), 1088 * MIB);
}

#[test]
fn the_request_is_the_median_plus_the_vpa_margin() {
    assert_eq!(suggested_request(400 * MIB), 460 * MIB);
    assert_eq!(suggested_request(100 * MIB + 1), 116 * MIB);
}

#[test]
fn runtime_settings_follow_from_the_limit() {
    assert_eq!(gomemlimit_for(512 * MIB), 460 * MIB);
    assert_eq!(format_go_bytes(460 * MIB), "460MiB");
    assert_eq!(format_go_bytes(GIB), "1GiB");
    assert_eq!(format_go_bytes(1000), "1000");
    assert_eq!(node_heap_mib_for(GIB), 768);
    assert_eq!(node_heap_mib_for(750 * MIB), 562);
}

/// `app` at 400 MiB in hold 100 and 600 MiB in hold 200, `sidecar` flat at 40 MiB.
fn run() -> Run {
    let stages = crate::judge::fixtures::four_stages();
    let users = stages.clone();
    let app = sampled("web-1", "app", Some(GIB), 360, 1, move |s| {
        200.0 + 2.0 * users_at(&users, s)
    });
    let sidecar = sampled("web-1", "sidecar", None, 360, 5, |_| 40.0);
    run_with(stages, vec![app, sidecar])
}

#[test]
fn recommends_per_container_from_the_peak_and_the_busiest_hold() {
    let recs = recommend(&run(), &Policy::default());
    assert_eq!(recs.len(), 2);
    let app = &recs[0];
    assert_eq!(app.container, "app");
    assert_eq!(app.peak, 600 * MIB);
    assert_eq!(app.limit, 750 * MIB);
    assert_eq!(app.current_limit, Some(GIB));
    let basis = app.request_basis.as_ref().unwrap();
    assert_eq!(
        (basis.stage, basis.users, basis.median),
        (3, 200, 600 * MIB)
    );
    assert_eq!(app.request, Some(690 * MIB));
    assert_eq!(app.gomemlimit, 675 * MIB);
    assert_eq!(app.node_max_old_space_mib, 562);
    assert_eq!(app.java_max_ram_percentage, 75);
    assert!(app.env.is_empty(), "the runtime is unknown");
    let sidecar = &recs[1];
    assert_eq!(sidecar.limit, 50 * MIB);
    assert_eq!(sidecar.request, Some(46 * MIB));
    assert_eq!(sidecar.current_limit, None);
}

#[test]
fn the_patch_sets_resources_and_lists_runtime_choices() {
    let recs = recommend(&run(), &Policy::default());
    let patch = yaml_patch(&recs[0]);
    assert_eq!(
        patch,
        "# app: peak 600 MiB under load; limit keeps 20% headroom; request: median 600 MiB in the hold at 200 users + 15%
# apply with: kubectl patch <deployment|statefulset|daemonset>/<name> --patch-file <this file>
spec:
  template:
    spec:
      containers:
        - name: app
          resources:
            requests:
              memory: 690Mi
            limits:
              memory: 750Mi
          # env: keep the line for the container's runtime
          # env:
          #   - { name: GOMEMLIMIT, value: \"675MiB\" }   # Go
          #   - { name: NODE_OPTIONS, value: \"--max-old-space-size=562\" }   # Node.js
          #   - { name: JAVA_TOOL_OPTIONS, value: \"-XX:MaxRAMPercentage=75\" }   # Java
"
    );
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&patch).unwrap();
    assert_eq!(
        doc["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"],
        serde_yaml_ng::Value::from("750Mi")
    );
}

#[test]
fn a_known_runtime_gets_its_variable_with_other_flags_kept() {
    let mut run = run();
    run.env = vec![
        (
            "app".into(),
            vec![
                ("GOMEMLIMIT".into(), "1GiB".into()),
                (
                    "JAVA_TOOL_OPTIONS".into(),
                    "-XX:+UseG1GC -Xmx900m -Dx=\"y\"".into(),
                ),
            ],
        ),
        (
            "sidecar".into(),
            vec![(
                "NODE_OPTIONS".into(),
                "--enable-source-maps --max-old-space-size 900".into(),
            )],
        ),
    ];
    let recs = recommend(&run, &Policy::default());
    let names: Vec<(&str, &str)> = recs[0]
        .env
        .iter()
        .map(|e| (e.name.as_str(), e.value.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("GOMEMLIMIT", "675MiB"),
            (
                "JAVA_TOOL_OPTIONS",
                "-XX:+UseG1GC -Dx=\"y\" -XX:MaxRAMPercentage=75"
            )
        ]
    );
    assert_eq!(
        recs[1].env[0].value,
        "--enable-source-maps --max-old-space-size=37"
    );
    let patch = yaml_patch(&recs[0]);
    assert!(patch.ends_with(
        "          env:
            - name: GOMEMLIMIT   # Go
              value: \"675MiB\"
            - name: JAVA_TOOL_OPTIONS   # Java
              value: \"-XX:+UseG1GC -Dx=\\\"y\\\" -XX:MaxRAMPercentage=75\"
"
    ));
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&patch).unwrap();
    assert_eq!(
        doc["spec"]["template"]["spec"]["containers"][0]["env"][1]["value"],
        serde_yaml_ng::Value::from("-XX:+UseG1GC -Dx=\"y\" -XX:MaxRAMPercentage=75")
    );
}

#[test]
fn the_largest_process_resident_set_is_a_floor_for_the_limit() {
    let mut r = run();
    let stage_of_peak = recommend(&r, &Policy::default())[0].limit_basis.clone();
    // The app's peak is 600 MiB; its largest process held 700 MiB resident (its binary and
    // libraries, charged elsewhere on this machine): the limit is sized from 700 MiB.
    r.containers[0].max_resident = Some((700 * MIB, r.containers[0].samples[10].at));
    let app = recommend(&r, &Policy::default()).remove(0);
    assert_eq!(app.peak, 600 * MIB);
    assert_eq!(app.limit_basis.resident_floor, Some(700 * MIB));
    assert_eq!(app.limit, suggested_limit(700 * MIB, 0.2));
    assert_eq!(app.gomemlimit, gomemlimit_for(app.limit));
    assert!(yaml_patch(&app).contains("resident set of 700 MiB"));
    // Below the peak, the resident set changes nothing.
    r.containers[0].max_resident = Some((500 * MIB, r.containers[0].samples[10].at));
    let app = recommend(&r, &Policy::default()).remove(0);
    assert_eq!(app.limit_basis.resident_floor, None);
    assert_eq!(app.limit, suggested_limit(600 * MIB, 0.2));
    // The basis names the peak's sample count and stage.
    assert_eq!(app.limit_basis.resident, Some(500 * MIB));
    assert_eq!(
        LimitBasis {
            resident: None,
            ..app.limit_basis.clone()
        },
        stage_of_peak
    );
    assert_eq!(app.limit_basis.samples, 361);
    assert!(app.limit_basis.stage.is_some());
}
