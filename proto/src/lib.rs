//! Tributary's public gRPC API, generated from `proto/tributary/v1/*.proto`.

pub mod v1 {
    tonic::include_proto!("tributary.v1");
}
