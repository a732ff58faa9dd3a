//! Applying one `Command` to the catalogue: validation against the current state, placement,
//! and the writes and watch events it produces, all in one RocksDB batch.

use super::entity::{is_namespaced, key, kind_label, kind_of, name_of, redacted};
use super::{cf, placement, replica_changes, validate, Catalogue, Overlap, CF_CATALOG};
use crate::error::CatalogError;
use prost::Message;
use rocksdb::WriteBatch;
use std::collections::BTreeMap;
use tributary_proto::v1::command::Op;
use tributary_proto::v1::{
    entity::Kind, Command, DataNode, Entity, EntityKind, EntityRef, EventType, MoveRequest,
    Namespace, Stream, Tag, UpdateIf, WatchEvent, WriteReply,
};

/// The changes of one command, not yet written.
pub struct Txn<'a> {
    cat: &'a Catalogue,
    overlay: BTreeMap<Vec<u8>, Option<Entity>>,
    events: Vec<WatchEvent>,
    next_tag_id: u64,
}

impl<'a> Txn<'a> {
    pub(super) fn new(cat: &'a Catalogue, _index: u64) -> Result<Self, CatalogError> {
        Ok(Self {
            cat,
            overlay: BTreeMap::new(),
            events: Vec::new(),
            next_tag_id: cat.next_tag_id()?,
        })
    }

    pub fn get(&self, kind: EntityKind, name: &str) -> Result<Option<Entity>, CatalogError> {
        match self.overlay.get(&key(kind, name)) {
            Some(v) => Ok(v.clone()),
            None => self.cat.get(kind, name),
        }
    }

    pub fn exists(&self, kind: EntityKind, name: &str) -> Result<bool, CatalogError> {
        Ok(self.get(kind, name)?.is_some())
    }

    /// Calls `f` on every entity of a kind as this transaction sees it, without copying.
    pub fn visit(
        &self,
        kind: EntityKind,
        mut f: impl FnMut(&Entity) -> Result<(), CatalogError>,
    ) -> Result<(), CatalogError> {
        self.cat.visit(kind, |k, e| {
            if self.overlay.contains_key(k) {
                Ok(())
            } else {
                f(e)
            }
        })?;
        let prefix = vec![kind as i32 as u8];
        for (_, v) in self
            .overlay
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
        {
            if let Some(e) = v {
                f(e)?;
            }
        }
        Ok(())
    }

    fn put(&mut self, e: Entity) {
        let (kind, name) = (kind_of(&e), name_of(&e));
        self.events.push(WatchEvent {
            revision: 0,
            r#type: EventType::Put as i32,
            kind: kind as i32,
            name: name.clone(),
            entity: Some(e.clone()),
        });
        self.overlay.insert(key(kind, &name), Some(e));
    }

    fn remove(&mut self, old: Entity) {
        let (kind, name) = (kind_of(&old), name_of(&old));
        self.events.push(WatchEvent {
            revision: 0,
            r#type: EventType::Delete as i32,
            kind: kind as i32,
            name: name.clone(),
            entity: Some(old),
        });
        self.overlay.insert(key(kind, &name), None);
    }

    /// Creates the tag if it does not exist; tag ids are assigned here, in log order.
    pub fn ensure_tag(&mut self, name: &str) -> Result<(), CatalogError> {
        if !self.exists(EntityKind::Tag, name)? {
            let id = u32::try_from(self.next_tag_id)
                .map_err(|_| CatalogError::FailedPrecondition("tag ids exhausted".into()))?;
            self.next_tag_id += 1;
            self.put(Entity {
                kind: Some(Kind::Tag(Tag {
                    name: name.to_string(),
                    id,
                })),
            });
        }
        Ok(())
    }

    fn ensure_namespace(&mut self, entity_name: &str) -> Result<(), CatalogError> {
        if let Some((ns, _)) = entity_name.split_once(':') {
            if !self.exists(EntityKind::Namespace, ns)? {
                self.put(Entity {
                    kind: Some(Kind::Namespace(Namespace {
                        name: ns.to_string(),
                        ..Default::default()
                    })),
                });
            }
        }
        Ok(())
    }

    /// Applies `cmd`, returning the entity the client should see.
    pub fn apply(&mut self, cmd: &Command) -> Result<Option<Entity>, CatalogError> {
        super::blocked::check(cmd, |ns| {
            Ok(
                match self.get(EntityKind::Namespace, ns)?.and_then(|e| e.kind) {
                    Some(Kind::Namespace(n)) => Some(n),
                    _ => None,
                },
            )
        })?;
        match &cmd.op {
            Some(Op::Create(e)) => self.create(e.clone(), &cmd.live_nodes).map(Some),
            Some(Op::Update(e)) => self.update(e.clone(), &cmd.live_nodes).map(Some),
            Some(Op::Delete(r)) => self.delete(r).map(Some),
            Some(Op::Move(m)) => self.move_to(m, &cmd.live_nodes).map(Some),
            Some(Op::RegisterNode(n)) => self.register(n.clone()).map(Some),
            Some(Op::UpdateIf(u)) => self.update_if(u, &cmd.live_nodes).map(Some),
            None => Err(CatalogError::invalid("command", "empty command")),
        }
    }

    fn create(&mut self, mut e: Entity, live: &[u64]) -> Result<Entity, CatalogError> {
        let kind = kind_of(&e);
        validate::entity(self, &mut e, None)?;
        let name = name_of(&e);
        if self.exists(kind, &name)? {
            return Err(CatalogError::AlreadyExists {
                kind: kind_label(kind),
                name,
            });
        }
        if let Some(Kind::Tag(t)) = &e.kind {
            self.ensure_tag(&t.name)?;
            return self
                .get(kind, &name)?
                .ok_or(CatalogError::Storage("tag vanished".into()));
        }
        if is_namespaced(kind) {
            self.ensure_namespace(&name)?;
        }
        // Placement is the control plane's; an owner given at create (an operator's, the
        // service checked) must be a registered data node, as for a move.
        if let Some(Kind::Stream(s)) = &mut e.kind {
            if s.replicas > 1 {
                if s.owner_node != 0 {
                    return Err(CatalogError::invalid(
                        "owner_node",
                        "a replicated stream is placed by the control plane: leave it 0",
                    ));
                }
                s.replica_nodes =
                    placement::place_replicas(self, live, s.replicas, s.placement.as_ref())?;
                s.owner_node = s.replica_nodes[0];
                // The revision this create will commit as: unique, so a stream created again
                // under the same name is a new group.
                s.group_id = self.cat.revision() + 1;
                s.group_founders.clone_from(&s.replica_nodes);
            } else {
                s.replica_nodes.clear();
                s.group_founders.clear();
                s.group_id = 0;
            }
        }
        let owner = match &mut e.kind {
            Some(Kind::Well(w)) => Some(&mut w.owner_node),
            Some(Kind::Stream(s)) if s.replicas <= 1 => Some(&mut s.owner_node),
            _ => None,
        };
        if let Some(owner) = owner {
            if *owner == 0 {
                *owner = placement::place_one(self, live)?;
            } else if !self.exists(EntityKind::DataNode, &owner.to_string())? {
                return Err(CatalogError::invalid(
                    "owner_node",
                    format!("data node {owner} is not registered"),
                ));
            }
        }
        self.put(e.clone());
        Ok(e)
    }

    fn update(&mut self, mut e: Entity, live: &[u64]) -> Result<Entity, CatalogError> {
        let kind = kind_of(&e);
        let raw_name = name_of(&e);
        let name = validate::name(kind, &raw_name)?;
        let old = self.get(kind, &name)?.ok_or(CatalogError::NotFound {
            kind: kind_label(kind),
            name: name.clone(),
        })?;
        validate::entity(self, &mut e, Some(&old))?;
        // An update never moves: only a move (or placement) changes the owner.
        match (&mut e.kind, &old.kind) {
            (Some(Kind::Well(w)), Some(Kind::Well(o))) => w.owner_node = o.owner_node,
            (Some(Kind::Stream(s)), Some(Kind::Stream(o))) => {
                let requested = std::mem::take(&mut s.replica_nodes);
                s.owner_node = o.owner_node;
                s.replica_nodes.clone_from(&o.replica_nodes);
                s.group_id = o.group_id;
                s.group_founders.clone_from(&o.group_founders);
                s.placement.clone_from(&o.placement);
                if s.replicas != o.replicas {
                    let next = self.cat.revision() + 1;
                    replica_changes::change_replicas(self, o, s, &requested, live, next)?;
                }
            }
            (Some(Kind::Tag(_)), _) => {
                return Err(CatalogError::FailedPrecondition(
                    "a tag cannot be updated: its id is fixed".into(),
                ))
            }
            _ => {}
        }
        self.put(e.clone());
        Ok(e)
    }

    /// An update applied only while the stored entity is exactly the one the writer read.
    fn update_if(&mut self, u: &UpdateIf, live: &[u64]) -> Result<Entity, CatalogError> {
        let e = u
            .entity
            .as_deref()
            .cloned()
            .ok_or_else(|| CatalogError::invalid("entity", "missing"))?;
        let kind = kind_of(&e);
        let name = validate::name(kind, &name_of(&e))?;
        if self.get(kind, &name)?.as_ref() != u.expected.as_deref() {
            return Err(CatalogError::FailedPrecondition(format!(
                "{} {name} changed since it was read; read it again",
                kind_label(kind)
            )));
        }
        self.update(e, live)
    }

    fn delete(&mut self, r: &EntityRef) -> Result<Entity, CatalogError> {
        let kind = EntityKind::try_from(r.kind)
            .map_err(|_| CatalogError::invalid("kind", format!("unknown kind {}", r.kind)))?;
        let name = validate::name(kind, &r.name)?;
        let old = self.get(kind, &name)?.ok_or(CatalogError::NotFound {
            kind: kind_label(kind),
            name: name.clone(),
        })?;
        validate::deletable(self, kind, &name)?;
        self.remove(old.clone());
        Ok(old)
    }

    fn move_to(&mut self, m: &MoveRequest, live: &[u64]) -> Result<Entity, CatalogError> {
        let kind = EntityKind::try_from(m.kind).unwrap_or(EntityKind::Unspecified);
        let name = validate::name(kind, &m.name)?;
        let placed_here = m.node_id == 0 && m.from_node != 0;
        if !placed_here && !self.exists(EntityKind::DataNode, &m.node_id.to_string())? {
            return Err(CatalogError::NotFound {
                kind: "data node",
                name: m.node_id.to_string(),
            });
        }
        let mut e = self.get(kind, &name)?.ok_or(CatalogError::NotFound {
            kind: kind_label(kind),
            name: name.clone(),
        })?;
        match &mut e.kind {
            Some(Kind::Stream(s)) if !s.replica_nodes.is_empty() => {
                replica_changes::move_replica(self, s, m.from_node, m.node_id, live)?
            }
            Some(Kind::Well(_) | Kind::Stream(_)) if m.from_node != 0 => {
                return Err(CatalogError::invalid(
                    "from_node",
                    format!("{name} has one copy: give only the data node to move it to"),
                ))
            }
            Some(Kind::Well(w)) => w.owner_node = m.node_id,
            Some(Kind::Stream(s)) => s.owner_node = m.node_id,
            _ => {
                return Err(CatalogError::invalid(
                    "kind",
                    "only wells and streams can be moved",
                ))
            }
        }
        self.put(e.clone());
        Ok(e)
    }

    /// Records a data node and gives it every well and stream that has no owner yet.
    fn register(&mut self, n: DataNode) -> Result<Entity, CatalogError> {
        if n.id == 0 {
            return Err(CatalogError::invalid("node.id", "must be > 0"));
        }
        if n.addr.is_empty() {
            return Err(CatalogError::invalid("node.addr", "is empty"));
        }
        if n.tags.len() > 64
            || n.tags
                .iter()
                .any(|t| t.is_empty() || t.len() > 255 || t.chars().any(char::is_control))
        {
            return Err(CatalogError::invalid(
                "node.tags",
                "at most 64 tags of 1 to 255 bytes with no control characters",
            ));
        }
        let e = Entity {
            kind: Some(Kind::DataNode(n.clone())),
        };
        if self.get(EntityKind::DataNode, &n.id.to_string())?.as_ref() != Some(&e) {
            self.put(e.clone());
        }
        let mut unplaced = Vec::new();
        for kind in [EntityKind::Well, EntityKind::Stream] {
            self.visit(kind, |e| {
                if matches!(owner_of(e), Some(0)) {
                    unplaced.push(e.clone());
                }
                Ok(())
            })?;
        }
        for mut owned in unplaced {
            match &mut owned.kind {
                Some(Kind::Well(w)) => w.owner_node = n.id,
                Some(Kind::Stream(s)) => s.owner_node = n.id,
                _ => continue,
            }
            self.put(owned);
        }
        Ok(e)
    }

    /// Writes the changes into `batch`; returns the new revision and the events to publish.
    pub fn commit(self, batch: &mut WriteBatch) -> Result<(u64, Vec<WatchEvent>), CatalogError> {
        let mut revision = self.cat.revision();
        if self.events.is_empty() {
            return Ok((revision, Vec::new()));
        }
        revision += 1;
        let db = self.cat.db();
        let cat_cf = cf(db, CF_CATALOG)?;
        for (k, v) in &self.overlay {
            match v {
                Some(e) => batch.put_cf(cat_cf, k, e.encode_to_vec()),
                None => batch.delete_cf(cat_cf, k),
            }
        }
        let events: Vec<WatchEvent> = self
            .events
            .into_iter()
            .map(|mut e| {
                e.revision = revision;
                e
            })
            .collect();
        self.cat.put_events(batch, revision, &events)?;
        self.cat.put_revision(batch, revision)?;
        if self.next_tag_id != self.cat.next_tag_id()? {
            self.cat.put_next_tag_id(batch, self.next_tag_id)?;
        }
        Ok((revision, events))
    }
}

/// Applies `cmd` at Raft `index` into `batch`: the reply for the proposer and the events to
/// publish once the batch is written. A rejected command changes nothing but the applied index.
pub fn apply_command(
    cat: &Catalogue,
    index: u64,
    cmd: &Command,
    batch: &mut WriteBatch,
) -> (Result<WriteReply, CatalogError>, u64, Vec<WatchEvent>) {
    let outcome = cat.begin(index).and_then(|mut txn| {
        let entity = txn.apply(cmd)?;
        let (revision, events) = txn.commit(batch)?;
        Ok((entity, revision, events))
    });
    cat.mark_applied(batch, index);
    match outcome {
        Ok((entity, revision, events)) => (
            Ok(WriteReply {
                revision,
                entity: entity.map(redacted),
            }),
            revision,
            events,
        ),
        Err(e) => (Err(e), cat.revision(), Vec::new()),
    }
}

/// How many streams a transaction has changed.
fn stream_prefix_len(overlay: &BTreeMap<Vec<u8>, Option<Entity>>) -> usize {
    let prefix = vec![EntityKind::Stream as i32 as u8];
    overlay
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .count()
}

/// The first of `subjects` overlapping a subject of `other`, compared one by one.
fn first_pairwise_overlap(subjects: &[String], other: &Stream) -> Option<Overlap> {
    subjects.iter().find_map(|mine| {
        other
            .subjects
            .iter()
            .find(|t| tributary_common::subject::overlap(mine, t))
            .map(|theirs| Overlap {
                mine: mine.clone(),
                theirs: theirs.clone(),
                stream: other.name.clone(),
            })
    })
}

/// The data node a well or stream is placed on (0: none yet); `None` for other kinds.
fn owner_of(e: &Entity) -> Option<u64> {
    match &e.kind {
        Some(Kind::Well(w)) => Some(w.owner_node),
        Some(Kind::Stream(s)) => Some(s.owner_node),
        _ => None,
    }
}

impl validate::Draft for Txn<'_> {
    fn get(&self, kind: EntityKind, name: &str) -> Result<Option<Entity>, CatalogError> {
        Txn::get(self, kind, name)
    }

    fn exists(&self, kind: EntityKind, name: &str) -> Result<bool, CatalogError> {
        Txn::exists(self, kind, name)
    }

    fn subject_overlap(
        &self,
        stream: &str,
        subjects: &[String],
    ) -> Result<Option<Overlap>, CatalogError> {
        // The index holds the stored streams. A command validates one stream and changes no
        // other's subjects, so this transaction's own changes to streams (owners, when a
        // node registers) never matter here; should one ever, compare with those directly.
        let changed = stream_prefix_len(&self.overlay);
        if changed == 0 {
            return self.cat.subject_overlap(stream, subjects);
        }
        let mut hit = None;
        Txn::visit(self, EntityKind::Stream, |e| {
            if let (None, Some(Kind::Stream(o))) = (&hit, &e.kind) {
                if o.name != stream {
                    hit = first_pairwise_overlap(subjects, o);
                }
            }
            Ok(())
        })?;
        Ok(hit)
    }

    fn visit(
        &self,
        kind: EntityKind,
        f: &mut dyn FnMut(&Entity) -> Result<(), CatalogError>,
    ) -> Result<(), CatalogError> {
        Txn::visit(self, kind, f)
    }

    fn ensure_tag(&mut self, name: &str) -> Result<(), CatalogError> {
        Txn::ensure_tag(self, name)
    }
}
