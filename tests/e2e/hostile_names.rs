//! Untrusted names end to end (issue 7, point 6): the gate must not trust the Kubernetes API, so
//! the simulated cluster serves a pod and a container under names holding `<script>`, quotes, a
//! newline and an ANSI escape (`SimCluster::rename_pod`), and a real k6 script tags its requests
//! with such a `name` (and a custom tag). The real `oomgate run` (k6 driver, metrics API) gates
//! the pod, which grows past its headroom so a finding names it, and every format comes out
//! escaped: report.html (parsed: no element from the names, the names as text), summary.md (no
//! raw HTML, table rows intact), junit.xml (well-formed, the names in attribute values), metrics.txt
//! (OpenMetrics label escapes, parsed by prometheus_client) and the terminal (no ESC byte, also
//! with -v); memory.svg is checked beside the HTML.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::support::cluster::{
    require_cgroups, ClusterConfig, ContainerTemplate, PodTemplate, SimCluster, MI,
};
use crate::support::{run_bounded, text};

const POD: &str = "web-<script>alert(1)</script>\"'\n\u{1b}[31mred";
const CONTAINER: &str = "app<script>alert(2)</script>\"'\n\u{1b}[32mgreen";
const TAG: &str = "get-<script>alert(3)</script>\"'\n\u{1b}[33myellow";

fn k6_available() -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|p| p.join("k6").is_file()));
    if found {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("k6 is not installed (scripts/install-k6) and CI=true: failing instead of skipping");
    }
    eprintln!("note: skipping: k6 is not installed");
    false
}

fn python_available() -> bool {
    let ok = Command::new("python3")
        .args([
            "-c",
            "from prometheus_client.openmetrics.parser import text_string_to_metric_families",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("python3 with prometheus_client is needed (scripts/test installs it) and CI=true");
    }
    eprintln!("note: skipping: python3 with prometheus_client is not installed");
    false
}

/// A k6 script whose requests carry the hostile `name` tag (and custom tag) and a plain one, so
/// the reports show a per-name table.
fn k6_script() -> String {
    let tag = serde_json::to_string(TAG).unwrap();
    format!(
        r#"
import http from 'k6/http';
import {{ sleep }} from 'k6';
const HOSTILE = {tag};
export default function () {{
  http.get(`${{__ENV.TARGET_URL}}/api/work`, {{ tags: {{ name: HOSTILE, flavour: HOSTILE }} }});
  http.get(`${{__ENV.TARGET_URL}}/api/work`, {{ tags: {{ name: 'plain' }} }});
  sleep(0.02);
}}
"#
    )
}

/// A finished run: the rig (kept alive), the report directory and the binary's output.
struct Hostile {
    _cluster: SimCluster,
    _dir: tempfile::TempDir,
    out: PathBuf,
    output: Output,
    /// `oomgate check` on the same scenario (it lists pods, containers and a live sample).
    check: Output,
}

impl Hostile {
    fn file(&self, name: &str) -> String {
        std::fs::read_to_string(self.out.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }
}

/// One pod of deployment `web`, renamed with its container to the hostile names, growing 12 MiB/s
/// up to 116 MiB in a 128Mi limit (past the 20 % headroom, never OOM-killed), gated by
/// `oomgate run` with the k6 driver. None when the machine lacks cgroups, k6 or python3.
fn run() -> Option<Hostile> {
    if !require_cgroups("hostile_names") || !k6_available() || !python_available() {
        return None;
    }
    let cluster = SimCluster::start(ClusterConfig::default());
    let tpl = PodTemplate::app(
        ContainerTemplate::app(128 * MI)
            .request(64 * MI)
            .env("DEMO_BASELINE", "24Mi")
            .env("DEMO_GROW_PER_SEC", "12Mi")
            .env("DEMO_MAX_BYTES", "116Mi"),
    );
    cluster.add_deployment("web", 1, tpl);
    let pod = cluster.pod_names("web")[0].clone();
    cluster.rename_pod(&pod, POD, &[("app", CONTAINER)]);
    assert_eq!(cluster.pod_names("web"), vec![POD.to_string()]);
    assert!(cluster.wait_ready("web", Duration::from_secs(20)));
    // PodMetrics carry the new names from the next scrape on.
    std::thread::sleep(Duration::from_millis(2500));

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("load.js"), k6_script()).unwrap();
    let scenario = dir.path().join("scenario.yaml");
    std::fs::write(
        &scenario,
        format!(
            "name: hostile-names\ntarget: {{ url: \"{url}\" }}\nload:\n  driver: k6\n  stages: [{{ duration: 2s, users: 2 }}, {{ duration: 6s, users: 2 }}]\n  k6: {{ script: load.js }}\nworkload:\n  kubernetes: {{ namespace: {ns}, deployment: web }}\nmemory:\n  source: metrics-api\n  interval: 1s\npolicy:\n  headroom: 20%\n",
            url = cluster.service_url("web"),
            ns = cluster.namespace(),
        ),
    )
    .unwrap();
    let out = dir.path().join("report");
    let output = run_bounded(
        Command::new(support::oomgate())
            .args(["run", scenario.to_str().unwrap(), "--out"])
            .arg(&out)
            .arg("--kubeconfig")
            .arg(cluster.kubeconfig_path())
            .arg("-v"),
        Duration::from_secs(120),
    );
    assert_eq!(
        output.status.code(),
        Some(1),
        "the growing pod fails the headroom rule: {}",
        text(&output)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    // The gate really measured the hostile names (JSON keeps them exactly).
    assert_eq!(
        report["containers"][0]["container"], CONTAINER,
        "{report:#}"
    );
    assert_eq!(report["containers"][0]["peak_pod"], POD, "{report:#}");
    let f = support::findings(&report, "headroom", "fail");
    assert_eq!(f.len(), 1, "{report:#}");
    assert_eq!(f[0]["pod"], POD);
    let names: Vec<&str> = report["load"]["per_request"]
        .as_array()
        .expect("per-request stats")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert!(
        names.contains(&TAG) && names.contains(&"plain"),
        "{names:?}"
    );
    let check = run_bounded(
        Command::new(support::oomgate())
            .args(["check", scenario.to_str().unwrap(), "--kubeconfig"])
            .arg(cluster.kubeconfig_path()),
        Duration::from_secs(60),
    );
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));
    Some(Hostile {
        _cluster: cluster,
        _dir: dir,
        out,
        output,
        check,
    })
}

/// Run a python3 program with the file as argv[1]; its stdout, or a panic with its stderr.
fn python(program: &str, file: &Path) -> String {
    let o = Command::new("python3")
        .args(["-c", program])
        .arg(file)
        .output()
        .expect("python3");
    assert!(
        o.status.success(),
        "python3 rejected {}:\n{}\n--- file:\n{}",
        file.display(),
        String::from_utf8_lossy(&o.stderr),
        std::fs::read_to_string(file).unwrap_or_default()
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// The visible text of a name once a format has neutralised it: the ANSI escape's ESC is gone
/// (dropped or U+FFFD) and the newline may have become a space. The part that must survive.
const POD_CORE: &str = "web-<script>alert(1)</script>";
const CONTAINER_CORE: &str = "app<script>alert(2)</script>";
const TAG_CORE: &str = "get-<script>alert(3)</script>";

#[test]
fn html_shows_hostile_names_as_text() {
    let Some(h) = run() else { return };
    let page = h.file("report.html");
    assert!(!page.contains("<script"), "raw <script> in report.html");
    assert!(!page.contains('\u{1b}'), "raw ESC in report.html");
    // Parsed by Python's HTML parser: no element or attribute came from a name, and the names
    // are there as text (the escaping round-trips).
    let out = python(
        r#"
import sys
from html.parser import HTMLParser
class P(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.text, self.attrs = set(), [], []
    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attrs.extend(k for k, _ in attrs)
    def handle_data(self, d):
        self.text.append(d)
p = P()
p.feed(open(sys.argv[1], encoding='utf-8').read())
p.close()
assert 'script' not in p.tags, p.tags
assert not any(a.startswith('on') for a in p.attrs), p.attrs
print(''.join(p.text))
"#,
        &h.out.join("report.html"),
    );
    for core in [POD_CORE, CONTAINER_CORE, TAG_CORE] {
        assert!(out.contains(core), "{core} shown as text in report.html");
    }
    // The chart beside it (memory.svg, also embedded in the page) is well-formed XML whose
    // text holds the names as data.
    let svg = h.file("memory.svg");
    assert!(!svg.contains("<script"), "raw <script> in memory.svg");
    assert!(!svg.contains('\u{1b}'), "raw ESC in memory.svg");
    python(
        "import sys, xml.etree.ElementTree as ET; ET.parse(sys.argv[1])",
        &h.out.join("memory.svg"),
    );
}

#[test]
fn markdown_escapes_hostile_names_and_keeps_table_rows() {
    let Some(h) = run() else { return };
    let md = h.file("summary.md");
    // Outside code fences (whose text a renderer shows verbatim, e.g. the YAML patch naming
    // the container) there is no raw HTML from a name.
    let mut fence: Option<String> = None;
    for line in md.lines() {
        let t = line.trim_start();
        let ticks: String = t.chars().take_while(|c| *c == '`').collect();
        match &fence {
            Some(f) if ticks.len() >= f.len() && t[ticks.len()..].trim().is_empty() => fence = None,
            Some(_) => {}
            None if ticks.len() >= 3 => fence = Some(ticks),
            None => assert!(
                !line.contains("<script") && !line.contains("</script"),
                "raw <script> in summary.md at {line:?}:\n{md}"
            ),
        }
    }
    assert!(fence.is_none(), "a code fence left open:\n{md}");
    assert!(!md.contains('\u{1b}'), "raw ESC in summary.md:\n{md}");
    for line in md.lines() {
        let t = line.trim_start().trim_start_matches('\u{FFFD}');
        assert!(
            !(t.starts_with("[31mred")
                || t.starts_with("[32mgreen")
                || t.starts_with("[33myellow")),
            "a name's newline broke summary.md at {line:?}:\n{md}"
        );
    }
    // Every table row holding a name has as many cell separators (unescaped `|`) as its header.
    let cells = |line: &str| {
        let b = line.as_bytes();
        (0..b.len())
            .filter(|&i| b[i] == b'|' && (i == 0 || b[i - 1] != b'\\'))
            .count()
    };
    let mut seen = [false; 3];
    let mut header = 0;
    for line in md.lines() {
        if !line.starts_with('|') {
            header = 0;
            continue;
        }
        if header == 0 {
            header = cells(line);
        }
        for (i, id) in ["alert(1)", "alert(2)", "alert(3)"].iter().enumerate() {
            if line.contains(id) {
                seen[i] = true;
                assert!(line.ends_with('|'), "row cut short: {line:?}\n{md}");
                assert_eq!(cells(line), header, "row {line:?} breaks its table:\n{md}");
            }
        }
    }
    assert_eq!(
        seen,
        [true, true, true],
        "pod, container and k6 tag in tables:\n{md}"
    );
    assert!(md.contains("&lt;script&gt;alert(3)&lt;/script&gt;"), "{md}");
}

#[test]
fn junit_is_well_formed_with_hostile_names_in_attributes() {
    let Some(h) = run() else { return };
    let xml = h.file("junit.xml");
    assert!(
        !xml.contains("<script"),
        "raw <script> in junit.xml:\n{xml}"
    );
    assert!(!xml.contains('\u{1b}'), "ESC is not allowed in XML 1.0");
    // Well-formed (Python's expat), and the names come back out of attribute values.
    let out = python(
        r#"
import sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
assert root.tag in ('testsuites', 'testsuite'), root.tag
for e in root.iter():
    for k, v in e.attrib.items():
        print('ATTR', k, repr(v))
    if e.text and e.text.strip():
        print('TEXT', repr(e.text))
"#,
        &h.out.join("junit.xml"),
    );
    let attrs: Vec<&str> = out.lines().filter(|l| l.starts_with("ATTR")).collect();
    // The container names every testcase (classname) and the failure message; the quotes and
    // the newline came back as data (escaped in the file, not cutting the attribute short).
    assert!(
        attrs
            .iter()
            .any(|a| a.contains("classname") && a.contains("alert(2)</script>\"\\'\\n")),
        "{CONTAINER_CORE} in an attribute value:\n{out}"
    );
    assert!(
        attrs
            .iter()
            .any(|a| a.starts_with("ATTR message") && a.contains(CONTAINER_CORE)),
        "{out}"
    );
}

#[test]
fn openmetrics_escapes_hostile_label_values_and_parses() {
    let Some(h) = run() else { return };
    let m = h.file("metrics.txt");
    assert!(!m.contains('\u{1b}'), "raw ESC in metrics.txt");
    for line in m.lines() {
        assert!(
            line.starts_with('#') || line.starts_with("oomgate_"),
            "a label value's newline broke a sample:\n{line:?}\n{m}"
        );
    }
    // Escaped as OpenMetrics requires: `"` as `\"`, newline as `\n`.
    let escaped = "app<script>alert(2)</script>\\\"'\\n";
    assert!(m.contains(escaped), "expected {escaped} in:\n{m}");
    // prometheus_client's OpenMetrics parser accepts the file, and the container label comes
    // back with its quote and newline.
    let out = python(
        r#"
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
n = 0
for fam in text_string_to_metric_families(open(sys.argv[1], encoding='utf-8').read()):
    for s in fam.samples:
        n += 1
        for k, v in s.labels.items():
            print(repr((k, v)))
print('samples', n)
"#,
        &h.out.join("metrics.txt"),
    );
    assert!(
        out.contains("'app<script>alert(2)</script>\"\\'\\n"),
        "the parsed container label keeps its quote and newline:\n{out}"
    );
}

#[test]
fn terminal_output_has_no_escape_byte_from_hostile_names() {
    let Some(h) = run() else { return };
    let o = &h.output;
    assert!(!o.stdout.contains(&0x1b), "ESC in stdout:\n{}", text(o));
    assert!(!o.stderr.contains(&0x1b), "ESC in stderr:\n{}", text(o));
    let c = &h.check;
    assert!(
        !c.stdout.contains(&0x1b),
        "ESC in check's stdout:\n{}",
        text(c)
    );
    assert!(
        !c.stderr.contains(&0x1b),
        "ESC in check's stderr:\n{}",
        text(c)
    );
    let listed = String::from_utf8_lossy(&c.stdout);
    assert!(
        listed.contains(CONTAINER_CORE)
            && !listed
                .lines()
                .any(|l| l.trim_start().starts_with("[31mred")),
        "check lists the hostile container without forging a line:\n{listed}"
    );
    let out = String::from_utf8_lossy(&o.stdout);
    for core in [CONTAINER_CORE, TAG_CORE] {
        assert!(out.contains(core), "{core} shown on the terminal:\n{out}");
    }
    // Neither a name's newline nor its escape forged a line of its own.
    for line in out
        .lines()
        .chain(String::from_utf8_lossy(&o.stderr).lines())
    {
        let t = line.trim_start();
        assert!(
            !(t.starts_with("[31mred")
                || t.starts_with("[32mgreen")
                || t.starts_with("[33myellow")
                || t.starts_with("\"'")),
            "a name's newline reached the terminal: {line:?}\n{}",
            text(o)
        );
    }
}
