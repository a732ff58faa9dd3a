//! A local cluster, planned once and started two ways: in this process (`tribctl demo`) or as
//! real server processes (`tribctl dev`). The plan holds everything the two must agree on (ids,
//! addresses, the peers string, data dirs, configs), so they cannot drift; `ready` is the one
//! wait for a leader and the data nodes.

pub mod in_process;
pub mod pid;
pub mod plan;
pub mod processes;
pub mod ready;
