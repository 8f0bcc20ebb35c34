//! Code generated from `proto/*.proto`.
#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// Terraform plugin protocol 6.8.
pub mod tfplugin6 {
    tonic::include_proto!("tfplugin6");
}

/// go-plugin's controller, stdio and broker services.
pub mod plugin {
    tonic::include_proto!("plugin");
}

/// The gRPC health checking service.
pub mod health {
    tonic::include_proto!("grpc.health.v1");
}
