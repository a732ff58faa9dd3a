//! Cluster harness for tests and benchmarks: named clusters of control-plane members and data
//! nodes on 127.0.0.1, in this process or as real binaries, every server-to-server link
//! through one fault layer of TCP proxies (drop, delay, blackhole, partition), typed waits
//! built on one [`wait::until`], and kill/restart of any server.
//!
//! * [`Cluster`] — start with [`Cluster::builder`]; `kill`/`start`/`restart` a [`Server`];
//!   `partition`, `isolate`, `heal_all`, `set_link`; `wait_leader`, `wait_registered`,
//!   `wait_stream_served`, `wait_caught_up`, …
//! * [`net`] — the proxies themselves ([`net::Mode`]: pass, delay, blackhole, cut).
//! * [`streams`], [`wells`] — calls against one data node's address; [`entities`] — builders.
//! * [`tls`] — each cluster's CA and certificates, and `tls::channel(addr)` for test clients.
//! * [`scenario`] — the reference replication scenario plus a ditto edge, for topology tests.
//! * [`admin_http`] — the admin listener as `curl` reaches it (TLS with the cluster CA).
//! * [`traffic`] — a little of everything (ditto, a mirror, ingest, publish, a failing call),
//!   so every kind of metric has series.
//! * [`compose`] — the compose cluster of `deploy/compose` in real containers, driven from the
//!   host (`scripts/container-tests.sh`).

pub mod admin_http;
pub mod cluster;
pub mod compose;
pub mod entities;
pub mod net;
pub mod scenario;
pub mod streams;
pub mod tls;
pub mod traffic;
pub mod wait;
pub mod wells;

pub use cluster::{Cluster, CLUSTER_SECRET, INGEST_SECRET};
pub use net::{LinkId, Mode, Server};
