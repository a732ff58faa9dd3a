//! Tributary's public gRPC API, generated from `proto/tributary/v1/*.proto`.

// Generated code: an `Entity` holds its kind inline, and a stream (the largest) is what most
// callers build and match on; boxing it would only move the allocation into every caller.
#[allow(clippy::large_enum_variant)]
pub mod v1 {
    tonic::include_proto!("tributary.v1");
}

/// The encoded descriptors of every file in `proto/`, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/tributary_descriptor.bin"));
