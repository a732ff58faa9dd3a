//! What both Tributary servers share: entity names, subjects, config loading, client
//! authentication, logging (files, runtime levels), tracing (OTLP, the W3C context on every gRPC hop), telemetry and the admin HTTP listener with
//! the devops API, gRPC health and reflection, the gRPC wire conventions, the bound-address file, and small
//! runtime helpers (time, backoff, owned tasks, locks); policies and their enforcement; the topology
//! (what copies what, with live lag) and a member's status page.

pub mod access;
pub mod addr_file;
pub mod auth;
pub mod backoff;
pub mod certs;
pub mod cleanup;
pub mod cli;
pub mod config;
pub mod conn;
pub mod crypto;
pub mod devops;
pub mod duration;
pub mod grpc;
pub mod health;
pub mod limits;
pub mod logging;
pub mod model;
pub mod names;
pub mod policy;
pub mod publish;
pub mod raft_inputs;
pub mod secrets;
pub mod serve;
pub mod status_page;
pub mod subject;
pub mod sync;
pub mod task;
pub mod telemetry;
pub mod throttle;
pub mod time;
pub mod tls;
pub mod topology;
pub mod trace_context;
pub mod wait;
