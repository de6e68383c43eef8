//! Serves an HTTP component (`wasi:http/incoming-handler@0.2`, the WASI 0.2 proxy world)
//! such as the Spin scoring component, with `wasmtime-wasi-http`.
//!
//! Each request gets a fresh store and instance under the sandbox of the pipeline's
//! components: WASI linked with nothing granted, outgoing HTTP rejected, a memory limit and
//! an epoch deadline. Requests come in over HTTP/1.1 on a listener the caller binds.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::{Request, Response, StatusCode};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, StoreLimits};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use super::guest::{sandboxed_wasi, store_limits};
use super::{EPOCH_TICK, start_epoch_ticker};

/// Errors of loading an HTTP component.
#[derive(Debug, thiserror::Error)]
pub enum HttpComponentError {
    /// The component file could not be read.
    #[error("failed to read HTTP component {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The bytes are not a component of the `wasi:http/proxy` world, or import more.
    #[error("invalid HTTP component {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The error wasmtime reported.
        message: String,
    },
}

/// Sandbox limits of one request.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Wall-clock time from the start of a request to the component's response headers,
    /// in milliseconds. The same time is the epoch deadline of the instance, so a
    /// component that keeps running after it traps. Default 1000.
    pub max_request_ms: u64,
    /// Linear memory one request's instance may grow to, in bytes. Default 64 MiB.
    pub max_memory_bytes: usize,
    /// Largest request body by its `content-length`, in bytes. Default 1 MiB. A chunked
    /// body is bounded by the memory limit alone.
    pub max_body_bytes: u64,
    /// Bytes of stdout and of stderr kept per request. Default 16 KiB.
    pub max_log_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_request_ms: 1000,
            max_memory_bytes: 64 << 20,
            max_body_bytes: 1 << 20,
            max_log_bytes: 16 << 10,
        }
    }
}

/// A compiled HTTP component, instantiated once per request.
pub struct HttpComponent {
    pre: ProxyPre<RequestState>,
    limits: HttpLimits,
    path: PathBuf,
    sha256: String,
}

impl HttpComponent {
    /// Compiles the component at `path` and links it against WASI and `wasi:http`.
    ///
    /// # Errors
    ///
    /// [`HttpComponentError`] naming the file when it cannot be read, is not a component,
    /// imports more than WASI 0.2 and `wasi:http` or does not export
    /// `wasi:http/incoming-handler`.
    pub fn load(path: &Path, limits: HttpLimits) -> Result<Self, HttpComponentError> {
        let bytes = std::fs::read(path).map_err(|source| HttpComponentError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let invalid = |error: wasmtime::Error| HttpComponentError::Invalid {
            path: path.to_path_buf(),
            message: format!("{error:#}"),
        };
        let mut config = Config::new();
        config.epoch_interruption(true);
        let engine = Engine::new(&config).map_err(invalid)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(invalid)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(invalid)?;
        let component = Component::new(&engine, &bytes).map_err(invalid)?;
        let instance_pre = linker.instantiate_pre(&component).map_err(invalid)?;
        let pre = ProxyPre::new(instance_pre).map_err(invalid)?;
        start_epoch_ticker(&engine);
        Ok(HttpComponent {
            pre,
            limits,
            path: path.to_path_buf(),
            sha256: hex::encode(Sha256::digest(&bytes)),
        })
    }

    /// Returns the file the component was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Lowercase hex sha256 of the component file.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Runs one request through a fresh instance. A trap, a missed deadline or a missing
    /// response becomes a 500 (503 for the deadline) with a JSON error, and is logged.
    pub async fn handle(&self, request: Request<Incoming>) -> Response<HyperOutgoingBody> {
        let started = Instant::now();
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        if let Some(bytes) = content_length(&request)
            && bytes > self.limits.max_body_bytes
        {
            let message = format!(
                "request body of {bytes} bytes is over the limit of {} bytes",
                self.limits.max_body_bytes
            );
            return error_response(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", &message);
        }
        let response = match self.run(request).await {
            Ok(response) => response,
            Err(failure) => {
                tracing::warn!(%method, path, error = %failure.message, "HTTP component failed");
                error_response(failure.status, "component_failure", &failure.message)
            }
        };
        tracing::debug!(
            %method,
            path,
            status = response.status().as_u16(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "request served"
        );
        response
    }

    async fn run(
        &self,
        request: Request<Incoming>,
    ) -> Result<Response<HyperOutgoingBody>, Failure> {
        let mut store = self.new_store();
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let mut http = store.data_mut().http();
        let incoming = http
            .new_incoming_request(Scheme::Http, request)
            .map_err(|error| Failure::internal(format!("invalid request: {error:#}")))?;
        let outparam = http
            .new_response_outparam(sender)
            .map_err(|error| Failure::internal(format!("{error:#}")))?;
        let pre = self.pre.clone();
        let task = tokio::spawn(async move {
            let proxy = pre.instantiate_async(&mut store).await?;
            proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, incoming, outparam)
                .await
        });
        let deadline = Duration::from_millis(self.limits.max_request_ms);
        match tokio::time::timeout(deadline, receiver).await {
            Ok(Ok(Ok(response))) => {
                // The component may still be writing the body, so its failure can only be
                // logged, not answered.
                tokio::spawn(async move {
                    if let Ok(Err(error)) = task.await {
                        let error = format!("{error:#}");
                        tracing::warn!(error, "HTTP component failed after its response headers");
                    }
                });
                Ok(response)
            }
            Ok(Ok(Err(code))) => Err(Failure::internal(format!(
                "the component responded with error code {code:?}"
            ))),
            // The component dropped the response handle because it trapped or returned
            // without a response. The task's result tells the two apart.
            Ok(Err(_)) => Err(Failure::internal(match task.await {
                Ok(Ok(())) => "the component returned without setting a response".to_string(),
                Ok(Err(error)) => format!("the component trapped: {error:#}"),
                Err(error) => format!("the request task failed: {error}"),
            })),
            Err(_) => {
                task.abort();
                Err(Failure {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    message: format!(
                        "the component did not respond within {} ms",
                        self.limits.max_request_ms
                    ),
                })
            }
        }
    }

    fn new_store(&self) -> Store<RequestState> {
        let engine = self.pre.engine();
        let mut store = Store::new(engine, RequestState::new(&self.limits));
        store.limiter(|state| &mut state.limits);
        let ticks = (self.limits.max_request_ms / EPOCH_TICK.as_millis() as u64).max(1);
        store.set_epoch_deadline(ticks);
        store
    }
}

/// Failure of a request that got no response from the component.
struct Failure {
    status: StatusCode,
    message: String,
}

impl Failure {
    fn internal(message: String) -> Self {
        Failure {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message,
        }
    }
}

fn content_length(request: &Request<Incoming>) -> Option<u64> {
    request
        .headers()
        .get(hyper::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Builds an error response with the JSON body the scoring component uses:
/// `{"error": <message>, "kind": <kind>}`.
fn error_response(status: StatusCode, kind: &str, message: &str) -> Response<HyperOutgoingBody> {
    let body = serde_json::json!({ "error": message, "kind": kind }).to_string();
    let body = Full::new(Bytes::from(body))
        .map_err(|never: Infallible| match never {})
        .boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

/// Accepts HTTP/1.1 connections on `listener` and serves each request with `component`
/// until `shutdown` resolves. Connections still open then are dropped.
///
/// # Errors
///
/// None so far: a failed accept is logged and retried after a short pause.
pub async fn serve(
    listener: TcpListener,
    component: Arc<HttpComponent>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => return Ok(()),
        };
        let (stream, peer) = match accepted {
            Ok(connection) => connection,
            Err(error) => {
                // Running out of file descriptors fails every accept; pause instead of
                // spinning on it.
                tracing::warn!(%error, "failed to accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let component = component.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let component = component.clone();
                async move { Ok::<_, Infallible>(component.handle(request).await) }
            });
            let connection = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "HTTP connection ended with an error");
            }
        });
    }
}

/// State of one request's store.
struct RequestState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    limits: StoreLimits,
    hooks: DenyOutgoing,
    /// Kept so that the pipes live as long as the store; nothing reads them yet.
    _stdout: MemoryOutputPipe,
    _stderr: MemoryOutputPipe,
}

impl RequestState {
    fn new(limits: &HttpLimits) -> Self {
        let (wasi, stdout, stderr) = sandboxed_wasi(limits.max_log_bytes);
        RequestState {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            limits: store_limits(limits.max_memory_bytes),
            hooks: DenyOutgoing,
            _stdout: stdout,
            _stderr: stderr,
        }
    }
}

impl WasiView for RequestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for RequestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// Hooks that reject every outgoing request: a component gets no network.
struct DenyOutgoing;

impl WasiHttpHooks for DenyOutgoing {
    fn send_request(
        &mut self,
        _request: http::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<wasmtime_wasi_http::WasiBody>,
                        Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                    ),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
    }
}
