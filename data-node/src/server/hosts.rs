//! The node as the workers see it: the narrow host traits of ditto and mirror, implemented
//! over the real node (and, for the stats entries, the node's own ingest). Secrets come sealed
//! from the control plane and stay sealed in the node's catalogue view; they are opened here,
//! where a worker reads its target or its stream's origins.

use crate::ditto::host::DittoHost;
use crate::group::op::{Op, Outcome};
use crate::ingest::IngestService;
use crate::mirror::host::MirrorHost;
use crate::node::catalog::{canonical, namespace_of};
use crate::node::Node;
use crate::storage::streams::tail::{Tail, TailSpec};
use crate::storage::streams::{StreamResult, StreamStore};
use crate::storage::wells::{RawPage, Well};
use crate::storage::StorageResult;
use futures::future::BoxFuture;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tributary_common::crypto::{Encryption, EncryptionConfig, FieldError};
use tributary_common::sync::lock;
use tributary_proto::v1::{entity::Kind, Entity, IngestBatch, Stream, Target, WellEntry};

pub struct NodeHost {
    pub node: Arc<Node>,
    /// Stats entries go in as this node's own ingest (no secret: it is in-process).
    pub ingest: IngestService,
    pub secrets: SealedSecrets,
}

/// Opens the secrets workers need. One that does not open (a key this node lacks, a value
/// altered) is withheld, so nothing is sent for it, and said once in the log.
pub struct SealedSecrets {
    encryption: Encryption,
    /// The failures already logged (entity and error), so a retrying worker logs each once.
    reported: Mutex<HashSet<String>>,
}

impl SealedSecrets {
    /// From the `[encryption]` section, at start: a bad key is an error naming it.
    pub fn at_start(c: &EncryptionConfig) -> Result<Self, String> {
        Ok(SealedSecrets {
            encryption: Encryption::at_start(c).map_err(|e| e.to_string())?,
            reported: Mutex::new(HashSet::new()),
        })
    }

    /// `e` with its configured fields opened; the error is already logged.
    fn open(&self, what: &str, mut e: Entity) -> Result<Entity, FieldError> {
        match self.encryption.open_entity(&mut e) {
            Ok(_) => Ok(e),
            Err(err) => {
                metrics::counter!("tributary_secret_open_failures_total").increment(1);
                if lock(&self.reported).insert(format!("{what}: {err}")) {
                    tracing::error!(
                        entity = what,
                        error = %err,
                        "a secret from the catalogue does not open: give this data node the key its id names (encryption.key or encryption.old_keys); it is withheld until then"
                    );
                }
                Err(err)
            }
        }
    }

    /// The target with its secret opened; none (as if absent) when it does not open.
    fn target(&self, t: Target) -> Option<Target> {
        let what = format!("target {}", t.name);
        match self.open(
            &what,
            Entity {
                kind: Some(Kind::Target(t)),
            },
        ) {
            Ok(Entity {
                kind: Some(Kind::Target(t)),
            }) => Some(t),
            _ => None,
        }
    }

    /// The stream with its origins' credentials opened; withheld (redacted, so the worker
    /// connects nowhere and says why) when they do not open.
    fn stream(&self, s: Stream) -> Stream {
        let what = format!("stream {}", s.name);
        let mut sealed = s.clone();
        match self.open(
            &what,
            Entity {
                kind: Some(Kind::Stream(s)),
            },
        ) {
            Ok(Entity {
                kind: Some(Kind::Stream(s)),
            }) => s,
            _ => {
                tributary_common::secrets::redact_stream(&mut sealed);
                sealed
            }
        }
    }
}

impl DittoHost for NodeHost {
    fn wanted(&self) -> Vec<(String, String)> {
        let me = self.node.id;
        self.node.with_catalog(|c| {
            // A namespace being erased runs no worker, as the well or as the target.
            c.wells
                .values()
                .filter(|w| w.owner_node == me && !c.shut_down(namespace_of(&w.name)))
                .flat_map(|w| {
                    w.ditto_targets
                        .iter()
                        .map(|t| (w.name.clone(), canonical(t)))
                        .filter(|(_, t)| !c.shut_down(namespace_of(t)))
                })
                .collect()
        })
    }

    fn catalog_changes(&self) -> watch::Receiver<u64> {
        self.node.catalog_changes()
    }

    fn well(&self, name: &str) -> Option<Arc<Well>> {
        self.node.well(name)
    }

    fn target(&self, name: &str) -> Option<Target> {
        let sealed = self.node.with_catalog(|c| c.targets.get(name).cloned())?;
        self.secrets.target(sealed)
    }

    fn tag_names(&self) -> HashMap<u32, String> {
        self.node
            .with_catalog(|c| c.tags.iter().map(|(n, id)| (*id, n.clone())).collect())
    }

    fn next_seq(&self, well: &Well) -> u64 {
        self.node.next_seq(well)
    }

    fn page(&self, well: &Well, start: &[u8], end: &[u8], limit: usize) -> StorageResult<RawPage> {
        self.node.page_raw(well, start, end, limit)
    }

    fn get_meta(&self, key: &[u8]) -> StorageResult<Option<Vec<u8>>> {
        self.node.get_meta(key)
    }

    fn put_meta(&self, key: &[u8], value: Vec<u8>) -> StorageResult<()> {
        self.node.put_meta(key, value)
    }

    fn store_stats(&self, entries: Vec<WellEntry>) -> BoxFuture<'_, crate::Result<()>> {
        let batch = IngestBatch {
            seq: 0,
            entries,
            batch_id: String::new(),
            traceparent: String::new(),
        };
        Box::pin(async move { self.ingest.store(batch).await.map(|_| ()) })
    }
}

impl MirrorHost for NodeHost {
    /// Called every `mirror::RECONCILE`: a stream that copies nothing costs one look, not a
    /// leader lookup, a clone and its secrets unsealed (1,000 idle streams stay cheap).
    fn copying_streams(&self) -> Vec<Stream> {
        let me = self.node.id;
        let leads = |s: &Stream| {
            self.node
                .groups()
                .is_some_and(|g| g.leader(s.group_id) == Some(me))
        };
        let sealed: Vec<Stream> = self.node.with_catalog(|c| {
            c.streams
                .values()
                .filter(|s| s.mirror.is_some() || !s.sources.is_empty())
                .filter(|s| {
                    let mine = if s.replica_nodes.is_empty() {
                        s.owner_node == me
                    } else {
                        leads(s)
                    };
                    mine && !c.shut_down(namespace_of(&s.name))
                })
                .cloned()
                .collect()
        });
        sealed.into_iter().map(|s| self.secrets.stream(s)).collect()
    }

    fn catalog_changes(&self) -> watch::Receiver<u64> {
        self.node.catalog_changes()
    }

    fn dest(&self, name: &str) -> crate::Result<Arc<StreamStore>> {
        self.node.owned_stream("stream", name)
    }

    fn local_tail(&self, stream: &str, mut spec: TailSpec) -> Option<StreamResult<Tail>> {
        let store = self.node.stream(stream)?;
        spec.incarnation = self.node.incarnation_of(&store);
        Some(store.tail(spec))
    }

    fn propose_copy<'a>(&'a self, dest: &'a str, op: Op) -> BoxFuture<'a, crate::Result<Outcome>> {
        Box::pin(async move {
            let (group, _) = self.node.replicated(dest).ok_or_else(|| {
                crate::Error::FailedPrecondition(format!("stream {dest} is not replicated"))
            })?;
            let groups = self.node.groups().ok_or_else(|| {
                crate::Error::Unavailable("the replication of this node is not started".into())
            })?;
            Ok(groups.propose(group, op).await?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tributary_common::secrets::REDACTED;
    use tributary_proto::v1::StreamSource;

    const ONE: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE";
    const TWO: &str = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI";

    fn secrets(key: &str) -> SealedSecrets {
        SealedSecrets::at_start(&EncryptionConfig {
            key: key.into(),
            ..Default::default()
        })
        .expect("config")
    }

    fn sealed(key: &str, e: Entity) -> Entity {
        let mut e = e;
        let enc = Encryption::from_config(&EncryptionConfig {
            key: key.into(),
            ..Default::default()
        })
        .expect("config");
        enc.seal_entity(&mut e).expect("seal");
        e
    }

    fn target() -> Entity {
        Entity {
            kind: Some(Kind::Target(Target {
                name: "default:t".into(),
                ingest_secret: "hush".into(),
                ..Default::default()
            })),
        }
    }

    fn stream() -> Entity {
        Entity {
            kind: Some(Kind::Stream(Stream {
                name: "default:m".into(),
                mirror: Some(StreamSource {
                    stream: "o".into(),
                    external: "b:1".into(),
                    external_credentials: "creds".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })),
        }
    }

    fn unwrap_target(e: Entity) -> Target {
        match e.kind {
            Some(Kind::Target(t)) => t,
            other => panic!("{other:?}"),
        }
    }

    fn unwrap_stream(e: Entity) -> Stream {
        match e.kind {
            Some(Kind::Stream(s)) => s,
            other => panic!("{other:?}"),
        }
    }

    fn creds(s: &Stream) -> &str {
        s.mirror.as_ref().map_or("", |m| &m.external_credentials)
    }

    #[test]
    fn workers_get_secrets_opened_with_the_shared_key() {
        let s = secrets(ONE);
        let t = s.target(unwrap_target(sealed(ONE, target())));
        assert_eq!(t.map(|t| t.ingest_secret).as_deref(), Some("hush"));
        let m = s.stream(unwrap_stream(sealed(ONE, stream())));
        assert_eq!(creds(&m), "creds");
        // A value stored before encryption was turned on reads as it is.
        let plain = s.target(unwrap_target(target()));
        assert_eq!(plain.map(|t| t.ingest_secret).as_deref(), Some("hush"));
    }

    #[test]
    fn a_secret_that_does_not_open_is_withheld() {
        let s = secrets(TWO);
        assert!(s.target(unwrap_target(sealed(ONE, target()))).is_none());
        let m = s.stream(unwrap_stream(sealed(ONE, stream())));
        assert_eq!(creds(&m), REDACTED, "nothing sealed is sent as a secret");
        assert_eq!(m.mirror.map(|o| o.stream).as_deref(), Some("o"));
        // Each failure is logged once, however often a worker asks.
        s.stream(unwrap_stream(sealed(ONE, stream())));
        assert_eq!(lock(&s.reported).len(), 2);
    }
}
