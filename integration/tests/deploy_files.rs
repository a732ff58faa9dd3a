//! The files of `deploy/`, checked without a cluster at hand (the compose cluster itself runs
//! in `containers.rs`):
//!
//! * Kubernetes manifests against Kubernetes' API schema as the `k8s-openapi` crate types it
//!   (v1.33): every document must deserialize into its kind's type, and serialize back to the
//!   same document, so a misspelled or misplaced field (which the type drops) fails as surely
//!   as a missing required one or a wrong type. Then what the schema cannot say: Services,
//!   Secrets, ConfigMaps and selectors refer to what exists, probes, anti-affinity, claims.
//! * The compose file and Prometheus's scrape list name every server.
//! * The systemd units carry the hardening, and `systemd-analyze verify` accepts them where
//!   it is installed.

use anyhow::{anyhow, bail, ensure, Context, Result};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// Every YAML document of a file, as JSON.
fn documents(path: &Path) -> Result<Vec<Value>> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let v: Value = serde::Deserialize::deserialize(doc)
            .with_context(|| format!("{}: not YAML", path.display()))?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

/// Deserializes `doc` as `T` and checks that nothing was dropped or changed on the way.
fn typed<T: DeserializeOwned + Serialize>(doc: &Value, what: &str) -> Result<T> {
    let t: T = serde_json::from_value(doc.clone()).with_context(|| format!("{what}: schema"))?;
    let back = serde_json::to_value(&t)?;
    if let Some(diff) = first_difference(doc, &back, String::new()) {
        bail!("{what}: {diff} (a field the schema does not know, or a wrong type)");
    }
    Ok(t)
}

fn first_difference(want: &Value, got: &Value, at: String) -> Option<String> {
    match (want, got) {
        (Value::Object(a), Value::Object(b)) => a.iter().find_map(|(k, v)| match b.get(k) {
            Some(w) => first_difference(v, w, format!("{at}.{k}")),
            None => Some(format!("{at}.{k} is not in the schema")),
        }),
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (v, w))| first_difference(v, w, format!("{at}[{i}]"))),
        (a, b) if a == b => None,
        // YAML numbers given as strings for string fields stay strings; anything else differs.
        (a, b) => Some(format!("{at}: {a} read as {b}")),
    }
}

#[derive(Default)]
struct Manifests {
    services: BTreeMap<String, Service>,
    sets: BTreeMap<String, StatefulSet>,
    budgets: Vec<PodDisruptionBudget>,
    secrets: BTreeMap<String, Secret>,
    config_maps: BTreeMap<String, ConfigMap>,
}

fn manifests() -> Result<Manifests> {
    let dir = deploy().join("kubernetes");
    let mut m = Manifests::default();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.sort();
    for path in files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
    {
        for doc in documents(path)? {
            let kind = doc["kind"].as_str().unwrap_or_default().to_string();
            let name = doc["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let what = format!("{} {kind} {name}", path.display());
            match kind.as_str() {
                "Service" => {
                    m.services.insert(name, typed(&doc, &what)?);
                }
                "StatefulSet" => {
                    m.sets.insert(name, typed(&doc, &what)?);
                }
                "PodDisruptionBudget" => m.budgets.push(typed(&doc, &what)?),
                "Secret" => {
                    m.secrets.insert(name, typed(&doc, &what)?);
                }
                "ConfigMap" => {
                    m.config_maps.insert(name, typed(&doc, &what)?);
                }
                "Namespace" => {
                    typed::<Namespace>(&doc, &what)?;
                }
                "Kustomization" => {
                    for r in doc["resources"].as_array().context("resources")? {
                        let r = r.as_str().context("a resource path")?;
                        ensure!(dir.join(r).exists(), "{what}: {r} does not exist");
                    }
                }
                other => bail!("{what}: kind {other:?} is not checked here"),
            }
        }
    }
    Ok(m)
}

fn matches(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

#[test]
fn kubernetes_manifests_follow_the_schema_and_refer_to_what_exists() -> Result<()> {
    let m = manifests()?;
    for want in ["member", "data-node"] {
        ensure!(m.sets.contains_key(want), "no StatefulSet {want}");
    }
    for (name, set) in &m.sets {
        let spec = set.spec.as_ref().context("spec")?;
        let headless = m
            .services
            .get(spec.service_name.as_deref().unwrap_or_default())
            .and_then(|s| s.spec.as_ref())
            .with_context(|| format!("{name}: its serviceName is no Service here"))?;
        ensure!(
            headless.cluster_ip.as_deref() == Some("None"),
            "{name}: its Service is not headless"
        );
        let selector = spec.selector.match_labels.clone().unwrap_or_default();
        let template = &spec.template;
        let labels = template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        ensure!(
            matches(&selector, &labels),
            "{name}: selector misses the pods"
        );
        ensure!(
            headless
                .selector
                .as_ref()
                .is_some_and(|s| matches(s, &labels)),
            "{name}: the headless Service selects no pod of it"
        );
        let pod = template.spec.as_ref().context("pod spec")?;
        let anti = pod
            .affinity
            .as_ref()
            .and_then(|a| a.pod_anti_affinity.as_ref())
            .with_context(|| format!("{name}: no pod anti-affinity"))?;
        ensure!(
            anti.required_during_scheduling_ignored_during_execution
                .as_ref()
                .is_some_and(|r| !r.is_empty())
                || anti
                    .preferred_during_scheduling_ignored_during_execution
                    .is_some(),
            "{name}: empty anti-affinity"
        );
        for c in &pod.containers {
            let path = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
                p.as_ref()
                    .and_then(|p| p.http_get.as_ref())
                    .and_then(|h| h.path.clone())
            };
            ensure!(
                path(&c.readiness_probe).as_deref() == Some("/ready"),
                "{name}: readiness"
            );
            ensure!(
                path(&c.liveness_probe).as_deref() == Some("/health"),
                "{name}: liveness"
            );
            for from in c.env_from.iter().flatten() {
                let cm = from.config_map_ref.as_ref().map(|r| r.name.clone());
                ensure!(
                    cm.is_none_or(|n| m.config_maps.contains_key(&n)),
                    "{name}: envFrom names a ConfigMap that is not here"
                );
            }
            let sc = c.security_context.as_ref().context("securityContext")?;
            ensure!(
                sc.allow_privilege_escalation == Some(false),
                "{name}: privilege escalation"
            );
        }
        for v in pod.volumes.iter().flatten() {
            if let Some(s) = &v.secret {
                let secret = s.secret_name.clone().unwrap_or_default();
                ensure!(
                    m.secrets.contains_key(&secret),
                    "{name}: Secret {secret} is not described"
                );
            }
        }
        ensure!(
            spec.volume_claim_templates
                .as_ref()
                .is_some_and(|v| !v.is_empty()),
            "{name}: no PersistentVolumeClaim template"
        );
        ensure!(
            m.budgets.iter().any(|b| b
                .spec
                .as_ref()
                .and_then(|s| s.selector.as_ref())
                .and_then(|s| s.match_labels.as_ref())
                .is_some_and(|s| matches(s, &labels))),
            "{name}: no PodDisruptionBudget covers it"
        );
    }
    Ok(())
}

#[test]
fn the_schema_check_catches_a_misplaced_field() {
    let doc = serde_json::json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"},
        "spec": {"clusterIp": "None"}
    });
    let err = typed::<Service>(&doc, "svc").err().map(|e| e.to_string());
    assert!(
        err.is_some_and(|e| e.contains("clusterIp")),
        "a typo passed"
    );
}

#[test]
fn compose_runs_every_server_with_its_volume_and_prometheus_scrapes_them_all() -> Result<()> {
    let dir = deploy().join("compose");
    let doc = documents(&dir.join("docker-compose.yml"))?
        .pop()
        .context("empty compose file")?;
    let services = doc["services"].as_object().context("services")?;
    let servers: Vec<String> = (1..=3)
        .map(|i| format!("member-{i}"))
        .chain((1..=3).map(|i| format!("data-node-{i}")))
        .collect();
    let scrape = std::fs::read_to_string(deploy().join("prometheus/prometheus.yml"))?;
    for s in &servers {
        let svc = services.get(s).with_context(|| format!("no service {s}"))?;
        let vols = svc["volumes"].as_array().context("volumes")?;
        ensure!(
            vols.iter()
                .any(|v| v.as_str() == Some(&format!("{s}:/var/lib/tributary"))),
            "{s}: no volume of its own"
        );
        ensure!(
            svc["environment"]["TRIBUTARY_TLS__CERT_FILE"]
                .as_str()
                .is_some_and(|f| f.ends_with(&format!("/{s}.pem"))),
            "{s}: not its own certificate"
        );
        ensure!(
            scrape.contains(&format!("\"{s}:9095\"")),
            "Prometheus misses {s}"
        );
    }
    ensure!(services.contains_key("certs") && services.contains_key("prometheus"));
    ensure!(
        services["grafana"]["profiles"] == serde_json::json!(["grafana"]),
        "grafana is not behind its profile"
    );
    Ok(())
}

#[test]
fn systemd_units_are_hardened() -> Result<()> {
    let dir = deploy().join("systemd");
    for unit in [
        "tributary-control-plane.service",
        "tributary-data-node.service",
    ] {
        let text = std::fs::read_to_string(dir.join(unit))?;
        let value = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .map(str::to_string)
                .ok_or_else(|| anyhow!("{unit}: no {key}"))
        };
        ensure!(
            value("NoNewPrivileges")? == "yes",
            "{unit}: NoNewPrivileges"
        );
        ensure!(value("ProtectSystem")? == "strict", "{unit}: ProtectSystem");
        let state = value("StateDirectory")?;
        ensure!(
            value("ReadWritePaths")? == format!("/var/lib/{state}"),
            "{unit}: ReadWritePaths is not its data directory"
        );
        ensure!(
            value("LimitNOFILE")?.parse::<u64>()? >= 65536,
            "{unit}: LimitNOFILE"
        );
        ensure!(value("User")? == "tributary", "{unit}: runs as root");
        verify_with_systemd(unit, &text)?;
    }
    Ok(())
}

/// `systemd-analyze verify`, where installed, on a copy whose ExecStart names a binary that
/// exists here (the real one is installed only on the target host).
fn verify_with_systemd(unit: &str, text: &str) -> Result<()> {
    let Ok(out) = std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
    else {
        println!("systemd-analyze is not installed: {unit} checked by its keys only");
        return Ok(());
    };
    ensure!(out.status.success(), "systemd-analyze --version failed");
    let dir = tempfile::tempdir()?;
    let copy: String = text
        .lines()
        .map(|l| match l.strip_prefix("ExecStart=") {
            Some(_) => "ExecStart=/bin/true".to_string(),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let path = dir.path().join(unit);
    std::fs::write(&path, copy)?;
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.success() && stderr.trim().is_empty(),
        "{unit}: {stderr}"
    );
    Ok(())
}

#[test]
fn the_dockerfile_has_its_stages_a_user_a_volume_and_a_healthcheck() -> Result<()> {
    let text = std::fs::read_to_string(deploy().join("Dockerfile"))?;
    let stages: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("FROM "))
        .filter_map(|l| l.split(" AS ").nth(1))
        .collect();
    ensure!(
        stages == ["runtime-base", "prebuilt", "build", "runtime"],
        "{stages:?}"
    );
    for want in [
        "ARG BASE_IMAGE=",
        "USER tributary",
        "VOLUME [\"/var/lib/tributary\"]",
        "HEALTHCHECK ",
    ] {
        ensure!(text.contains(want), "Dockerfile: no {want}");
    }
    Ok(())
}
