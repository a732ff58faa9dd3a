//! `grpc.health.v1` and server reflection on every gRPC listener, so `grpc-health-probe`,
//! `grpcurl` and Kubernetes' gRPC probes work against any node. A server says per service
//! (and overall, the empty name) whether it serves; the health service itself always answers.

use crate::limits::LimitedRouter;
use tonic_health::pb::health_server::HealthServer;
use tonic_health::server::{HealthReporter, HealthService};
pub use tonic_health::ServingStatus;

/// The health statuses of one server, shared by all its listeners.
#[derive(Clone, Default)]
pub struct Health {
    reporter: HealthReporter,
}

/// The full name of a tributary service (`tributary.v1.Catalog`).
pub fn service_name(short: &str) -> String {
    format!("tributary.v1.{short}")
}

impl Health {
    /// Adds the health service and reflection of `services` (full names) to `router`.
    pub fn serve_on(&self, router: LimitedRouter, services: &[String]) -> LimitedRouter {
        let health = HealthServer::new(HealthService::from_health_reporter(self.reporter.clone()));
        let mut router = router.add_service(health);
        let builder = || {
            let mut b = tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(tributary_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .with_service_name("grpc.health.v1.Health");
            for s in services {
                b = b.with_service_name(s.clone());
            }
            b
        };
        // Both versions: grpcurl speaks v1, many clients (grpcio's) still v1alpha.
        match builder().build_v1() {
            Ok(r) => router = router.add_service(r),
            Err(e) => tracing::error!(error = %e, "server reflection v1 is off"),
        }
        match builder().build_v1alpha() {
            Ok(r) => router = router.add_service(r),
            Err(e) => tracing::error!(error = %e, "server reflection v1alpha is off"),
        }
        router
    }

    /// Sets `services` and the overall status ("") to serving or not.
    pub async fn set(&self, services: &[String], serving: bool) {
        let status = match serving {
            true => ServingStatus::Serving,
            false => ServingStatus::NotServing,
        };
        for s in services.iter().map(String::as_str).chain([""]) {
            self.reporter.set_service_status(s, status).await;
        }
    }

    /// Sets one service's status (one that serves whatever the rest does).
    pub async fn set_one(&self, service: &str, serving: bool) {
        let status = match serving {
            true => ServingStatus::Serving,
            false => ServingStatus::NotServing,
        };
        self.reporter.set_service_status(service, status).await;
    }
}
