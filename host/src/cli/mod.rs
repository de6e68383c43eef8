//! Command-line interface: argument parsing and dispatch to one module per command.

mod control;
mod model;
mod replay;
mod score;
mod serve;
mod serve_http;
mod simulate;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::{AdminConfig, KafkaConfig};

/// Real-time cardiac risk scoring and alerting over Kafka with WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "cardiowatch", version, about)]
pub struct Cli {
    /// More log output on stderr (-v: debug for cardiowatch, -vv: debug everywhere).
    /// `RUST_LOG` overrides this.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the embedded default: a mock Kafka cluster, the simulator and the host.
    Up(serve::UpArgs),
    /// Run the host against a Kafka cluster, without the simulator.
    Run(serve::RunArgs),
    /// Produce simulated vitals and profiles to a Kafka cluster.
    Simulate(simulate::SimulateArgs),
    /// Score one message offline and print the prediction and alerts.
    Score(score::ScoreArgs),
    /// Re-score a range of a vitals topic with candidate components or thresholds and
    /// report what would change, without writing to Kafka.
    Replay(replay::ReplayArgs),
    /// Serve an HTTP component (WASI 0.2), such as the Spin scoring component, on 127.0.0.1.
    ServeHttp(serve_http::ServeHttpArgs),
    /// Inspect, run or package score components.
    #[command(subcommand)]
    Model(model::ModelCommand),
    /// Validate a component and make it live for a hospital on every host instance.
    Deploy(control::DeployArgs),
    /// Make an earlier version of a hospital's component live again.
    Rollback(control::RollbackArgs),
    /// List each hospital's component versions and recent changes.
    Versions(control::VersionsArgs),
    /// Show or change a hospital's alert thresholds while the host runs.
    Thresholds(control::ThresholdsArgs),
    /// Export the running configuration as files.
    #[command(subcommand)]
    Config(control::ConfigCommand),
}

/// Options shared by commands that read hospital configuration and talk to Kafka.
#[derive(Debug, clap::Args)]
pub struct HostArgs {
    /// Directory of hospital files (`<id>.toml`).
    #[arg(long, default_value = "hospitals", env = "CARDIOWATCH_HOSPITALS")]
    pub hospitals: PathBuf,
    /// TOML file with a `[kafka]` table (topics, group, librdkafka settings).
    #[arg(long, env = "CARDIOWATCH_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory of the component cache, cached hospital states and the audit log;
    /// overrides `[registry] dir` (default `cardiowatch-state`).
    #[arg(long, env = "CARDIOWATCH_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
}

/// Runs the parsed command.
///
/// # Errors
///
/// Any failure, with context for the user.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Up(args) => serve::up(args).await,
        Command::Run(args) => serve::run(args).await,
        Command::Simulate(args) => simulate::run(args).await,
        Command::Score(args) => score::run(args),
        Command::Replay(args) => replay::run(args).await,
        Command::ServeHttp(args) => serve_http::run(args).await,
        Command::Model(command) => model::run(command),
        Command::Deploy(args) => control::deploy(args).await,
        Command::Rollback(args) => control::rollback(args).await,
        Command::Versions(args) => control::versions(args).await,
        Command::Thresholds(args) => control::thresholds(args).await,
        Command::Config(control::ConfigCommand::Export(args)) => control::export(args).await,
    }
}

/// The host's config file: `[kafka]`, `[admin]` and `[influx]` tables, all optional.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostFile {
    /// Kafka topics and client settings.
    #[serde(default)]
    pub kafka: KafkaConfig,
    /// The admin server: listen address and token digests.
    #[serde(default)]
    pub admin: AdminConfig,
    /// InfluxDB sink; none when absent.
    #[serde(default)]
    pub influx: Option<crate::sink::influx::InfluxConfig>,
    /// Component registry: control topic, state directory, quarantine.
    #[serde(default)]
    pub registry: crate::registry::RegistryConfig,
}

/// Reads `--config`, or the defaults.
fn load_host_file(path: Option<&PathBuf>) -> anyhow::Result<HostFile> {
    use anyhow::Context as _;
    let Some(path) = path else {
        return Ok(HostFile::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read config {}", path.display()))?;
    let mut file: HostFile =
        toml::from_str(&text).with_context(|| format!("invalid config {}", path.display()))?;
    file.kafka
        .validate_and_load_secrets()
        .map_err(|message| anyhow::anyhow!("invalid config {}: {message}", path.display()))?;
    Ok(file)
}

/// Reads the `[kafka]` table of `--config`, or the defaults.
fn load_kafka_config(path: Option<&PathBuf>) -> anyhow::Result<KafkaConfig> {
    Ok(load_host_file(path)?.kafka)
}
