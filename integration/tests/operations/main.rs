//! Operations as Eclipse Ditto: the devops API answered for the whole cluster by any member
//! (log levels read and changed everywhere, config by path with secrets redacted, an
//! unreachable instance shown with its error), who may call it, and gRPC health and
//! reflection on both servers; piggyback commands to the supervisors; namespace erasure.

mod devops;
mod erasure;
mod health;
mod http;
mod piggyback;
mod purge;
