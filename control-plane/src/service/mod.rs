//! gRPC handlers: decode, call the node (or read the catalogue), reply. Errors are
//! `CatalogError`s, turned into a `Status` by `?` (the one mapping, in `error.rs`).

mod catalog;
mod cluster;
mod raft;
mod watch;

pub use catalog::CatalogService;
pub use cluster::ClusterService;
pub use raft::RaftService;
