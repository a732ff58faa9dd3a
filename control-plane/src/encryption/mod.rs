//! Secrets at rest on the control plane. The member that receives a client's write seals its
//! secrets before proposing (so the Raft log, snapshots, the watch event log and RocksDB hold
//! only sealed values); clients read secrets redacted, data nodes (cluster-token callers) read
//! them sealed and open them with the same keys; the migration (`migration.rs`) re-seals what
//! is stored under an old key. Applying a command never needs a key, so members decide alike
//! whatever keys each holds.

mod migration;

pub use migration::Migration;

use crate::catalog::entity::redacted;
use crate::error::CatalogError;
use tributary_common::crypto::{Encryption, EncryptionConfig, DEFAULT_FIELDS};
use tributary_proto::v1::{entity::Kind, Entity};

/// What a member seals and opens with.
pub struct Secrets {
    encryption: Encryption,
    /// The configured fields clients read opened: all but the default ones, which are exactly
    /// the secrets `redacted` hides. With the default fields, none (and reads cost nothing).
    opened_for_clients: Option<Encryption>,
}

impl Secrets {
    /// From the `[encryption]` section, at start: a bad key is an error naming it; no key is a
    /// warning in the log.
    pub fn at_start(c: &EncryptionConfig) -> Result<Self, String> {
        Encryption::at_start(c)
            .map(Self::new)
            .map_err(|e| e.to_string())
    }

    pub fn new(encryption: Encryption) -> Self {
        let others: Vec<_> = encryption
            .fields()
            .iter()
            .filter(|p| !DEFAULT_FIELDS.contains(&p.as_str()))
            .cloned()
            .collect();
        let opened_for_clients =
            (!others.is_empty()).then(|| Encryption::new(encryption.keys().clone(), others));
        Secrets {
            encryption,
            opened_for_clients,
        }
    }

    pub fn encryption(&self) -> &Encryption {
        &self.encryption
    }

    /// Seals the configured fields of a client's create or update, after the checks only the
    /// plaintext allows. A redacted value stays as it is: applying the update keeps the stored
    /// (sealed) one.
    pub fn seal(&self, e: &mut Entity) -> Result<(), CatalogError> {
        if let Some(Kind::Stream(s)) = &e.kind {
            crate::catalog::credentials_as_written(s)?;
        }
        self.encryption.seal_entity(e).map(|_| ()).map_err(|err| {
            // Only the OS RNG failing or an unencodable entity get here: nothing was proposed.
            CatalogError::Unavailable(format!("cannot seal {}: {}", err.pointer, err.source))
        })
    }

    /// The entity as a client without the cluster token reads it: secrets redacted, other
    /// sealed fields opened.
    pub fn for_clients(&self, e: Entity) -> Entity {
        let mut e = redacted(e);
        if let Some(enc) = &self.opened_for_clients {
            if let Err(err) = enc.open_entity(&mut e) {
                tracing::warn!(error = %err, "a sealed field does not open; clients read it sealed");
            }
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_common::crypto::{kid_of, EncryptionConfig};
    use tributary_common::secrets::REDACTED;
    use tributary_proto::v1::{Stream, StreamSource, Target};

    fn secrets(fields: &[&str]) -> Secrets {
        let c = EncryptionConfig {
            key: "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE".into(),
            fields: fields.iter().map(|f| f.to_string()).collect(),
            ..Default::default()
        };
        Secrets::at_start(&c).expect("config")
    }

    fn target() -> Entity {
        Entity {
            kind: Some(Kind::Target(Target {
                name: "t".into(),
                ingest_secret: "hush".into(),
                ca_pem: "-----BEGIN CERTIFICATE-----".into(),
                ..Default::default()
            })),
        }
    }

    #[test]
    fn clients_read_secrets_redacted_and_other_sealed_fields_opened() {
        let s = secrets(&["/target/ingest_secret", "/target/ca_pem"]);
        let mut e = target();
        s.seal(&mut e).unwrap();
        let Some(Kind::Target(sealed)) = &e.kind else {
            panic!("not a target")
        };
        assert!(kid_of(&sealed.ingest_secret).is_some());
        assert!(kid_of(&sealed.ca_pem).is_some());
        let Some(Kind::Target(shown)) = s.for_clients(e).kind else {
            panic!("not a target")
        };
        assert_eq!(shown.ingest_secret, REDACTED);
        assert_eq!(shown.ca_pem, "-----BEGIN CERTIFICATE-----");
    }

    #[test]
    fn credentials_are_checked_before_they_are_sealed() {
        let s = secrets(&DEFAULT_FIELDS);
        let mut e = Entity {
            kind: Some(Kind::Stream(Stream {
                name: "m".into(),
                mirror: Some(StreamSource {
                    stream: "o".into(),
                    external: "b:1".into(),
                    external_credentials: "line\nbreak".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })),
        };
        let err = s.seal(&mut e).unwrap_err();
        assert!(
            err.to_string().contains("mirror.external_credentials"),
            "{err}"
        );
    }
}
