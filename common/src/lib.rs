//! What both Tributary servers share: entity names, config loading, telemetry and the admin
//! HTTP listener, and the gRPC error conventions.

pub mod config;
pub mod duration;
pub mod grpc;
pub mod names;
pub mod publish;
pub mod secrets;
pub mod telemetry;
