//! Tributary data node: holds the bytes. One way, top to bottom:
//!
//! * `server` — the composition root: builds everything below and wires it; nothing imports it.
//! * `ingest`, `wells`, `streams/`, `ditto_stats` — the gRPC services (Ingest, Wells, Streams,
//!   Ditto.Stats), with `gate` (who may call) and `throttling` (whose calls are slowed);
//!   `control_client` — register, heartbeat, watch the catalogue, create tags.
//! * `ditto/`, `mirror/` — the workers, under one `supervisor` loop, each reaching the node
//!   through a narrow host trait (implemented in `server`).
//! * `raft_link`, `peers` — the links to the other data nodes: Raft messages of replicated
//!   streams (`StreamGroups`), and calls forwarded to a replicated stream's leader.
//! * `group/` — the Raft groups of replicated streams: one ready loop for all of them, their
//!   logs in the node's engine, operations applied to the streams' storage.
//! * `node/` — what this node owns: its catalogue view, its open wells and streams, and the
//!   boards the workers report on.
//! * `storage/` — the storage trait, its RocksDB and memory engines, wells and streams; it
//!   knows no gRPC and has its own errors.

pub mod cleanup;
pub mod config;
pub mod control_client;
pub mod ditto;
pub mod ditto_stats;
pub mod error;
pub mod gate;
pub mod group;
pub mod ingest;
pub mod metric_names;
pub mod mirror;
pub mod node;
pub mod peers;
pub mod raft_link;
pub mod server;
pub mod storage;
pub mod streams;
pub mod supervisor;
pub mod throttling;
pub mod wells;

pub use config::DataNodeConfig;
pub use error::{Error, Result};
pub use node::catalog::CatalogView;
pub use node::Node;
pub use server::{start, start_on, RunningDataNode, StartError};
