//! Running a provider as a Terraform plugin process: the go-plugin
//! handshake on stdout, a gRPC server on a unix socket (with automatic mutual
//! TLS when the host asks for it), logging to stderr, and a clean exit when
//! the host says so.
//!
//! Like go-plugin, the process ignores SIGINT (Terraform handles Ctrl-C and
//! calls `StopProvider`), does not watch stdin (it is Terraform's own stdin),
//! and exits on the controller's `Shutdown` or on SIGTERM. The socket and its
//! temporary directory are removed on exit.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{UnixListener, UnixStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::goplugin::{Broker, Controller, Health, Shutdown, Stdio};
use crate::handshake::{self, APP_PROTOCOL_VERSION};
use crate::proto::{health, plugin, tfplugin6};
use crate::provider::Provider;
use crate::server::ProviderService;
use crate::tls;

/// How long open connections get to finish after a shutdown request.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Largest gRPC message accepted or sent (large states and schemas exceed
/// tonic's 4 MiB default; Terraform's own SDKs allow 256 MiB).
const MAX_MESSAGE_SIZE: usize = 256 << 20;

/// How long a client gets to complete the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors that stop the plugin server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Not launched by Terraform.
    #[error(transparent)]
    Handshake(#[from] handshake::HandshakeError),
    /// Setting up TLS failed.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// Creating the socket or writing the handshake failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

fn io_error(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServeError {
    let what = what.into();
    move |source| ServeError::Io { what, source }
}

/// Settings taken from the environment the host launched us with.
#[derive(Debug, Clone, Default)]
pub struct PluginEnv {
    /// `TF_PLUGIN_MAGIC_COOKIE`.
    pub magic_cookie: Option<String>,
    /// `PLUGIN_PROTOCOL_VERSIONS`.
    pub protocol_versions: Option<String>,
    /// `PLUGIN_CLIENT_CERT` (PEM), if the host wants mutual TLS.
    pub client_cert: Option<String>,
    /// `PLUGIN_UNIX_SOCKET_DIR`, where to put the socket.
    pub socket_dir: Option<PathBuf>,
}

impl PluginEnv {
    /// Reads the process environment.
    pub fn from_process() -> PluginEnv {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        PluginEnv {
            magic_cookie: var(handshake::MAGIC_COOKIE_KEY),
            protocol_versions: var(handshake::PROTOCOL_VERSIONS_KEY),
            client_cert: var(handshake::CLIENT_CERT_KEY),
            socket_dir: var(handshake::UNIX_SOCKET_DIR_KEY).map(PathBuf::from),
        }
    }
}

/// Serves `provider` as a Terraform plugin: the whole `main` of a provider
/// binary.
///
/// ```no_run
/// # struct MyProvider;
/// # fn doc(p: impl tfplugin::provider::Provider) -> std::process::ExitCode {
/// tfplugin::serve(p)
/// # }
/// ```
pub fn serve<P: Provider>(provider: P) -> ExitCode {
    let env = PluginEnv::from_process();
    if handshake::check_magic_cookie(env.magic_cookie.as_deref()).is_err() {
        eprint!("{}", handshake::NOT_A_PLUGIN_MESSAGE);
        return ExitCode::from(1);
    }
    crate::logging::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::from(1);
        }
    };
    let mut stdout = std::io::stdout();
    match runtime.block_on(run(provider, env, &mut stdout)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "plugin server failed");
            ExitCode::from(1)
        }
    }
}

/// Runs the plugin server until the host shuts it down, writing the
/// handshake line to `handshake_out`.
pub async fn run<P: Provider>(
    provider: P,
    env: PluginEnv,
    handshake_out: &mut dyn Write,
) -> Result<(), ServeError> {
    handshake::check_magic_cookie(env.magic_cookie.as_deref())?;
    let negotiation =
        handshake::negotiate_protocol(env.protocol_versions.as_deref(), &[APP_PROTOCOL_VERSION]);
    for entry in &negotiation.invalid_entries {
        tracing::warn!(entry = %entry, "ignoring invalid entry in {}", handshake::PROTOCOL_VERSIONS_KEY);
    }
    if !negotiation.host_supports_it {
        tracing::warn!(
            offered = negotiation.version,
            host = env.protocol_versions.as_deref().unwrap_or(""),
            "the host does not list our protocol version; it will likely refuse this plugin"
        );
    }

    let socket = PluginSocket::bind(env.socket_dir.as_deref())?;
    let (tls_config, server_cert) = match env.client_cert.as_deref() {
        Some(pem) => {
            let client_cert = tls::parse_client_cert(pem)?;
            let identity = tls::generate_server_identity()?;
            tracing::info!("configuring server automatic mTLS");
            (
                Some(tls::server_config(&identity, client_cert)?),
                Some(identity.cert_der),
            )
        }
        None => (None, None),
    };

    let line = handshake::handshake_line(
        negotiation.version,
        &socket.path.to_string_lossy(),
        server_cert.as_ref().map(AsRef::as_ref),
    );
    handshake_out
        .write_all(line.as_bytes())
        .and_then(|()| handshake_out.flush())
        .map_err(io_error("writing the handshake line"))?;

    let shutdown = Shutdown::new();
    spawn_signal_handlers(shutdown.clone());
    serve_on(socket.listener, tls_config, Arc::new(provider), shutdown).await
    // `socket` (its directory) is dropped here, removing the socket file.
}

/// Serves the plugin's gRPC services on `listener` until `shutdown` fires
/// (then waits at most two seconds for open calls).
pub async fn serve_on<P: Provider>(
    listener: UnixListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    provider: Arc<P>,
    shutdown: Shutdown,
) -> Result<(), ServeError> {
    let incoming = accept_loop(listener, tls.map(TlsAcceptor::from), shutdown.clone());
    let router = tonic::transport::Server::builder()
        .add_service(
            tfplugin6::provider_server::ProviderServer::new(ProviderService::new(provider))
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
        )
        .add_service(plugin::grpc_controller_server::GrpcControllerServer::new(
            Controller::new(shutdown.clone()),
        ))
        .add_service(plugin::grpc_stdio_server::GrpcStdioServer::new(Stdio::new(
            shutdown.clone(),
        )))
        .add_service(plugin::grpc_broker_server::GrpcBrokerServer::new(
            Broker::new(shutdown.clone()),
        ))
        .add_service(health::health_server::HealthServer::new(Health::new(
            shutdown.clone(),
        )));
    let server = router.serve_with_incoming_shutdown(incoming, shutdown.wait());
    tokio::pin!(server);
    let deadline = {
        let stop = shutdown.wait();
        async move {
            stop.await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        }
    };
    tokio::select! {
        result = &mut server => result.map_err(ServeError::from),
        () = deadline => {
            tracing::warn!("connections still open after shutdown; exiting anyway");
            Ok(())
        }
    }
}

/// A unix socket in a fresh temporary directory, removed on drop.
struct PluginSocket {
    listener: UnixListener,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl PluginSocket {
    fn bind(parent: Option<&Path>) -> Result<PluginSocket, ServeError> {
        let mut builder = tempfile::Builder::new();
        builder.prefix("plugin");
        let dir = match parent {
            Some(p) => builder.tempdir_in(p),
            None => builder.tempdir(),
        }
        .map_err(io_error("creating the socket directory"))?;
        let path = dir.path().join("plugin.sock");
        let listener = UnixListener::bind(&path)
            .map_err(io_error(format!("listening on {}", path.display())))?;
        Ok(PluginSocket {
            listener,
            path,
            _dir: dir,
        })
    }
}

/// SIGINT is ignored (Terraform forwards Ctrl-C to the whole process group
/// and then calls StopProvider itself); SIGTERM shuts down.
fn spawn_signal_handlers(shutdown: Shutdown) {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::interrupt()) {
        Ok(mut sigint) => {
            tokio::spawn(async move {
                while sigint.recv().await.is_some() {
                    tracing::debug!("ignoring SIGINT; the host handles interrupts");
                }
            });
        }
        Err(e) => tracing::warn!(error = %e, "cannot install the SIGINT handler"),
    }
    match signal(SignalKind::terminate()) {
        Ok(mut sigterm) => {
            tokio::spawn(async move {
                if sigterm.recv().await.is_some() {
                    tracing::info!("SIGTERM: shutting down");
                    shutdown.trigger();
                }
            });
        }
        Err(e) => tracing::warn!(error = %e, "cannot install the SIGTERM handler"),
    }
}

/// Accepts connections (completing TLS handshakes off the accept path) and
/// yields them to the gRPC server until shutdown.
fn accept_loop(
    listener: UnixListener,
    tls: Option<TlsAcceptor>,
    shutdown: Shutdown,
) -> tokio_stream::wrappers::ReceiverStream<Result<Conn, std::io::Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        let stop = shutdown.wait();
        tokio::pin!(stop);
        loop {
            let stream = tokio::select! {
                () = &mut stop => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                },
            };
            let tx = tx.clone();
            match tls.clone() {
                None => {
                    if tx.send(Ok(Conn::Plain(stream))).await.is_err() {
                        break;
                    }
                }
                Some(acceptor) => {
                    tokio::spawn(async move {
                        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                            .await
                        {
                            Ok(Ok(tls)) => {
                                let _ = tx.send(Ok(Conn::Tls(Box::new(tls)))).await;
                            }
                            Ok(Err(e)) => {
                                tracing::warn!(error = %e, "TLS handshake with the host failed")
                            }
                            Err(_) => tracing::warn!("TLS handshake with the host timed out"),
                        }
                    });
                }
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// A connection from the host, with or without TLS.
enum Conn {
    Plain(UnixStream),
    Tls(Box<TlsStream<UnixStream>>),
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Plain(s) => s.is_write_vectored(),
            Conn::Tls(s) => s.is_write_vectored(),
        }
    }
}
