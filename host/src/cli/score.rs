//! `score`: one message through a hospital's components, offline, printed as JSON.
//!
//! The message is read from a file or stdin and run with an empty patient state, so a
//! profile must travel in the message (as legacy messages do) for the model to run.

use std::io::Read as _;
use std::path::PathBuf;

use anyhow::Context as _;

use super::{HostArgs, load_kafka_config};
use crate::pipeline::{InputRecord, Outcome};

/// Options of `score`.
#[derive(Debug, clap::Args)]
pub struct ScoreArgs {
    #[command(flatten)]
    host: HostArgs,
    /// Hospital whose components and thresholds apply.
    #[arg(long)]
    hospital: String,
    /// Topic the message would arrive on; `heart_data` selects the legacy format.
    #[arg(long, default_value = "vitals")]
    topic: String,
    /// Message file; `-` or nothing reads stdin.
    file: Option<PathBuf>,
}

/// Runs `score`.
pub fn run(args: ScoreArgs) -> anyhow::Result<()> {
    let kafka = load_kafka_config(args.host.config.as_ref())?;
    let mut pipeline = super::serve::build_pipeline(&args.host, &kafka, None)?;
    let payload = read_message(args.file.as_ref())?;
    let record = InputRecord {
        topic: args.topic.clone(),
        payload,
        headers: vec![(
            crate::pipeline::HOSPITAL_HEADER.to_string(),
            Some(args.hospital.clone().into_bytes()),
        )],
        timestamp_ms: Some(super::serve::now_ms()),
        ..InputRecord::default()
    };
    match pipeline.process(&record) {
        Outcome::Scored {
            prediction, alerts, ..
        } => {
            let output = serde_json::json!({ "prediction": prediction, "alerts": alerts });
            println!("{}", serde_json::to_string_pretty(&output)?);
            Ok(())
        }
        Outcome::DeadLetter(dead) => {
            anyhow::bail!(
                "{} ({}): the host would send this message to the dead-letter topic",
                dead.reason,
                dead.kind.as_str()
            )
        }
    }
}

fn read_message(file: Option<&PathBuf>) -> anyhow::Result<Vec<u8>> {
    match file {
        Some(path) if path.as_os_str() != "-" => {
            std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))
        }
        _ => {
            let mut buffer = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buffer)
                .context("failed to read stdin")?;
            Ok(buffer)
        }
    }
}
