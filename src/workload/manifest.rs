//! Reads a container's memory limit, request and literal environment from a Kubernetes
//! manifest on disk, offline, for a local run (`workload.local.manifest` + `container`). This
//! module owns finding the workload in a possibly multi-document YAML file (Deployment,
//! StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, Pod, also inside a `kind: List`), picking
//! the container, and errors that name the file and say what to do. It talks to no cluster; it
//! reads one file and parses quantities with [`crate::units`].

use std::fmt;
use std::path::Path;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use serde_json::Value;

use crate::units::{parse_memory_quantity, UnitError};

/// One container as the manifest declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestContainer {
    /// The workload it belongs to, `Kind/name`, e.g. `Deployment/web`.
    pub workload: String,
    /// The container's name.
    pub name: String,
    /// `resources.limits.memory` in bytes.
    pub limit: Option<u64>,
    /// `resources.requests.memory` in bytes.
    pub request: Option<u64>,
    /// Environment variables with a literal `value`, in order; `valueFrom` entries are skipped.
    pub env: Vec<(String, String)>,
}

/// The manifest could not give a container. `Display` names the file and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{file}: cannot read the manifest: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: not valid YAML: {message}")]
    Yaml {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}: {workload}: {message}")]
    Shape {
        file: String,
        workload: String,
        message: String,
    },
    #[error(
        "{file}: no Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob or Pod with containers{}; point `manifest` at the file that declares the workload, or set `limit` instead",
        found_list(.found)
    )]
    NoWorkload {
        file: String,
        /// The `Kind/name` of every document that was looked at.
        found: Vec<String>,
    },
    #[error(
        "{file}: no container named \"{name}\" ({}); set `container` to one of those names",
        workload_list(.available)
    )]
    ContainerNotFound {
        file: String,
        name: String,
        /// Each workload with its container names.
        available: Vec<(String, Vec<String>)>,
    },
    #[error(
        "{file}: {workload} has {} containers ({}); set `container` to the one to measure",
        .names.len(),
        .names.join(", ")
    )]
    AmbiguousContainer {
        file: String,
        workload: String,
        names: Vec<String>,
    },
    #[error("{file}: {workload}: {field}: {source}")]
    BadQuantity {
        file: String,
        workload: String,
        /// Where the value sits, e.g. `containers[app].resources.limits.memory`.
        field: String,
        #[source]
        source: Box<UnitError>,
    },
}

fn found_list(found: &[String]) -> String {
    if found.is_empty() {
        " (the file has no Kubernetes objects)".to_string()
    } else {
        format!(" (found {})", found.join(", "))
    }
}

fn workload_list(available: &[(String, Vec<String>)]) -> String {
    available
        .iter()
        .map(|(workload, names)| format!("{workload} has {}", names.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

// ---------------------------------------------------------------------------------------------
// The slice of the Kubernetes object model read here. Unknown fields are ignored.
// ---------------------------------------------------------------------------------------------

/// A pod spec, a pod template's spec, a controller spec or a CronJob's job template spec: the
/// fields that lead to containers, whichever of them this object has.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Spec {
    #[serde(default)]
    containers: Option<Vec<Container>>,
    #[serde(default)]
    template: Option<Box<Nested>>,
    #[serde(default)]
    job_template: Option<Box<Nested>>,
}

/// A pod template or a job template: something with a `spec`.
#[derive(Debug, Default, Deserialize)]
struct Nested {
    #[serde(default)]
    spec: Option<Spec>,
}

#[derive(Debug, Deserialize)]
struct Container {
    name: String,
    #[serde(default)]
    resources: Option<Resources>,
    #[serde(default)]
    env: Option<Vec<EnvVar>>,
}

#[derive(Debug, Default, Deserialize)]
struct Resources {
    #[serde(default)]
    limits: Option<ResourceList>,
    #[serde(default)]
    requests: Option<ResourceList>,
}

#[derive(Debug, Default, Deserialize)]
struct ResourceList {
    #[serde(default)]
    memory: Option<Scalar>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnvVar {
    name: String,
    #[serde(default)]
    value: Option<Scalar>,
    #[serde(default)]
    value_from: Option<de::IgnoredAny>,
}

/// A YAML scalar as text: `512Mi`, `1073741824` and `129e6` all arrive as the user wrote them
/// (numbers re-spelled by the YAML reader).
#[derive(Debug)]
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// Where a kind keeps its containers.
enum ContainersAt {
    /// `spec.containers`
    Pod,
    /// `spec.template.spec.containers`
    Template,
    /// `spec.jobTemplate.spec.template.spec.containers`
    JobTemplate,
}

fn containers_path(kind: &str) -> Option<ContainersAt> {
    match kind {
        "Pod" => Some(ContainersAt::Pod),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
            Some(ContainersAt::Template)
        }
        "CronJob" => Some(ContainersAt::JobTemplate),
        _ => None,
    }
}

fn pod_template_containers(nested: Option<Box<Nested>>) -> Option<Vec<Container>> {
    nested?.spec?.containers
}

fn spec_containers(spec: Spec, path: &ContainersAt) -> Option<Vec<Container>> {
    match path {
        ContainersAt::Pod => spec.containers,
        ContainersAt::Template => pod_template_containers(spec.template),
        ContainersAt::JobTemplate => pod_template_containers(spec.job_template?.spec?.template),
    }
}

/// A workload with containers, as found in the file.
struct Workload {
    id: String,
    containers: Vec<Container>,
}

fn str_field<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

/// Collects the workloads of one document (several for a `kind: List`), and the `Kind/name`
/// of every object seen.
fn collect(
    file: &str,
    doc: Value,
    found: &mut Vec<String>,
    workloads: &mut Vec<Workload>,
) -> Result<(), ManifestError> {
    if !doc.is_object() {
        return Ok(()); // empty document, or not an object
    }
    let Some(kind) = str_field(&doc, "kind").map(str::to_string) else {
        return Ok(());
    };
    if kind == "List" || kind.ends_with("List") {
        if let Some(Value::Array(items)) = doc.get("items") {
            for item in items.clone() {
                collect(file, item, found, workloads)?;
            }
        }
        return Ok(());
    }
    let name = doc
        .get("metadata")
        .and_then(|m| str_field(m, "name"))
        .unwrap_or("(unnamed)");
    let id = format!("{kind}/{name}");
    found.push(id.clone());
    let Some(path) = containers_path(&kind) else {
        return Ok(());
    };
    let Some(spec) = doc.get("spec").cloned() else {
        return Ok(());
    };
    let spec: Spec = serde_json::from_value(spec).map_err(|e| ManifestError::Shape {
        file: file.to_string(),
        workload: id.clone(),
        message: format!("not a {kind} this tool can read: {e}"),
    })?;
    if let Some(containers) = spec_containers(spec, &path) {
        if !containers.is_empty() {
            workloads.push(Workload { id, containers });
        }
    }
    Ok(())
}

fn yaml_error(file: &str, err: &serde_saphyr::Error) -> ManifestError {
    let (line, column) = err
        .location()
        .filter(|at| at.line() > 0)
        .map_or((1, 1), |at| {
            (at.line() as usize, at.column().max(1) as usize)
        });
    ManifestError::Yaml {
        file: file.to_string(),
        line,
        column,
        message: crate::scenario::yaml_message(err),
    }
}

fn quantity(
    file: &str,
    workload: &str,
    field: String,
    value: Option<&Scalar>,
) -> Result<Option<u64>, ManifestError> {
    value
        .map(|Scalar(text)| {
            parse_memory_quantity(text).map_err(|source| ManifestError::BadQuantity {
                file: file.to_string(),
                workload: workload.to_string(),
                field,
                source: Box::new(source),
            })
        })
        .transpose()
}

fn to_manifest_container(
    file: &str,
    workload: &str,
    container: Container,
) -> Result<ManifestContainer, ManifestError> {
    let resources = container.resources.unwrap_or_default();
    let name = container.name;
    let limit = quantity(
        file,
        workload,
        format!("containers[{name}].resources.limits.memory"),
        resources.limits.as_ref().and_then(|l| l.memory.as_ref()),
    )?;
    let request = quantity(
        file,
        workload,
        format!("containers[{name}].resources.requests.memory"),
        resources.requests.as_ref().and_then(|r| r.memory.as_ref()),
    )?;
    let env = container
        .env
        .unwrap_or_default()
        .into_iter()
        .filter(|var| var.value_from.is_none())
        .map(|var| (var.name, var.value.map(|Scalar(v)| v).unwrap_or_default()))
        .collect();
    Ok(ManifestContainer {
        workload: workload.to_string(),
        name,
        limit,
        request,
        env,
    })
}

/// Reads the Kubernetes manifest at `path` and returns a container of the first workload with
/// containers: the one named `container` (the first workload that has it), or, with no name,
/// the workload's only container. Documents of other kinds and empty documents are skipped.
pub fn read_manifest_container(
    path: &Path,
    container: Option<&str>,
) -> Result<ManifestContainer, ManifestError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
        file: file.clone(),
        source,
    })?;

    let mut found = Vec::new();
    let mut workloads = Vec::new();
    // Every document as JSON-like values (a manifest is JSON's data model); `.nan` stays text.
    let options = serde_saphyr::options! {
        non_finite_float_policy: serde_saphyr::NonFiniteFloatPolicy::AsString,
        with_snippet: false,
    };
    let documents: Vec<Value> = serde_saphyr::from_multiple_with_options(&text, options)
        .map_err(|e| yaml_error(&file, &e))?;
    for doc in documents {
        collect(&file, doc, &mut found, &mut workloads)?;
    }

    if workloads.is_empty() {
        return Err(ManifestError::NoWorkload { file, found });
    }
    match container {
        Some(wanted) => {
            let names: Vec<(String, Vec<String>)> = workloads
                .iter()
                .map(|w| {
                    let names = w.containers.iter().map(|c| c.name.clone()).collect();
                    (w.id.clone(), names)
                })
                .collect();
            // The first workload that has a container of that name.
            let hit = workloads.into_iter().find_map(|w| {
                let id = w.id;
                w.containers
                    .into_iter()
                    .find(|c| c.name == wanted)
                    .map(|c| (id, c))
            });
            match hit {
                Some((id, chosen)) => to_manifest_container(&file, &id, chosen),
                None => Err(ManifestError::ContainerNotFound {
                    file,
                    name: wanted.to_string(),
                    available: names,
                }),
            }
        }
        None => {
            // Not empty: checked above.
            let mut workloads = workloads.into_iter();
            let Some(first) = workloads.next() else {
                return Err(ManifestError::NoWorkload { file, found });
            };
            let mut containers = first.containers;
            if containers.len() > 1 {
                return Err(ManifestError::AmbiguousContainer {
                    file,
                    workload: first.id,
                    names: containers.into_iter().map(|c| c.name).collect(),
                });
            }
            match containers.pop() {
                Some(only) => to_manifest_container(&file, &first.id, only),
                None => Err(ManifestError::NoWorkload { file, found }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const MI: u64 = 1024 * 1024;

    /// A manifest written to a unique temporary file, removed on drop.
    struct TempManifest(PathBuf);

    impl TempManifest {
        fn new(yaml: &str) -> Self {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!(
                "oomgate-manifest-test-{}-{n}.yaml",
                std::process::id()
            ));
            if let Err(e) = std::fs::write(&path, yaml) {
                panic!("cannot write {}: {e}", path.display());
            }
            TempManifest(path)
        }

        fn read(&self, container: Option<&str>) -> Result<ManifestContainer, ManifestError> {
            read_manifest_container(&self.0, container)
        }

        fn error(&self, container: Option<&str>) -> String {
            match self.read(container) {
                Ok(c) => format!("unexpectedly read {c:?}"),
                Err(e) => e.to_string(),
            }
        }

        fn file(&self) -> String {
            self.0.display().to_string()
        }
    }

    impl Drop for TempManifest {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: { app: web }
spec:
  replicas: 2
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      containers:
        - name: app
          image: example/web:1
          ports: [{ containerPort: 8080 }]
          env:
            - { name: RUST_LOG, value: info }
            - name: DB_PASSWORD
              valueFrom: { secretKeyRef: { name: db, key: password } }
            - { name: PORT, value: \"8080\" }
            - { name: EMPTY }
          resources:
            limits: { memory: 512Mi, cpu: 500m }
            requests: { memory: 256Mi, cpu: 100m }
";

    #[test]
    fn reads_the_only_container_of_a_deployment() {
        let m = TempManifest::new(DEPLOYMENT);
        let c = m.read(None);
        let expected = ManifestContainer {
            workload: "Deployment/web".into(),
            name: "app".into(),
            limit: Some(512 * MI),
            request: Some(256 * MI),
            env: vec![
                ("RUST_LOG".into(), "info".into()),
                ("PORT".into(), "8080".into()),
                ("EMPTY".into(), String::new()),
            ],
        };
        assert_eq!(c.ok(), Some(expected.clone()));
        assert_eq!(m.read(Some("app")).ok(), Some(expected));
    }

    #[test]
    fn skips_other_kinds_and_empty_documents() {
        let text = format!(
            "---\n# just a comment\n---\napiVersion: v1\nkind: Service\nmetadata: {{ name: web }}\nspec:\n  ports: [{{ port: 80 }}]\n---\n---\nkind: ConfigMap\nmetadata: {{ name: cfg }}\ndata: {{ a: b }}\n---\n{DEPLOYMENT}---\nkind: Service\nmetadata: {{ name: after }}\n"
        );
        let m = TempManifest::new(&text);
        let c = m.read(None);
        assert_eq!(
            c.as_ref().map(|c| c.workload.as_str()).ok(),
            Some("Deployment/web")
        );
        assert_eq!(c.map(|c| c.limit).ok(), Some(Some(512 * MI)));
    }

    fn pod_spec(containers: &str) -> String {
        format!("containers:\n{containers}")
    }

    fn indent(text: &str, by: usize) -> String {
        text.lines()
            .map(|l| format!("{}{l}\n", " ".repeat(by)))
            .collect()
    }

    const ONE: &str = "- name: main\n  resources: { limits: { memory: 1Gi } }\n";

    #[test]
    fn reads_every_workload_kind() {
        let template = |kind: &str| {
            format!(
                "kind: {kind}\nmetadata: {{ name: x }}\nspec:\n  template:\n    spec:\n{}",
                indent(&pod_spec(ONE), 6)
            )
        };
        for kind in [
            "Deployment",
            "StatefulSet",
            "DaemonSet",
            "ReplicaSet",
            "Job",
        ] {
            let m = TempManifest::new(&template(kind));
            let c = m.read(None);
            assert_eq!(
                c.map(|c| (c.workload, c.name, c.limit)).ok(),
                Some((format!("{kind}/x"), "main".to_string(), Some(1 << 30))),
                "{kind}"
            );
        }
        let pod = format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{ name: p }}\nspec:\n{}",
            indent(&pod_spec(ONE), 2)
        );
        let m = TempManifest::new(&pod);
        assert_eq!(
            m.read(None).map(|c| c.workload).ok().as_deref(),
            Some("Pod/p")
        );

        let cron = format!(
            "kind: CronJob\nmetadata: {{ name: nightly }}\nspec:\n  schedule: '0 3 * * *'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n{}",
            indent(&pod_spec(ONE), 10)
        );
        let m = TempManifest::new(&cron);
        let c = m.read(Some("main"));
        assert_eq!(
            c.map(|c| (c.workload, c.limit)).ok(),
            Some(("CronJob/nightly".to_string(), Some(1 << 30)))
        );

        let list = format!(
            "apiVersion: v1\nkind: List\nitems:\n  - kind: Service\n    metadata: {{ name: s }}\n  - kind: Pod\n    metadata: {{ name: listed }}\n    spec:\n{}",
            indent(&pod_spec(ONE), 6)
        );
        let m = TempManifest::new(&list);
        assert_eq!(
            m.read(None).map(|c| c.workload).ok().as_deref(),
            Some("Pod/listed")
        );
    }

    const TWO_CONTAINERS: &str = "\
kind: StatefulSet
metadata: { name: db }
spec:
  template:
    spec:
      initContainers:
        - { name: init, image: busybox }
      containers:
        - name: postgres
          resources: { limits: { memory: 2Gi } }
        - name: exporter
          resources: { requests: { memory: 64Mi } }
";

    #[test]
    fn picks_a_named_container_among_several() {
        let m = TempManifest::new(TWO_CONTAINERS);
        let c = m.read(Some("exporter"));
        assert_eq!(
            c.map(|c| (c.workload, c.name, c.limit, c.request)).ok(),
            Some((
                "StatefulSet/db".into(),
                "exporter".into(),
                None,
                Some(64 * MI)
            ))
        );
    }

    #[test]
    fn several_containers_without_a_name_is_an_error_listing_them() {
        let m = TempManifest::new(TWO_CONTAINERS);
        assert!(matches!(
            m.read(None),
            Err(ManifestError::AmbiguousContainer { .. })
        ));
        assert_eq!(
            m.error(None),
            format!(
                "{}: StatefulSet/db has 2 containers (postgres, exporter); set `container` to the one to measure",
                m.file()
            )
        );
    }

    #[test]
    fn named_container_is_searched_across_workloads() {
        let text = format!("{DEPLOYMENT}---\n{TWO_CONTAINERS}");
        let m = TempManifest::new(&text);
        let c = m.read(Some("postgres"));
        assert_eq!(
            c.map(|c| (c.workload, c.limit)).ok(),
            Some(("StatefulSet/db".to_string(), Some(2 << 30)))
        );
        // Without a name, the first workload decides.
        assert_eq!(
            m.read(None).map(|c| c.workload).ok().as_deref(),
            Some("Deployment/web")
        );
    }

    #[test]
    fn missing_container_lists_the_names() {
        let text = format!("{DEPLOYMENT}---\n{TWO_CONTAINERS}");
        let m = TempManifest::new(&text);
        assert!(matches!(
            m.read(Some("api")),
            Err(ManifestError::ContainerNotFound { .. })
        ));
        assert_eq!(
            m.error(Some("api")),
            format!(
                "{}: no container named \"api\" (Deployment/web has app; StatefulSet/db has postgres, exporter); set `container` to one of those names",
                m.file()
            )
        );
    }

    #[test]
    fn no_workload_names_what_was_found() {
        let m = TempManifest::new("kind: Service\nmetadata: { name: web }\n---\nkind: ConfigMap\nmetadata: { name: cfg }\n");
        assert!(matches!(
            m.read(None),
            Err(ManifestError::NoWorkload { .. })
        ));
        let e = m.error(None);
        assert!(
            e.starts_with(&format!(
                "{}: no Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob or Pod with containers (found Service/web, ConfigMap/cfg)",
                m.file()
            )),
            "{e}"
        );
        let empty = TempManifest::new("");
        assert!(empty
            .error(None)
            .contains("the file has no Kubernetes objects"));
        let no_containers = TempManifest::new("kind: Deployment\nmetadata: { name: web }\nspec:\n  template:\n    spec:\n      containers: []\n");
        assert!(matches!(
            no_containers.read(None),
            Err(ManifestError::NoWorkload { .. })
        ));
    }

    #[test]
    fn bad_memory_quantity_names_the_field() {
        let m = TempManifest::new(&DEPLOYMENT.replace("memory: 512Mi", "memory: 400m"));
        assert!(matches!(
            m.read(None),
            Err(ManifestError::BadQuantity { .. })
        ));
        assert_eq!(
            m.error(None),
            format!(
                "{}: Deployment/web: containers[app].resources.limits.memory: \"400m\" is 0.4 bytes: the m suffix means thousandths; write 400Mi or 400M",
                m.file()
            )
        );
        let m = TempManifest::new(&DEPLOYMENT.replace("memory: 256Mi", "memory: lots"));
        assert!(m
            .error(None)
            .contains("Deployment/web: containers[app].resources.requests.memory: \"lots\" is not a memory quantity"));
    }

    #[test]
    fn numeric_quantities_are_read() {
        let m = TempManifest::new(
            &DEPLOYMENT
                .replace("memory: 512Mi", "memory: 536870912")
                .replace("memory: 256Mi", "memory: 129e6"),
        );
        let c = m.read(None);
        assert_eq!(
            c.map(|c| (c.limit, c.request)).ok(),
            Some((Some(512 * MI), Some(129_000_000)))
        );
    }

    #[test]
    fn yaml_errors_carry_line_and_column() {
        let m = TempManifest::new("kind: Deployment\nmetadata:\n  name: [web\n");
        let (line, column) = match m.read(None) {
            Err(ManifestError::Yaml { line, column, .. }) => (line, column),
            other => panic!("expected a YAML error, got {other:?}"),
        };
        assert!(line >= 3, "line {line}");
        let msg = m.error(None);
        assert!(
            msg.starts_with(&format!("{}:{line}:{column}: not valid YAML: ", m.file())),
            "{msg}"
        );
        assert!(
            !msg.contains(&format!(" at line {line} column {column}")),
            "location given once: {msg}"
        );
        // A syntax error in a later document is still reported, with its own line.
        let m = TempManifest::new(&format!(
            "{DEPLOYMENT}---
kind: Service
  bad: indent
"
        ));
        assert!(
            matches!(m.read(None), Err(ManifestError::Yaml { line: 27, .. })),
            "{}",
            m.error(None)
        );
    }

    #[test]
    fn wrong_shape_names_the_workload() {
        let m = TempManifest::new(
            "kind: Pod\nmetadata: { name: p }\nspec:\n  containers:\n    - image: nginx\n",
        );
        let msg = m.error(None);
        assert!(msg.contains("Pod/p: not a Pod this tool can read"), "{msg}");
        assert!(msg.contains("name"), "{msg}");
    }

    #[test]
    fn unreadable_file() {
        let path = std::env::temp_dir().join("oomgate-manifest-test-does-not-exist.yaml");
        let err = read_manifest_container(&path, None);
        assert!(matches!(err, Err(ManifestError::Read { .. })));
        let msg = err.map(|_| String::new()).unwrap_or_else(|e| e.to_string());
        assert!(
            msg.starts_with(&format!("{}: cannot read the manifest: ", path.display())),
            "{msg}"
        );
    }
}
