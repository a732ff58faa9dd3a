//! How big a command may be: the configured `[limits]` on entity bytes, string fields and
//! list lengths. Checked before a command is proposed (never while applying, so members with
//! different limits still apply the same log alike); each error names the field and the
//! limit's key.

use super::fields::invalid;
use crate::catalog::entity::{kind_label, kind_of, name_of};
use crate::catalog::limits::Limits;
use crate::error::CatalogError;
use prost::Message;
use tributary_proto::v1::command::Op;
use tributary_proto::v1::{entity::Kind, Command, Entity, Policy, Stream, StreamSource};

/// Whether `cmd` stays within `limits`.
pub fn check_command(cmd: &Command, limits: &Limits) -> Result<(), CatalogError> {
    let l = Check(limits);
    match &cmd.op {
        Some(Op::Create(e) | Op::Update(e)) => l.entity(e),
        Some(Op::Delete(r)) => l.text("name", &r.name),
        Some(Op::Move(m)) => l.text("name", &m.name),
        Some(Op::RegisterNode(n)) => l.text("node.addr", &n.addr),
        // The encryption migration's compare-and-set: the new entity is what gets stored.
        Some(Op::UpdateIf(u)) => u.entity.as_deref().map_or(Ok(()), |e| l.entity(e)),
        None => Ok(()),
    }
}

struct Check<'a>(&'a Limits);

/// A value for messages, cut short: the point is which field, not the whole of a huge value.
fn shown(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{:?}…", &s[..i]),
        None => format!("{s:?}"),
    }
}

impl Check<'_> {
    fn entity(&self, e: &Entity) -> Result<(), CatalogError> {
        let bytes = e.encoded_len();
        let max = self.0.max_entity_bytes;
        if bytes > max {
            return Err(invalid(
                kind_label(kind_of(e)),
                format!(
                    "{} is {bytes} bytes encoded, over the limit of {max} (`limits.max_entity_bytes`)",
                    shown(&name_of(e))
                ),
            ));
        }
        self.text("name", &name_of(e))?;
        match &e.kind {
            Some(Kind::Well(w)) => {
                self.list("tags", w.tags.len())?;
                self.list("ditto_targets", w.ditto_targets.len())?;
                self.texts("tags", &w.tags)?;
                self.texts("ditto_targets", &w.ditto_targets)?;
                self.text("hot_location", &w.hot_location)?;
                self.text("cold_location", &w.cold_location)?;
                self.text("policy", &w.policy)
            }
            Some(Kind::Target(t)) => {
                self.list("encrypted_endpoints", t.encrypted_endpoints.len())?;
                self.list("cleartext_endpoints", t.cleartext_endpoints.len())?;
                self.texts("encrypted_endpoints", &t.encrypted_endpoints)?;
                self.texts("cleartext_endpoints", &t.cleartext_endpoints)?;
                self.text("ingest_secret", &t.ingest_secret)?;
                self.text(
                    "unresolvable_tag_destination",
                    &t.unresolvable_tag_destination,
                )?;
                self.text("policy", &t.policy)
            }
            Some(Kind::Stream(s)) => self.stream(s),
            Some(Kind::Policy(p)) => self.policy(p),
            Some(Kind::Tag(_) | Kind::Namespace(_) | Kind::DataNode(_)) | None => Ok(()),
        }
    }

    fn stream(&self, s: &Stream) -> Result<(), CatalogError> {
        let max = self.0.max_subjects_per_stream;
        if s.subjects.len() > max {
            return Err(invalid(
                "subjects",
                format!(
                    "{} subjects, over the limit of {max} per stream (`limits.max_subjects_per_stream`)",
                    s.subjects.len()
                ),
            ));
        }
        for subject in &s.subjects {
            self.subject("subjects", subject)?;
        }
        self.list("sources", s.sources.len())?;
        let origins = s.mirror.iter().map(|m| ("mirror", m));
        for (field, o) in origins.chain(s.sources.iter().map(|o| ("sources", o))) {
            self.origin(field, o)?;
        }
        self.text("policy", &s.policy)
    }

    fn origin(&self, field: &str, o: &StreamSource) -> Result<(), CatalogError> {
        self.text(&format!("{field}.stream"), &o.stream)?;
        self.subject(&format!("{field}.filter_subject"), &o.filter_subject)?;
        self.text(&format!("{field}.external"), &o.external)?;
        self.text(
            &format!("{field}.external_credentials"),
            &o.external_credentials,
        )
    }

    fn policy(&self, p: &Policy) -> Result<(), CatalogError> {
        self.list("entries", p.entries.len())?;
        for (i, entry) in p.entries.iter().enumerate() {
            let field = |f: &str| format!("entries[{i}].{f}");
            self.text(&field("label"), &entry.label)?;
            self.list(&field("subjects"), entry.subjects.len())?;
            self.texts(&field("subjects"), &entry.subjects)?;
            self.list(&field("resources"), entry.resources.len())?;
            for r in &entry.resources {
                self.text(&field("resources"), &r.resource)?;
            }
        }
        Ok(())
    }

    fn subject(&self, field: &str, s: &str) -> Result<(), CatalogError> {
        let max = self.0.max_subject_bytes;
        if s.len() > max {
            return Err(invalid(
                field,
                format!(
                    "subject {} is {} bytes, over the limit of {max} (`limits.max_subject_bytes`)",
                    shown(s),
                    s.len()
                ),
            ));
        }
        Ok(())
    }

    fn text(&self, field: &str, s: &str) -> Result<(), CatalogError> {
        let max = self.0.max_field_bytes;
        if s.len() > max {
            return Err(invalid(
                field,
                format!(
                    "{} is {} bytes, over the limit of {max} (`limits.max_field_bytes`)",
                    shown(s),
                    s.len()
                ),
            ));
        }
        Ok(())
    }

    fn texts(&self, field: &str, list: &[String]) -> Result<(), CatalogError> {
        list.iter().try_for_each(|s| self.text(field, s))
    }

    fn list(&self, field: &str, len: usize) -> Result<(), CatalogError> {
        let max = self.0.max_list_items;
        if len > max {
            return Err(invalid(
                field,
                format!("{len} items, over the limit of {max} (`limits.max_list_items`)"),
            ));
        }
        Ok(())
    }
}
