//! The `[encryption]` section, the same in every server: the keys (inline or in files), the
//! fields, and the migration's pace. Every key is also an environment variable:
//! `TRIBUTARY_ENCRYPTION__KEY`, `TRIBUTARY_ENCRYPTION__KEY_FILE`,
//! `TRIBUTARY_ENCRYPTION__OLD_KEYS='[k1,k2]'`, `TRIBUTARY_ENCRYPTION__FIELDS='[/target/ingest_secret]'`,
//! `TRIBUTARY_ENCRYPTION__MIGRATION_ENTITIES_PER_SECOND`.

use super::fields::{FieldPointer, DEFAULT_FIELDS};
use super::keys::{Key, KeyRing};
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct EncryptionConfig {
    /// The current key: seals new values and opens them. 32 bytes in URL-safe base64, padded
    /// or not (`openssl rand 32 | basenc --base64url`). Empty (and no `key_file`): secrets are
    /// stored in plaintext.
    pub key: String,
    /// A file holding the current key instead (so it shows in no `ps` listing or environment).
    pub key_file: String,
    /// Keys that only open: the ones values may still be sealed under during a rotation.
    pub old_keys: Vec<String>,
    pub old_key_files: Vec<String>,
    /// JSON pointers of the fields to seal (see `fields.rs`).
    pub fields: Vec<String>,
    /// The control plane's migration (`Cluster.MigrateEncryption`): entities re-sealed per
    /// second, each one a catalogue update; 0 = as fast as they apply.
    pub migration_entities_per_second: u32,
}

impl Default for EncryptionConfig {
    fn default() -> Self {
        EncryptionConfig {
            key: String::new(),
            key_file: String::new(),
            old_keys: Vec::new(),
            old_key_files: Vec::new(),
            fields: DEFAULT_FIELDS.iter().map(|f| f.to_string()).collect(),
            migration_entities_per_second: 10,
        }
    }
}

/// Keys never show in a log line or a panic message.
impl std::fmt::Debug for EncryptionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |s: &str| if s.is_empty() { "" } else { "<redacted>" };
        f.debug_struct("EncryptionConfig")
            .field("key", &hidden(&self.key))
            .field("key_file", &self.key_file)
            .field("old_keys", &format!("{} given", self.old_keys.len()))
            .field("old_key_files", &self.old_key_files)
            .field("fields", &self.fields)
            .field(
                "migration_entities_per_second",
                &self.migration_entities_per_second,
            )
            .finish()
    }
}

/// A bad `[encryption]` setting: the key named as the config file spells it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key `{key}`: {reason}")]
pub struct EncryptionConfigError {
    pub key: String,
    pub reason: String,
}

fn bad(key: impl Into<String>, reason: impl Into<String>) -> EncryptionConfigError {
    EncryptionConfigError {
        key: key.into(),
        reason: reason.into(),
    }
}

/// A key read from a file (trimmed); the error names the setting and the file.
fn read_key_file(setting: &str, path: &str) -> Result<Key, EncryptionConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| bad(setting, format!("cannot read {path}: {e}")))?;
    Key::parse(&text).map_err(|r| bad(setting, format!("the key in {path} {r}")))
}

impl EncryptionConfig {
    /// The key ring and the field pointers this section describes.
    pub fn parse(&self) -> Result<(KeyRing, Vec<FieldPointer>), EncryptionConfigError> {
        let current = match (self.key.trim().is_empty(), self.key_file.is_empty()) {
            (false, false) => {
                return Err(bad(
                    "encryption.key",
                    "give the key or encryption.key_file, not both",
                ))
            }
            (false, true) => Some(Key::parse(&self.key).map_err(|r| bad("encryption.key", r))?),
            (true, false) => Some(read_key_file("encryption.key_file", &self.key_file)?),
            (true, true) => None,
        };
        let mut old = Vec::new();
        let mut names = Vec::new();
        for (i, k) in self.old_keys.iter().enumerate() {
            let name = format!("encryption.old_keys[{i}]");
            old.push(Key::parse(k).map_err(|r| bad(&name, r))?);
            names.push(name);
        }
        for (i, path) in self.old_key_files.iter().enumerate() {
            let name = format!("encryption.old_key_files[{i}]");
            old.push(read_key_file(&name, path)?);
            names.push(name);
        }
        let ring = KeyRing::new(current, old).map_err(|i| {
            bad(
                names[i].clone(),
                "is given twice (as the current key or another old key)",
            )
        })?;
        let fields = self
            .fields
            .iter()
            .enumerate()
            .map(|(i, p)| {
                FieldPointer::parse(p).map_err(|r| bad(format!("encryption.fields[{i}]"), r))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((ring, fields))
    }
}

#[cfg(test)]
// figment's `Jail` fixes the closure's error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    fn key_text(fill: u8) -> String {
        URL_SAFE_NO_PAD.encode([fill; 32])
    }

    #[test]
    fn keys_come_inline_or_from_files_and_errors_name_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key");
        std::fs::write(&file, format!("{}\n", key_text(2))).unwrap();
        let file = file.display().to_string();
        let c = EncryptionConfig {
            key_file: file.clone(),
            old_keys: vec![key_text(1)],
            ..Default::default()
        };
        let (ring, fields) = c.parse().unwrap();
        assert!(ring.current_kid().is_some());
        assert_eq!(ring.old_kids().len(), 1);
        assert_eq!(fields.len(), 3);

        let cases = [
            (
                EncryptionConfig {
                    key: "short".into(),
                    ..Default::default()
                },
                "encryption.key",
            ),
            (
                EncryptionConfig {
                    key: key_text(1),
                    key_file: file.clone(),
                    ..Default::default()
                },
                "encryption.key",
            ),
            (
                EncryptionConfig {
                    key_file: "/nonexistent/key".into(),
                    ..Default::default()
                },
                "encryption.key_file",
            ),
            (
                EncryptionConfig {
                    key: key_text(1),
                    old_keys: vec![key_text(3), "nope".into()],
                    ..Default::default()
                },
                "encryption.old_keys[1]",
            ),
            (
                EncryptionConfig {
                    key: key_text(1),
                    old_key_files: vec![file.clone(), file.clone()],
                    ..Default::default()
                },
                "encryption.old_key_files[1]",
            ),
            (
                EncryptionConfig {
                    key: key_text(1),
                    old_keys: vec![key_text(1)],
                    ..Default::default()
                },
                "encryption.old_keys[0]",
            ),
            (
                EncryptionConfig {
                    fields: vec!["/target/ingest_secret".into(), "/nope/x".into()],
                    ..Default::default()
                },
                "encryption.fields[1]",
            ),
        ];
        for (c, key) in cases {
            let err = c.parse().expect_err(key);
            assert_eq!(err.key, key, "{err}");
            assert!(
                err.to_string().starts_with(&format!("key `{key}`")),
                "{err}"
            );
        }
    }

    #[test]
    fn the_section_loads_from_the_environment_and_hides_keys_in_debug() {
        #[derive(Debug, Default, Serialize, Deserialize)]
        #[serde(default)]
        struct Server {
            encryption: EncryptionConfig,
        }
        #[derive(Serialize)]
        struct NoFlags {}
        figment::Jail::expect_with(|jail| {
            jail.set_env("TRIBUTARY_ENCRYPTION__KEY", key_text(5));
            jail.set_env(
                "TRIBUTARY_ENCRYPTION__OLD_KEYS",
                format!("[{},{}]", key_text(6), key_text(7)),
            );
            jail.set_env("TRIBUTARY_ENCRYPTION__FIELDS", "[/target/ingest_secret]");
            jail.set_env("TRIBUTARY_ENCRYPTION__MIGRATION_ENTITIES_PER_SECOND", "3");
            let s: Server = crate::config::load(None, &NoFlags {}).map_err(|e| e.to_string())?;
            let (ring, fields) = s.encryption.parse().map_err(|e| e.to_string())?;
            assert!(ring.current_kid().is_some());
            assert_eq!(ring.old_kids().len(), 2);
            assert_eq!(fields.len(), 1);
            assert_eq!(s.encryption.migration_entities_per_second, 3);
            let shown = format!("{:?}", s.encryption);
            assert!(
                !shown.contains(&key_text(5)) && !shown.contains(&key_text(6)),
                "{shown}"
            );
            Ok(())
        });
    }
}
