//! The plugin server over a unix socket with automatic mutual TLS, driven
//! in-process by a tonic client: the host's certificate is accepted, any
//! other is refused, ALPN is h2, the health check answers SERVING for
//! "plugin", and the controller's Shutdown stops the server.

// Test helpers outside #[test] functions: failing loudly is the point.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tfplugin::goplugin::Shutdown;
use tfplugin::proto::{health, plugin, tfplugin6};
use tfplugin::provider::{
    ApplyRequest, ApplyResponse, ConfigureRequest, PlanRequest, PlanResponse, ReadRequest,
    ReadResponse,
};
use tfplugin::{Attribute, Block, Diagnostics, Provider, ProviderSchema, Schema, Type};
use tokio::net::{UnixListener, UnixStream};
use tonic::transport::{Channel, Endpoint};

const BOUND: Duration = Duration::from_secs(20);

struct Minimal;

impl Provider for Minimal {
    fn schema(&self) -> ProviderSchema {
        ProviderSchema {
            provider: Schema::default(),
            resources: [(
                "min_thing".to_owned(),
                Schema::new(
                    0,
                    Block::new().attribute(Attribute::required("name", Type::String)),
                ),
            )]
            .into(),
            data_sources: Default::default(),
        }
    }
    async fn configure(&self, _: ConfigureRequest) -> Diagnostics {
        Diagnostics::new()
    }
    async fn read_resource(&self, r: ReadRequest) -> Result<ReadResponse, Diagnostics> {
        Ok(ReadResponse {
            new_state: r.current_state,
            private: r.private,
            diagnostics: Diagnostics::new(),
        })
    }
    async fn plan_resource_change(&self, r: PlanRequest) -> Result<PlanResponse, Diagnostics> {
        Ok(PlanResponse::new(r.proposed_new_state))
    }
    async fn apply_resource_change(&self, r: ApplyRequest) -> Result<ApplyResponse, Diagnostics> {
        Ok(ApplyResponse {
            new_state: r.planned_state,
            private: r.planned_private,
            diagnostics: Diagnostics::new(),
        })
    }
}

/// Trusts exactly one server certificate, as go-plugin's host does.
#[derive(Debug)]
struct ExactServer(CertificateDer<'static>);

impl ServerCertVerifier for ExactServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.0.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "unexpected server certificate".into(),
            ))
        }
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = rustls::crypto::ring::default_provider().signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(m, c, d, &algs)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = rustls::crypto::ring::default_provider().signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(m, c, d, &algs)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A self-signed client identity (certificate, PKCS#8 key).
fn client_identity() -> (CertificateDer<'static>, Vec<u8>) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    (cert.der().clone(), key.serialize_der())
}

async fn connect(
    socket: PathBuf,
    server_cert: CertificateDer<'static>,
    client: (CertificateDer<'static>, Vec<u8>),
) -> Result<Channel, tonic::transport::Error> {
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(ExactServer(server_cert)))
    .with_client_auth_cert(
        vec![client.0],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(client.1)),
    )
    .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    Endpoint::try_from("http://localhost")
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .connect_with_connector(tower::service_fn(move |_| {
            let socket = socket.clone();
            let connector = connector.clone();
            async move {
                let stream = UnixStream::connect(&socket).await?;
                let tls = connector
                    .connect(ServerName::try_from("localhost").unwrap(), stream)
                    .await?;
                assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
                Ok::<_, std::io::Error>(TokioIo::new(tls))
            }
        }))
        .await
}

#[tokio::test]
async fn mutual_tls_serving_and_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("plugin.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let identity = tfplugin::tls::generate_server_identity().unwrap();
    let host = client_identity();
    let config = tfplugin::tls::server_config(&identity, host.0.clone()).unwrap();
    let shutdown = Shutdown::new();
    let server = tokio::spawn(tfplugin::serve::serve_on(
        listener,
        Some(config),
        Arc::new(Minimal),
        shutdown.clone(),
    ));

    // The host's own certificate gets in.
    let channel = tokio::time::timeout(
        BOUND,
        connect(socket.clone(), identity.cert_der.clone(), host),
    )
    .await
    .unwrap()
    .unwrap();
    let mut health = health::health_client::HealthClient::new(channel.clone());
    let status = health
        .check(health::HealthCheckRequest {
            service: "plugin".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(
        status,
        i32::from(health::health_check_response::ServingStatus::Serving)
    );
    let mut provider = tfplugin6::provider_client::ProviderClient::new(channel.clone());
    let schema = provider
        .get_provider_schema(tfplugin6::get_provider_schema::Request {})
        .await
        .unwrap()
        .into_inner();
    assert!(schema.resource_schemas.contains_key("min_thing"));

    // A stranger's certificate does not: with TLS 1.3 the client may finish
    // its side of the handshake, but the server refuses before any call.
    let stranger = client_identity();
    let refused = tokio::time::timeout(BOUND, async {
        match connect(socket.clone(), identity.cert_der.clone(), stranger).await {
            Err(_) => true,
            Ok(channel) => health::health_client::HealthClient::new(channel)
                .check(health::HealthCheckRequest::default())
                .await
                .is_err(),
        }
    })
    .await
    .unwrap();
    assert!(refused, "a client with the wrong certificate was served");

    // Shutdown ends the server within the grace period.
    plugin::grpc_controller_client::GrpcControllerClient::new(channel)
        .shutdown(plugin::Empty {})
        .await
        .unwrap();
    let result = tokio::time::timeout(BOUND, server).await.unwrap().unwrap();
    assert!(result.is_ok(), "{result:?}");
}
