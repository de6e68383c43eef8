//! Pure logic shared by the cardiowatch guest components and the host.
//!
//! Nothing here touches the filesystem, network, clock or environment, so the same code
//! runs inside a WebAssembly component and natively in the host's tools and tests.

#![deny(missing_docs)]

pub mod alerting;
pub mod input;
pub mod news2;
pub mod types;
