//! Secrets at rest: configured fields of catalogue entities sealed with AES-256-GCM under a
//! key id (`keys.rs`), chosen by JSON pointer (`fields.rs`), configured by the `[encryption]`
//! section every server shares (`config.rs`).
//!
//! The control-plane member that receives a `Catalog.Create`/`Update` seals before it proposes,
//! so the Raft log, snapshots, the watch event log and RocksDB hold only sealed values; data
//! nodes read them sealed (their saved catalogue view too) and open them where a worker needs
//! the plaintext. Every process therefore needs the same keys.
//!
//! Rotation, on every member and data node, one step at a time: (1) add the new key to
//! `old_keys` (it opens, seals nothing yet); (2) make it `key` and move the previous one to
//! `old_keys`; (3) run `Cluster.MigrateEncryption` until it reports nothing left under an old
//! key; (4) remove the old key. Turning encryption off is the same with no `key` in step 2: the
//! migration opens every value back to plaintext.

mod config;
mod fields;
mod keys;

pub use config::{EncryptionConfig, EncryptionConfigError};
pub use fields::{FieldError, FieldPointer, DEFAULT_FIELDS};
pub use keys::{kid_of, CryptoError, Key, KeyRing, SEALED_PREFIX};

use crate::secrets::REDACTED;
use std::collections::BTreeMap;
use tributary_proto::v1::Entity;

/// What a key-use count calls values not sealed at all.
pub const PLAINTEXT: &str = "plaintext";

/// The keys and the fields: what a server holds to seal and open entities.
#[derive(Debug, Clone)]
pub struct Encryption {
    keys: KeyRing,
    fields: Vec<FieldPointer>,
}

impl Default for Encryption {
    /// No keys (secrets stay plaintext), the default fields.
    fn default() -> Self {
        Encryption {
            keys: KeyRing::default(),
            fields: DEFAULT_FIELDS
                .iter()
                .filter_map(|p| FieldPointer::parse(p).ok())
                .collect(),
        }
    }
}

impl Encryption {
    pub fn new(keys: KeyRing, fields: Vec<FieldPointer>) -> Self {
        Encryption { keys, fields }
    }

    pub fn from_config(c: &EncryptionConfig) -> Result<Self, EncryptionConfigError> {
        let (keys, fields) = c.parse()?;
        Ok(Encryption { keys, fields })
    }

    /// [`Self::from_config`] for a server starting: says in the log which keys are in use,
    /// and warns when there is no current key (secrets are then stored in plaintext).
    pub fn at_start(c: &EncryptionConfig) -> Result<Self, EncryptionConfigError> {
        let e = Self::from_config(c)?;
        let fields: Vec<&str> = e.fields.iter().map(FieldPointer::as_str).collect();
        match e.keys.current_kid() {
            Some(kid) => tracing::info!(
                key_id = kid,
                old_key_ids = ?e.keys.old_kids(),
                ?fields,
                "secrets at rest are sealed (AES-256-GCM)"
            ),
            None => tracing::warn!(
                old_key_ids = ?e.keys.old_kids(),
                "no encryption key configured (encryption.key, encryption.key_file or \
                 TRIBUTARY_ENCRYPTION__KEY): secrets are stored and sent in plaintext"
            ),
        }
        Ok(e)
    }

    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    pub fn fields(&self) -> &[FieldPointer] {
        &self.fields
    }

    /// Seals what a client wrote into the configured fields: every non-empty value but the
    /// redacted marker, which an update sends back to keep the stored (sealed) value. A value
    /// that looks sealed is sealed again: clients never see sealed values, so it is theirs.
    pub fn seal_entity(&self, e: &mut Entity) -> Result<usize, FieldError> {
        if self.keys.current_kid().is_none() {
            return Ok(0);
        }
        fields::rewrite(&self.fields, e, &mut |_, v| {
            if v.is_empty() || v == REDACTED {
                return Ok(None);
            }
            self.keys.seal(v).map(Some)
        })
    }

    /// Opens every sealed value of the configured fields (plaintext ones stay as they are).
    pub fn open_entity(&self, e: &mut Entity) -> Result<usize, FieldError> {
        fields::rewrite(&self.fields, e, &mut |_, v| {
            if !v.starts_with(SEALED_PREFIX) {
                return Ok(None);
            }
            self.keys.open(v).map(Some)
        })
    }

    /// How many values of the configured fields a migration would change.
    pub fn unsettled(&self, e: &Entity) -> usize {
        let mut copy = e.clone();
        fields::rewrite(&self.fields, &mut copy, &mut |_, v| {
            Ok((!v.is_empty() && !self.keys.is_settled(v)).then(String::new))
        })
        .unwrap_or(0)
    }

    /// Re-seals every unsettled value under the current key (or opens it, with no current key);
    /// returns how many changed. Fails, changing nothing, if one does not open.
    pub fn reseal_entity(&self, e: &mut Entity) -> Result<usize, FieldError> {
        let mut copy = e.clone();
        let n = fields::rewrite(&self.fields, &mut copy, &mut |_, v| {
            if v.is_empty() || self.keys.is_settled(v) {
                return Ok(None);
            }
            self.keys.reseal(v).map(Some)
        })?;
        *e = copy;
        Ok(n)
    }

    /// Adds the non-empty values of `e`'s configured fields to `uses`, by the key id they are
    /// sealed under ([`PLAINTEXT`] for none).
    pub fn count_key_uses(&self, e: &Entity, uses: &mut BTreeMap<String, u64>) {
        let mut copy = e.clone();
        let _ = fields::rewrite(&self.fields, &mut copy, &mut |_, v| {
            if !v.is_empty() {
                let kid = keys::kid_of(v).unwrap_or(PLAINTEXT);
                *uses.entry(kid.to_string()).or_default() += 1;
            }
            Ok(None)
        });
    }
}

#[cfg(test)]
mod tests;
