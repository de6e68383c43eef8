//! Pure logic shared by the cardiowatch guest components and the host.
//!
//! Nothing here touches the network, clock or environment, so the same code runs inside
//! a WebAssembly component and natively in the host's tools and tests. The optional
//! `package` feature adds manifest loading, which reads files, for build scripts.

#![deny(missing_docs)]

pub mod alerting;
pub mod input;
pub mod news2;
#[cfg(feature = "package")]
pub mod package;
pub mod types;
pub mod xgb;
