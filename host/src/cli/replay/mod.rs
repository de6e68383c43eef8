//! `replay`: re-scores a range of a vitals topic with the configured components
//! (baseline) and with overrides (candidate) in one pass, and reports the differences.
//!
//! It reads with `assign()` and a consumer without a group, and creates no producer, so
//! it writes nothing to Kafka and commits no offsets.

mod read;
mod report;

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};

use super::{HostArgs, load_host_file};
use crate::config::{HospitalConfig, KafkaConfig, Thresholds, load_hospitals};
use crate::pipeline::{Hospital, Pipeline, ProfileOutcome, load_component_set};
use crate::registry::HospitalState;
use crate::runtime::{Limits, Role, Runtime};

/// Options of `replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    host: HostArgs,
    /// Kafka bootstrap servers; overrides the config file.
    #[arg(long)]
    brokers: Option<String>,
    /// Vitals topic to replay.
    #[arg(long, default_value = "vitals")]
    topic: String,
    /// First offset to read: `OFFSET` for every partition or `PARTITION:OFFSET`;
    /// repeat for several partitions. Default: the oldest record.
    #[arg(long, value_name = "[PARTITION:]OFFSET")]
    from_offset: Vec<String>,
    /// Last offset to read, inclusive, in the same form as `--from-offset`.
    /// Default: the newest record.
    #[arg(long, value_name = "[PARTITION:]OFFSET")]
    to_offset: Vec<String>,
    /// First Kafka timestamp to read, RFC 3339 (e.g. 2026-12-04T08:00:00Z).
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// Kafka timestamp at which to stop, exclusive, RFC 3339.
    #[arg(long, value_name = "TIME")]
    to: Option<String>,
    /// Hospital whose candidate differs from the baseline; needed by the overrides.
    #[arg(long)]
    hospital: Option<String>,
    /// Candidate preprocess component (`.wasm`).
    #[arg(long, requires = "hospital")]
    preprocess: Option<PathBuf>,
    /// Candidate score component (`.wasm`).
    #[arg(long, requires = "hospital")]
    score: Option<PathBuf>,
    /// Candidate alert rules component (`.wasm`).
    #[arg(long, requires = "hospital")]
    alert_rules: Option<PathBuf>,
    /// Candidate threshold as `name=value`, e.g. `model_probability=0.05`; repeatable.
    #[arg(long = "thresholds", value_name = "NAME=VALUE", requires = "hospital")]
    thresholds: Vec<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Print patient ids in the examples instead of pseudonyms.
    #[arg(long)]
    show_patients: bool,
    /// Changed records shown per hospital.
    #[arg(long, default_value_t = 3)]
    examples: usize,
}

/// Runs `replay`.
pub async fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let json = args.json;
    let report = tokio::task::spawn_blocking(move || replay(&args))
        .await
        .context("the replay task failed")??;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report::render_text(&report));
    }
    Ok(())
}

fn replay(args: &ReplayArgs) -> anyhow::Result<report::Report> {
    let file = load_host_file(args.host.config.as_ref())?;
    let mut kafka = file.kafka.clone();
    if let Some(brokers) = &args.brokers {
        kafka.brokers = brokers.clone();
    }
    let state_dir = args
        .host
        .state_dir
        .clone()
        .unwrap_or(file.registry.dir.clone());
    let bounds = parse_bounds(args)?;
    let baseline_configs = baseline_configs(&args.host.hospitals, &state_dir)?;
    let candidate_configs = candidate_configs(&baseline_configs, args)?;
    let runtime = Runtime::new(Limits::default())?;
    let mut baseline = build(&runtime, &kafka, baseline_configs).context("baseline")?;
    let mut candidate = build(&runtime, &kafka, candidate_configs).context("candidate")?;

    let consumer = read::create_consumer(&kafka)?;
    let ranges = read::resolve(&consumer, &args.topic, &bounds)?;
    let total: i64 = ranges.iter().map(read::PartitionRange::len).sum();
    if total == 0 {
        anyhow::bail!(
            "no records in the range of topic {:?} ({}): widen --from/--to or \
             --from-offset/--to-offset",
            args.topic,
            describe_ranges(&ranges)
        );
    }
    let mut report = report::Report::new(&args.topic, args.show_patients, args.examples);
    report.ranges = ranges.clone();
    let started = Instant::now();
    report.profiles_read = load_profiles(&consumer, &kafka, &mut baseline, &mut candidate)?;
    let progress = progress_bar(total as u64);
    read::read_ranges(&consumer, &args.topic, &ranges, |record| {
        let before = baseline.process(&record);
        let after = candidate.process(&record);
        report.add(&record, &before, &after);
        progress.inc(1);
    })?;
    progress.finish_and_clear();
    report.finish(started.elapsed());
    Ok(report)
}

fn parse_bounds(args: &ReplayArgs) -> anyhow::Result<read::Bounds> {
    Ok(read::Bounds {
        from_offsets: read::parse_offsets("--from-offset", &args.from_offset)?,
        to_offsets: read::parse_offsets("--to-offset", &args.to_offset)?,
        from_ms: args
            .from
            .as_deref()
            .map(|value| read::parse_time("--from", value))
            .transpose()?,
        to_ms: args
            .to
            .as_deref()
            .map(|value| read::parse_time("--to", value))
            .transpose()?,
    })
}

fn describe_ranges(ranges: &[read::PartitionRange]) -> String {
    let parts: Vec<String> = ranges
        .iter()
        .map(|range| {
            format!(
                "partition {} offsets {}..{}",
                range.partition, range.start, range.end
            )
        })
        .collect();
    parts.join(", ")
}

fn progress_bar(total: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} records {per_sec} eta {eta}")
            .expect("valid template"),
    )
}

/// Loads the patients topic in full into both pipelines; returns the records read.
fn load_profiles(
    consumer: &rdkafka::consumer::BaseConsumer,
    kafka: &KafkaConfig,
    baseline: &mut Pipeline,
    candidate: &mut Pipeline,
) -> anyhow::Result<u64> {
    let topic = &kafka.patients_topic;
    if let Err(error) = read::partitions(consumer, topic) {
        tracing::warn!(%error, topic, "no profiles loaded; readings without one get NEWS2 only");
        return Ok(0);
    }
    let mut rejected = 0u64;
    let read = read::read_all(consumer, topic, |record| {
        let outcome = baseline.apply_profile(&record);
        candidate.apply_profile(&record);
        if let ProfileOutcome::DeadLetter(dead) = outcome {
            rejected += 1;
            tracing::debug!(partition = record.partition, offset = record.offset, reason = %dead.reason, "profile rejected");
        }
    })?;
    if rejected > 0 {
        tracing::warn!(topic, rejected, "profile records rejected");
    }
    Ok(read as u64)
}

fn build(
    runtime: &Runtime,
    kafka: &KafkaConfig,
    configs: Vec<HospitalConfig>,
) -> anyhow::Result<Pipeline> {
    let mut hospitals = Vec::new();
    for config in configs {
        let set = load_component_set(runtime, &config).with_context(|| {
            format!("failed to load the components of hospital {:?}", config.id)
        })?;
        hospitals.push(Hospital::new(runtime, config, set)?);
    }
    Ok(Pipeline::new(hospitals, kafka.topic_hospitals.clone()))
}

/// The hospitals as configured: the hospital files, with each hospital's cached state
/// from the state directory in their place where the cache has all its components.
///
/// NOTE: the state directory is a cache of the control topic. A change made on the
/// control topic after this instance last ran is not seen here.
fn baseline_configs(hospitals_dir: &Path, state_dir: &Path) -> anyhow::Result<Vec<HospitalConfig>> {
    let mut configs = if hospitals_dir.exists() {
        load_hospitals(hospitals_dir)?
    } else {
        Vec::new()
    };
    for state in cached_states(state_dir)? {
        let config = config_from_state(state_dir, &state);
        match configs.iter_mut().find(|c| c.id == config.id) {
            Some(existing) => *existing = config,
            None => configs.push(config),
        }
    }
    if configs.is_empty() {
        anyhow::bail!(
            "no hospitals: neither {} nor the state directory {} names one; pass --hospitals \
             or --state-dir",
            hospitals_dir.display(),
            state_dir.display()
        );
    }
    Ok(configs)
}

/// Reads `<state dir>/hospitals/*.json`, skipping states whose components are missing.
fn cached_states(state_dir: &Path) -> anyhow::Result<Vec<HospitalState>> {
    let dir = state_dir.join("hospitals");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(Vec::new());
    };
    let mut states = Vec::new();
    for path in entries.filter_map(|entry| entry.ok().map(|entry| entry.path())) {
        if path.extension().is_none_or(|ext| ext != "json") {
            continue;
        }
        let bytes =
            std::fs::read(&path).with_context(|| format!("failed to read {}", path.display()))?;
        let state: HospitalState = serde_json::from_slice(&bytes)
            .with_context(|| format!("invalid cached state {}", path.display()))?;
        let complete = Role::ALL
            .iter()
            .all(|&role| component_path(state_dir, state.active.get(role)).exists());
        if complete {
            states.push(state);
        } else {
            tracing::warn!(hospital = %state.hospital, "cached state names missing components; using the hospital file");
        }
    }
    Ok(states)
}

fn component_path(state_dir: &Path, sha256: &str) -> PathBuf {
    state_dir.join("components").join(format!("{sha256}.wasm"))
}

fn config_from_state(state_dir: &Path, state: &HospitalState) -> HospitalConfig {
    HospitalConfig {
        id: state.hospital.clone(),
        name: state.name.clone(),
        components: crate::config::ComponentPaths {
            preprocess: component_path(state_dir, &state.active.preprocess),
            score: component_path(state_dir, &state.active.score),
            alert_rules: component_path(state_dir, &state.active.alert_rules),
        },
        thresholds: state.thresholds.clone(),
        scoring: state.scoring.clone(),
    }
}

/// The baseline with `--hospital`'s overrides applied.
fn candidate_configs(
    baseline: &[HospitalConfig],
    args: &ReplayArgs,
) -> anyhow::Result<Vec<HospitalConfig>> {
    let mut configs = baseline.to_vec();
    let Some(id) = &args.hospital else {
        return Ok(configs);
    };
    let Some(config) = configs.iter_mut().find(|config| &config.id == id) else {
        let known: Vec<&str> = baseline.iter().map(|config| config.id.as_str()).collect();
        anyhow::bail!(
            "unknown hospital {id:?}: expected one of {}",
            known.join(", ")
        );
    };
    let runtime = Runtime::new(Limits::default())?;
    let overrides = [
        (Role::Preprocess, "--preprocess", &args.preprocess),
        (Role::Score, "--score", &args.score),
        (Role::AlertRules, "--alert-rules", &args.alert_rules),
    ];
    for (role, option, path) in overrides {
        let Some(path) = path else { continue };
        check_component(&runtime, role, option, path)?;
        match role {
            Role::Preprocess => config.components.preprocess = path.clone(),
            Role::Score => config.components.score = path.clone(),
            Role::AlertRules => config.components.alert_rules = path.clone(),
        }
    }
    config.thresholds = override_thresholds(&config.thresholds, &args.thresholds)?;
    Ok(configs)
}

/// Checks that `path` exists and is a component of `role`'s world.
fn check_component(runtime: &Runtime, role: Role, option: &str, path: &Path) -> anyhow::Result<()> {
    if !path.exists() {
        anyhow::bail!("{option} {} not found: check the path", path.display());
    }
    runtime.load(role, path).map_err(|error| {
        anyhow::anyhow!(
            "invalid {option} {}: {error}: expected a {role:?} component built for its WIT world",
            path.display()
        )
    })?;
    Ok(())
}

/// Applies `name=value` overrides; the value is read as a TOML value, so `0.05`, `5`
/// and `true` keep their types.
fn override_thresholds(base: &Thresholds, overrides: &[String]) -> anyhow::Result<Thresholds> {
    let mut table = toml::Table::try_from(base).context("thresholds as TOML")?;
    for item in overrides {
        let Some((name, value)) = item.split_once('=') else {
            anyhow::bail!(
                "invalid --thresholds {item:?}: expected NAME=VALUE, e.g. model_probability=0.6"
            );
        };
        let name = name.trim();
        if !table.contains_key(name) {
            let known: Vec<&str> = table.keys().map(String::as_str).collect();
            anyhow::bail!(
                "unknown threshold {name:?}: expected one of {}",
                known.join(", ")
            );
        }
        let parsed: toml::Table =
            toml::from_str(&format!("value = {}", value.trim())).map_err(|_| {
                anyhow::anyhow!(
                    "invalid --thresholds {item:?}: {value:?} is not a number or boolean"
                )
            })?;
        table.insert(name.to_string(), parsed["value"].clone());
    }
    let thresholds: Thresholds = table
        .try_into()
        .map_err(|error| anyhow::anyhow!("invalid --thresholds: {error}"))?;
    thresholds
        .validate()
        .map_err(|message| anyhow::anyhow!("invalid --thresholds: {message}"))?;
    Ok(thresholds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_override_keeps_others() {
        let base = Thresholds::default();
        let changed = override_thresholds(&base, &["model_probability=0.05".into()]).unwrap();
        assert_eq!(changed.model_probability, 0.05);
        assert_eq!(changed.news2_urgent, base.news2_urgent);
    }

    #[test]
    fn threshold_override_rejects_unknown_name() {
        let error = override_thresholds(&Thresholds::default(), &["model_prob=0.5".into()])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("unknown threshold \"model_prob\""),
            "{error}"
        );
    }

    #[test]
    fn threshold_override_rejects_wrong_type() {
        let error = override_thresholds(&Thresholds::default(), &["news2_urgent=high".into()]);
        assert!(error.is_err());
    }
}
