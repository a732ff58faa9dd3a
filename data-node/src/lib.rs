//! Tributary data node: holds the bytes.
//!
//! * `storage/` — the storage trait and its RocksDB and memory engines; wells and streams.
//! * `ingest`, `query`, `streams/` — the Ingest, Wells and Streams gRPC services.
//! * `node` — storage plus the catalogue view, reconciled; `control_client` keeps the view
//!   current and the node registered; `server` starts it all in-process.

pub mod catalog;
pub mod config;
pub mod control_client;
pub mod ditto;
pub mod error;
pub mod ingest;
pub mod mirror;
pub mod node;
pub mod query;
pub mod server;
pub mod storage;
pub mod streams;

pub use catalog::CatalogView;
pub use config::DataNodeConfig;
pub use error::{Error, Result};
pub use node::Node;
pub use server::{start, start_on, RunningDataNode, StartError};
