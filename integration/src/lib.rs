//! Cluster harness for tests and benchmarks: real members on 127.0.0.1 in this process, with
//! fault injection (drop, delay, partition) on Raft traffic and kill/restart of members.

pub mod cp_cluster;
pub mod ditto_pair;
pub mod stream_cluster;
pub mod wait;

pub use cp_cluster::CpCluster;
