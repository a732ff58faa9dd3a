//! What the rules see of the command being applied.

use crate::catalog::subjects::Overlap;
use crate::error::CatalogError;
use tributary_proto::v1::{Entity, EntityKind};

/// The catalogue as the command being applied would leave it (`apply::Txn`): what the rules
/// read, and the one thing they add (tags a well or target names). A trait, so the rules
/// depend on nothing of the apply step that calls them. Nothing here copies the catalogue:
/// the rules run on the Raft thread, where every write and current read waits for them.
pub trait Draft {
    fn get(&self, kind: EntityKind, name: &str) -> Result<Option<Entity>, CatalogError>;
    fn exists(&self, kind: EntityKind, name: &str) -> Result<bool, CatalogError>;
    /// Calls `f` on every entity of `kind`, without copying them.
    fn visit(
        &self,
        kind: EntityKind,
        f: &mut dyn FnMut(&Entity) -> Result<(), CatalogError>,
    ) -> Result<(), CatalogError>;
    /// The first of `subjects` that overlaps a subject of a stream other than `stream`.
    fn subject_overlap(
        &self,
        stream: &str,
        subjects: &[String],
    ) -> Result<Option<Overlap>, CatalogError>;
    /// Creates the tag if it does not exist.
    fn ensure_tag(&mut self, name: &str) -> Result<(), CatalogError>;
}
