//! The cardiowatch host: Kafka in, WebAssembly components, Kafka out.
//!
//! `source` consumes vitals and profiles, `pipeline` runs each record through a
//! hospital's preprocess, score and alert rules components (`runtime`), `state` keeps
//! per-patient windows and alert memory, and `sink` turns outcomes into output records.
//! `telemetry` and `admin` serve metrics, health and the live dashboard. `cli` is the
//! `cardiowatch` binary's command line.

#![deny(missing_docs)]

pub mod admin;
pub mod cli;
pub mod config;
pub mod embedded;
pub mod pipeline;
pub mod registry;
pub mod runtime;
pub mod simulator;
pub mod sink;
pub mod source;
pub mod state;
pub mod stats;
pub mod telemetry;
