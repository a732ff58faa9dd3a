//! Policies and entity-creation rules, as Eclipse Ditto's.
//!
//! # Model
//! A [`Policy`] has labelled entries; each entry has subjects (`issuer:subject` ids such as
//! `myprovider:alice`, `pre:admin`, `tls:node-1`, `ingest:main`; `*` and `?` wildcards
//! allowed, so `myprovider:*` is every user of that provider) and resources, each with a
//! `grant` and a `revoke` set of `READ`, `WRITE`, `ADMIN`. No permission implies another:
//! `WRITE` without `READ` can write but not read. Policies come from the catalogue's proto
//! ([`Policy::from_proto`]), from Ditto's policy JSON ([`Policy::from_json`]) or from code
//! ([`Policy::new`], [`bootstrap_policy`]); each is validated once, with errors that name the
//! JSON path at fault, and is bounded by [`limits`].
//!
//! # Hierarchy
//! A resource inherits every entry of the resources above it. Levels, counted down from the
//! root:
//!
//! | level | an entity `TYPE:/NS:NAME` | a namespace `namespace:/NS` | a type root `TYPE:/` |
//! |---|---|---|---|
//! | 0 | `cluster:/` | `cluster:/` | `cluster:/` |
//! | 1 | `TYPE:/` and `namespace:/NS` | `namespace:/` | `TYPE:/` |
//! | 2 | `TYPE:/NS:NAME` | `namespace:/NS` | — |
//!
//! `TYPE` is `well`, `stream`, `target` or `policy`; a bare name means namespace `default`
//! (`well:/orders` is `well:/default:orders`). `namespace:/NS` is the parent of every entity
//! of NS, of all types; `well:/` of every well. `namespace:/` is the parent of the namespaces
//! themselves (creating, erasing, listing them), not of what is in them: `cluster:/` is that.
//!
//! # Deciding
//! As Ditto's `PolicyTrie`: a grant or revoke on a resource weighs 0 there and one less per
//! level it is inherited down; a permission is granted when the heaviest grant for any of
//! the caller's subjects outweighs the heaviest revoke for any of them. So, walking up from
//! the resource, the first level where some entry grants or revokes the permission to one of
//! the subjects decides: a revoke there wins (a revoke at the same or a deeper level beats a
//! grant), otherwise the grant (a deeper grant beats a shallower revoke). No entry: denied.
//! [`check`] reports which entry decided ([`Decision::decided_by`]).
//!
//! Where our hierarchy differs from Ditto's tree: an entity has two parents on level 1, its
//! type root and its namespace, and they weigh the same, so a revoke on `namespace:/acme`
//! beats a grant on `well:/` for `acme`'s wells and a revoke on `well:/` beats a grant on
//! `namespace:/acme` (the safe reading of a tie). And resources are global names: in Ditto
//! `policy:/` means the policy that holds the entry; here it means every policy, and a
//! server checks access to policy `acme:p` as `policy:/acme:p` against `acme:p` itself.
//!
//! # Cost
//! Building a policy indexes its entries by resource and exact subject (wildcard subjects
//! go on a short list per resource), so a check is at most three levels of hash lookups,
//! one per caller subject, independent of the number of entries: for a policy of 100
//! entries about 0.5 µs in a release build, 3 to 6 µs unoptimised (the test
//! `policy_check_speed` prints the figures).
//!
//! # Entity creation
//! [`EntityCreationConfig`] holds Ditto's `grant` / `revoke` rules on who may create what
//! where; see [`creation`].

mod bootstrap;
mod check;
pub mod creation;
mod entry;
mod error;
mod index;
pub mod indexed_list;
mod json;
pub mod limits;
mod model;
mod permission;
mod resource;
pub mod subject_id;

pub use bootstrap::{bootstrap_policy, BOOTSTRAP_LABEL, BOOTSTRAP_POLICY};
pub use check::{check, check_resource, permissions_of, Allowed, DecidedBy, Decision};
pub use creation::{CreationDecision, CreationRule, EntityCreationConfig, EntityType};
pub use entry::{PolicyEntry, ResourceRule, Subject};
pub use error::PolicyError;
pub use model::Policy;
pub use permission::{Effect, Permission, PermissionSet};
pub use resource::{Resource, ResourceError, ResourceType};
