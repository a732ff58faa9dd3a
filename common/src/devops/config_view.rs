//! A process's effective config as the devops API shows it: the config struct as JSON under
//! `tributary`, with `tributary.info` (service, instance, version, command line, `TRIBUTARY_*`
//! environment), every secret replaced by [`REDACTED`] — by the name of its key, so a secret
//! added later is hidden too as long as its name says what it is.

use super::DevopsError;
use crate::secrets::REDACTED;
use serde_json::{Map, Value};

/// Whether a key (config key, flag or environment variable, any case) names a secret: a
/// secret, password, token, credential or key, but not the file holding one.
pub fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase().replace('-', "_");
    let n = n.trim_start_matches('_');
    if n.ends_with("_file") || n.ends_with("_files") || n.ends_with("_pem") {
        return false;
    }
    ["secret", "password", "token", "credential", "private"]
        .iter()
        .any(|w| n.contains(w))
        || n == "key"
        || n.ends_with("_key")
        || n.ends_with("__key")
        || n.ends_with("_keys")
        || n == "keys"
}

/// Replaces every value under a secret's key (strings, lists of them, whole objects) with
/// [`REDACTED`]; empty values stay empty (nothing is there to hide, and that is worth seeing).
pub fn redact(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if is_secret_name(k) {
                    hide(x);
                } else {
                    redact(x);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(redact),
        _ => {}
    }
}

fn hide(v: &mut Value) {
    match v {
        Value::String(s) if s.is_empty() => {}
        Value::Array(a) => a.iter_mut().for_each(hide),
        Value::Object(m) => m.values_mut().for_each(hide),
        Value::Null => {}
        other => *other = Value::String(REDACTED.into()),
    }
}

/// The command line with the value of every secret flag (`--token X`, `--ingest-secret=X`)
/// redacted.
pub fn redact_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut hide_next = false;
    for a in args {
        if hide_next {
            out.push(REDACTED.to_string());
            hide_next = false;
            continue;
        }
        match a.strip_prefix("--").map(|f| f.split_once('=')) {
            Some(Some((flag, _))) if is_secret_name(flag) => {
                out.push(format!("--{flag}={REDACTED}"))
            }
            Some(None) if is_secret_name(&a[2..]) => {
                hide_next = true;
                out.push(a);
            }
            _ => out.push(a),
        }
    }
    out
}

/// `tributary.info`: who this process is and how it was started.
pub fn info(service: &str, instance: &str) -> Value {
    let env: Map<String, Value> = std::env::vars()
        .filter(|(k, _)| k.starts_with("TRIBUTARY_") || k == "RUST_LOG" || k == "PROMETHEUS_PORT")
        .map(|(k, v)| {
            let v = if is_secret_name(&k) && !v.is_empty() {
                REDACTED.to_string()
            } else {
                v
            };
            (k, Value::String(v))
        })
        .collect();
    serde_json::json!({
        "service": {"name": service, "instance-id": instance},
        "version": env!("CARGO_PKG_VERSION"),
        "args": redact_args(std::env::args()),
        "env": env,
    })
}

/// The tree the paths walk: `{"tributary": {…config…, "info": {…}}}`, redacted.
pub fn tree(config: Value, service: &str, instance: &str) -> Value {
    let mut root = match config {
        Value::Object(m) => m,
        other => Map::from_iter([("config".to_string(), other)]),
    };
    root.insert("info".into(), info(service, instance));
    let mut v = serde_json::json!({ "tributary": Value::Object(root) });
    redact(&mut v);
    v
}

/// A path is dotted segments of letters, digits, `_` and `-` (or empty: everything).
pub fn check_path(path: &str) -> Result<(), DevopsError> {
    let ok = path.is_empty()
        || path.split('.').all(|s| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        });
    match ok && path.len() <= 512 {
        true => Ok(()),
        false => Err(DevopsError::BadRequest(format!(
            "bad path {path:?}: dotted keys such as tributary.info or tributary.raft.tick_ms"
        ))),
    }
}

/// The value at `path`; the error names the path and what the last object found holds.
pub fn at<'a>(tree: &'a Value, path: &str) -> Result<&'a Value, String> {
    let mut v = tree;
    if path.is_empty() {
        return Ok(v);
    }
    for (i, seg) in path.split('.').enumerate() {
        let next = match v {
            Value::Object(m) => m.get(seg).or_else(|| m.get(&seg.replace('-', "_"))),
            Value::Array(a) => seg.parse::<usize>().ok().and_then(|n| a.get(n)),
            _ => None,
        };
        v = match next {
            Some(n) => n,
            None => {
                let here = path.split('.').take(i).collect::<Vec<_>>().join(".");
                let keys = match v {
                    Value::Object(m) => m.keys().cloned().collect::<Vec<_>>().join(", "),
                    _ => "no keys".into(),
                };
                let at = if here.is_empty() {
                    "the top".to_string()
                } else {
                    here
                };
                return Err(format!("no config at path {path:?}: {at} has {keys}"));
            }
        };
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_redacted_by_name_and_files_are_not() {
        for s in [
            "cluster_secret",
            "stream_secrets",
            "devops_password",
            "devops_token",
            "key",
            "old_keys",
            "TRIBUTARY_ENCRYPTION__KEY",
            "TRIBUTARY_TOKEN",
            "ingest-secret",
            "external_credentials",
        ] {
            assert!(is_secret_name(s), "{s}");
        }
        for s in [
            "key_file",
            "devops_token_file",
            "old_key_files",
            "level",
            "max_watch_events",
            "external_ca_pem",
            "tls",
        ] {
            assert!(!is_secret_name(s), "{s}");
        }
        let mut v = json!({"cluster_secret": "hush", "stream_secrets": ["a", "b"], "ingest_secrets": [],
            "encryption": {"key": "k", "key_file": "/k", "old_keys": ["o"]}, "listen": "x:1", "empty_secret": ""});
        redact(&mut v);
        assert_eq!(v["cluster_secret"], REDACTED);
        assert_eq!(v["stream_secrets"], json!([REDACTED, REDACTED]));
        assert_eq!(v["encryption"]["key"], REDACTED);
        assert_eq!(v["encryption"]["key_file"], "/k");
        assert_eq!(v["encryption"]["old_keys"], json!([REDACTED]));
        assert_eq!(v["listen"], "x:1");
        assert_eq!(v["empty_secret"], "");
        let args = redact_args(
            [
                "dn",
                "--ingest-secret",
                "s1",
                "--token=t",
                "--id",
                "2",
                "--key-file",
                "/k",
            ]
            .map(String::from),
        );
        assert_eq!(
            args,
            [
                "dn",
                "--ingest-secret",
                REDACTED,
                &format!("--token={REDACTED}"),
                "--id",
                "2",
                "--key-file",
                "/k"
            ]
        );
    }

    #[test]
    fn paths_walk_the_tree_and_name_what_is_missing() {
        let t = tree(
            json!({"raft": {"tick_ms": 50}, "cluster_secret": "s"}),
            "control-plane",
            "1",
        );
        assert_eq!(at(&t, "tributary.raft.tick_ms"), Ok(&json!(50)));
        assert_eq!(
            at(&t, "tributary.info.service.name"),
            Ok(&json!("control-plane"))
        );
        assert_eq!(at(&t, "tributary.cluster_secret"), Ok(&json!(REDACTED)));
        let e = at(&t, "tributary.raft.nope").unwrap_err();
        assert!(
            e.contains("tributary.raft.nope") && e.contains("tick_ms"),
            "{e}"
        );
        assert!(check_path("tributary.info").is_ok());
        assert!(check_path("").is_ok());
        for bad in ["a..b", ".a", "a b", "a/b"] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
    }
}
