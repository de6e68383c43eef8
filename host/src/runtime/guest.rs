//! Per-store state of the guests: a WASI context that grants nothing, and limits.
//!
//! The clocks are frozen at the Unix epoch so that no component can read the time; the
//! time a guest needs arrives as an argument. Stdout and stderr go to bounded in-memory
//! pipes that the host may read for diagnostics.

use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use super::Limits;

/// State owned by one wasmtime store.
pub struct GuestState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(super) limits: StoreLimits,
    /// Captured guest stdout, bounded.
    pub stdout: MemoryOutputPipe,
    /// Captured guest stderr, bounded.
    pub stderr: MemoryOutputPipe,
}

impl GuestState {
    pub(super) fn new(limits: &Limits) -> Self {
        let (wasi, stdout, stderr) = sandboxed_wasi(limits.max_log_bytes);
        GuestState {
            wasi,
            table: ResourceTable::new(),
            limits: store_limits(limits.max_memory_bytes),
            stdout,
            stderr,
        }
    }
}

/// Builds a WASI context that grants nothing: no directories, sockets, environment or
/// arguments, frozen clocks, and stdout and stderr each captured into a pipe that keeps
/// `max_log_bytes`. Returns the context with the stdout and stderr pipes.
pub(super) fn sandboxed_wasi(
    max_log_bytes: usize,
) -> (WasiCtx, MemoryOutputPipe, MemoryOutputPipe) {
    let stdout = MemoryOutputPipe::new(max_log_bytes);
    let stderr = MemoryOutputPipe::new(max_log_bytes);
    let wasi = WasiCtx::builder()
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .wall_clock(FrozenClock)
        .monotonic_clock(FrozenClock)
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .build();
    (wasi, stdout, stderr)
}

/// Limits of one store: linear memory up to `max_memory_bytes`, and a failed growth traps.
pub(super) fn store_limits(max_memory_bytes: usize) -> StoreLimits {
    StoreLimitsBuilder::new()
        .memory_size(max_memory_bytes)
        .instances(16)
        .trap_on_grow_failure(true)
        .build()
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A clock that always reads zero.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }

    fn now(&self) -> u64 {
        0
    }
}
