//! The services every go-plugin gRPC server offers besides the
//! application's: the controller (Shutdown), stdio forwarding, the
//! connection broker, and the health check the host pings.

use std::pin::Pin;

use futures::Stream;
use tokio::sync::watch;
use tonic::{Request, Response, Status, Streaming};

use crate::proto::health;
use crate::proto::plugin;

/// The name go-plugin's host checks with the health service.
pub const HEALTH_SERVICE_NAME: &str = "plugin";

/// A one-shot, cloneable "time to stop" signal.
#[derive(Debug, Clone)]
pub struct Shutdown {
    tx: std::sync::Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown::new()
    }
}

impl Shutdown {
    /// A signal that has not fired.
    pub fn new() -> Shutdown {
        Shutdown {
            tx: std::sync::Arc::new(watch::channel(false).0),
        }
    }

    /// Fires the signal (idempotent).
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Whether the signal has fired.
    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves once the signal has fired.
    pub fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.tx.subscribe();
        async move {
            // An error means the sender is gone, which also means "stop".
            let _ = rx.wait_for(|fired| *fired).await;
        }
    }

    /// A stream that yields nothing and ends when the signal fires.
    fn idle_stream<T: Send + 'static>(&self) -> BoxStream<T> {
        let wait = self.wait();
        Box::pin(futures::stream::once(wait).filter_map(|()| async { None }))
    }
}

use futures::StreamExt;

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// `plugin.GRPCController`: Shutdown makes the plugin exit.
#[derive(Debug)]
pub struct Controller {
    shutdown: Shutdown,
}

impl Controller {
    /// A controller firing `shutdown`.
    pub fn new(shutdown: Shutdown) -> Controller {
        Controller { shutdown }
    }
}

#[tonic::async_trait]
impl plugin::grpc_controller_server::GrpcController for Controller {
    async fn shutdown(
        &self,
        _request: Request<plugin::Empty>,
    ) -> Result<Response<plugin::Empty>, Status> {
        tracing::debug!("host asked the plugin to shut down");
        self.shutdown.trigger();
        Ok(Response::new(plugin::Empty {}))
    }
}

/// `plugin.GRPCStdio`: our output goes straight to stderr, so the stream
/// carries nothing; it stays open until shutdown, as the host expects.
#[derive(Debug)]
pub struct Stdio {
    shutdown: Shutdown,
}

impl Stdio {
    /// A stdio service ending its streams on `shutdown`.
    pub fn new(shutdown: Shutdown) -> Stdio {
        Stdio { shutdown }
    }
}

#[tonic::async_trait]
impl plugin::grpc_stdio_server::GrpcStdio for Stdio {
    type StreamStdioStream = BoxStream<plugin::StdioData>;

    async fn stream_stdio(
        &self,
        _request: Request<()>,
    ) -> Result<Response<Self::StreamStdioStream>, Status> {
        Ok(Response::new(self.shutdown.idle_stream()))
    }
}

/// `plugin.GRPCBroker`: Terraform providers broker no extra connections;
/// the stream is accepted, its messages drained, and kept open until shutdown.
#[derive(Debug)]
pub struct Broker {
    shutdown: Shutdown,
}

impl Broker {
    /// A broker ending its streams on `shutdown`.
    pub fn new(shutdown: Shutdown) -> Broker {
        Broker { shutdown }
    }
}

#[tonic::async_trait]
impl plugin::grpc_broker_server::GrpcBroker for Broker {
    type StartStreamStream = BoxStream<plugin::ConnInfo>;

    async fn start_stream(
        &self,
        request: Request<Streaming<plugin::ConnInfo>>,
    ) -> Result<Response<Self::StartStreamStream>, Status> {
        let mut inbound = request.into_inner();
        let stop = self.shutdown.wait();
        tokio::spawn(async move {
            tokio::select! {
                () = stop => {}
                () = async { while let Some(Ok(info)) = inbound.next().await {
                    tracing::debug!(service_id = info.service_id, "ignoring broker message");
                } } => {}
            }
        });
        Ok(Response::new(self.shutdown.idle_stream()))
    }
}

/// `grpc.health.v1.Health`: SERVING for the whole server and for "plugin".
#[derive(Debug)]
pub struct Health {
    shutdown: Shutdown,
}

impl Health {
    /// A health service whose watches end on `shutdown`.
    pub fn new(shutdown: Shutdown) -> Health {
        Health { shutdown }
    }

    fn status(service: &str) -> Result<health::HealthCheckResponse, Status> {
        if service.is_empty() || service == HEALTH_SERVICE_NAME {
            Ok(health::HealthCheckResponse {
                status: health::health_check_response::ServingStatus::Serving.into(),
            })
        } else {
            Err(Status::not_found(format!("unknown service {service:?}")))
        }
    }
}

#[tonic::async_trait]
impl health::health_server::Health for Health {
    async fn check(
        &self,
        request: Request<health::HealthCheckRequest>,
    ) -> Result<Response<health::HealthCheckResponse>, Status> {
        Health::status(&request.into_inner().service).map(Response::new)
    }

    type WatchStream = BoxStream<health::HealthCheckResponse>;

    async fn watch(
        &self,
        request: Request<health::HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let first = Health::status(&request.into_inner().service)?;
        let rest = self.shutdown.idle_stream();
        Ok(Response::new(Box::pin(
            futures::stream::once(async move { Ok(first) }).chain(rest),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use health::health_server::Health as _;
    use plugin::grpc_controller_server::GrpcController as _;
    use plugin::grpc_stdio_server::GrpcStdio as _;
    use std::time::Duration;

    #[tokio::test]
    async fn health_reports_serving_for_plugin() {
        let h = Health::new(Shutdown::new());
        for service in ["", "plugin"] {
            let r = h
                .check(Request::new(health::HealthCheckRequest {
                    service: service.into(),
                }))
                .await
                .unwrap();
            assert_eq!(
                r.into_inner().status,
                i32::from(health::health_check_response::ServingStatus::Serving)
            );
        }
        let err = h
            .check(Request::new(health::HealthCheckRequest {
                service: "x".into(),
            }))
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::NotFound);
    }

    #[tokio::test]
    async fn controller_shutdown_ends_idle_streams() {
        let shutdown = Shutdown::new();
        let stdio = Stdio::new(shutdown.clone());
        let mut stream = stdio
            .stream_stdio(Request::new(()))
            .await
            .unwrap()
            .into_inner();
        // Nothing arrives while running.
        assert!(
            tokio::time::timeout(Duration::from_millis(50), stream.next())
                .await
                .is_err()
        );
        assert!(!shutdown.is_triggered());
        Controller::new(shutdown.clone())
            .shutdown(Request::new(plugin::Empty {}))
            .await
            .unwrap();
        assert!(shutdown.is_triggered());
        let end = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .unwrap();
        assert!(end.is_none());
    }
}
