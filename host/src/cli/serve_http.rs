//! `serve-http`: serves an HTTP component, such as the Spin scoring component, without Spin.
//!
//! The component runs with `wasmtime-wasi-http` (WASI 0.2) under the limits of
//! [`HttpLimits`], one fresh instance per request. The listener binds 127.0.0.1 unless
//! `--listen` names another address.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;

use crate::runtime::http::{HttpComponent, HttpLimits, serve};

/// Options of `serve-http`.
#[derive(Debug, clap::Args)]
pub struct ServeHttpArgs {
    /// HTTP component file: a WASI 0.2 component exporting `wasi:http/incoming-handler`.
    #[arg(long, default_value = "target/components/spin-score.wasm")]
    component: PathBuf,
    /// Address and port to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Time a request may take until the component's response headers, in milliseconds.
    #[arg(long, default_value_t = HttpLimits::default().max_request_ms)]
    max_request_ms: u64,
    /// Linear memory one request's instance may grow to, in MiB.
    #[arg(long, default_value_t = HttpLimits::default().max_memory_bytes >> 20)]
    max_memory_mib: usize,
    /// Largest request body by its content-length, in KiB.
    #[arg(long, default_value_t = HttpLimits::default().max_body_bytes >> 10)]
    max_body_kib: u64,
}

/// Runs `serve-http` until Ctrl-C or SIGTERM.
pub async fn run(args: ServeHttpArgs) -> anyhow::Result<()> {
    let limits = HttpLimits {
        max_request_ms: args.max_request_ms,
        max_memory_bytes: args.max_memory_mib << 20,
        max_body_bytes: args.max_body_kib << 10,
        ..HttpLimits::default()
    };
    let component = HttpComponent::load(&args.component, limits)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("failed to listen on {}", args.listen))?;
    let address = listener
        .local_addr()
        .context("failed to read the bound address")?;
    tracing::info!(
        %address,
        component = %component.path().display(),
        sha256 = component.sha256(),
        "serving HTTP component"
    );
    serve(
        listener,
        Arc::new(component),
        super::serve::stop_requested(),
    )
    .await
    .context("HTTP server failed")?;
    tracing::info!("HTTP server stopped");
    Ok(())
}
