//! Whose calls the per-connection throttle (`[throttling]`) slows: every client's, by the
//! connection it came on; never the cluster's own nodes (their mirror and ditto traffic).

use crate::gate::Pass;
use std::sync::Arc;
use tonic::Request;
use tributary_common::throttle::{Budget, Throttle};

/// The budget `req` spends from (nothing to limit for a node of the cluster, or when off).
pub fn budget<T>(
    throttle: Option<&Arc<Throttle>>,
    req: &Request<T>,
    pass: &Pass,
    rpc: &'static str,
) -> Budget {
    match pass {
        Pass::Node => Budget::default(),
        Pass::Secret | Pass::Caller(_) => Budget::of(throttle, req.remote_addr(), rpc),
    }
}
