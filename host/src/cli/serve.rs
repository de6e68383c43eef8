//! `up` and `run`: the host's consume loop, with or without the embedded cluster and
//! the simulator.

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use console::style;
use rdkafka::producer::FutureProducer;
use tokio::sync::{broadcast, watch};

use super::{HostArgs, HostFile, load_host_file};
use crate::admin::TokenStore;
use crate::config::{AdminConfig, KafkaConfig, load_hospitals};
use crate::embedded::EmbeddedCluster;
use crate::pipeline::output::AlertRecord;
use crate::pipeline::{Hospital, Pipeline, load_component_set};
use crate::runtime::{Limits, Runtime};
use crate::simulator::{SimConfig, SimHospital, Simulator, WireFormat};
use crate::source::Event;
use crate::source::Worker;
use crate::stats::Snapshot;
use crate::telemetry::Telemetry;
use crate::telemetry::metrics::Metrics;

/// Options of `up`.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    #[command(flatten)]
    host: HostArgs,
    /// Use this Kafka cluster instead of the embedded mock cluster.
    #[arg(long)]
    brokers: Option<String>,
    /// Number of simulated patients.
    #[arg(long, default_value_t = 60)]
    patients: usize,
    /// Event-time speed-up: simulated seconds per wall-clock second.
    #[arg(long, default_value_t = 20.0)]
    speed: f64,
    /// Share of patients that deteriorate, 0 to 1.
    #[arg(long, default_value_t = 0.25)]
    deteriorating_share: f64,
    /// Share of readings replaced by an invalid message, 0 to 1.
    #[arg(long, default_value_t = 0.01)]
    invalid_share: f64,
    /// Stop after this many wall-clock seconds (default: run until Ctrl-C).
    #[arg(long)]
    duration_s: Option<u64>,
    /// Random seed of the simulator.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Partitions per topic in the embedded cluster.
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// Address of the dashboard, metrics and health endpoints; overrides the config file.
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
}

/// Options of `run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    host: HostArgs,
    /// Kafka bootstrap servers; overrides the config file.
    #[arg(long)]
    brokers: Option<String>,
    /// Address of the dashboard, metrics and health endpoints; overrides the config file.
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
}

/// Loads every hospital and its components; component calls are timed into `metrics`.
pub fn build_pipeline(
    args: &HostArgs,
    kafka: &KafkaConfig,
    metrics: Option<Metrics>,
) -> anyhow::Result<Pipeline> {
    let mut runtime = Runtime::new(Limits::default())?;
    if let Some(metrics) = metrics {
        runtime = runtime.with_metrics(metrics);
    }
    let configs = load_hospitals(&args.hospitals)?;
    let mut hospitals = Vec::new();
    for config in configs {
        let paths = &config.components;
        for path in [&paths.preprocess, &paths.score, &paths.alert_rules] {
            if !path.exists() {
                anyhow::bail!(
                    "hospital {:?}: component {} not found: build the components with `./dev components`",
                    config.id,
                    path.display()
                );
            }
        }
        let set = load_component_set(&runtime, &config).with_context(|| {
            format!("failed to load the components of hospital {:?}", config.id)
        })?;
        tracing::info!(
            hospital = %config.id,
            model = %format!("{}@{}", set.model.name, set.model.version),
            score_sha256 = %set.infos[1].sha256,
            "hospital loaded"
        );
        hospitals.push(Hospital::new(&runtime, config, set)?);
    }
    Ok(Pipeline::new(hospitals, kafka.topic_hospitals.clone()))
}

/// The hospitals as the control topic has them, seeded from the hospital files, with
/// the follower that applies later changes through `activations` once spawned.
struct Hospitals {
    pipeline: Pipeline,
    registry: crate::registry::Registry,
    follower: crate::registry::Follower,
}

async fn start_registry(
    args: &HostArgs,
    file: &HostFile,
    kafka: &KafkaConfig,
    metrics: Metrics,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Hospitals> {
    let runtime = Runtime::new(Limits::default())?.with_metrics(metrics);
    let seeds = if args.hospitals.exists() {
        load_hospitals(&args.hospitals)?
    } else {
        Vec::new()
    };
    let mut config = file.registry.clone();
    if let Some(dir) = &args.state_dir {
        config.dir = dir.clone();
    }
    let (registry, hospitals, follower) =
        crate::registry::Registry::start(runtime, kafka, config, seeds, shutdown.clone()).await?;
    if hospitals.is_empty() {
        anyhow::bail!(
            "no hospitals: neither the control topic {} nor {} names one; add a hospital file",
            file.registry.control_topic,
            args.hospitals.display()
        );
    }
    if let Some(dir) = &file.registry.watch_dir {
        crate::registry::inbox::spawn(
            registry.clone(),
            dir.clone(),
            crate::registry::inbox::POLL_INTERVAL,
            shutdown,
        );
    }
    let pipeline = Pipeline::new(hospitals, kafka.topic_hospitals.clone())
        .with_quarantine_after(file.registry.quarantine_after);
    Ok(Hospitals {
        pipeline,
        registry,
        follower,
    })
}

/// Starts the consume loop with the registry's changes flowing into it.
async fn run_worker(
    kafka: KafkaConfig,
    hospitals: Hospitals,
    telemetry: Arc<Telemetry>,
    events: Option<broadcast::Sender<Event>>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let (activations_tx, activations_rx) = tokio::sync::mpsc::channel(16);
    let follower = tokio::spawn(hospitals.follower.run(activations_tx));
    let worker = Worker::new(kafka, hospitals.pipeline, telemetry.stats.clone(), events)?;
    let result = worker
        .with_telemetry(telemetry)
        .with_control(hospitals.registry, activations_rx)
        .run(shutdown)
        .await;
    follower.abort();
    result.map(|_| ())
}

/// Token digests from the config file.
fn token_store(admin: &AdminConfig) -> TokenStore {
    let mut tokens = TokenStore::default();
    for digest in &admin.operator_token_sha256 {
        tokens.add_operator_digest(digest.to_lowercase());
    }
    for (hospital, digests) in &admin.hospital_token_sha256 {
        for digest in digests {
            tokens.add_hospital_digest(digest.to_lowercase(), hospital.clone());
        }
    }
    tokens
}

/// Starts the InfluxDB sink when the config file has an `[influx]` table.
fn start_influx(file: &HostFile, telemetry: &Telemetry) -> anyhow::Result<()> {
    if let Some(config) = &file.influx {
        let sink = crate::sink::influx::InfluxSink::start(config)?;
        tracing::info!(url = %config.url, "writing predictions and alerts to InfluxDB");
        telemetry.set_influx(sink);
    }
    Ok(())
}

/// Flushes the InfluxDB sink at shutdown, for at most 10 s.
async fn flush_influx(telemetry: &Telemetry) {
    if let Some(sink) = telemetry.influx()
        && let Err(error) = sink.flush(Duration::from_secs(10)).await
    {
        tracing::warn!(%error, "InfluxDB points not written at shutdown");
    }
}

/// Loads the admin server's certificate and key when `[admin]` names them.
fn load_admin_tls(
    admin: &crate::config::AdminConfig,
) -> anyhow::Result<Option<Arc<tokio_rustls::rustls::ServerConfig>>> {
    Ok(crate::admin::tls::load(
        admin.tls_cert.as_deref(),
        admin.tls_key.as_deref(),
    )?)
}

/// `run`: consume until Ctrl-C.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let file = load_host_file(args.host.config.as_ref())?;
    // Before Kafka and the components, so that a bad certificate fails at once.
    let tls = load_admin_tls(&file.admin)?;
    let mut kafka = file.kafka.clone();
    if let Some(brokers) = args.brokers {
        kafka.brokers = brokers;
    }
    // Before the components load, so that a wrong password or CA fails within seconds.
    crate::source::check_brokers(&kafka).await?;
    let telemetry = Arc::new(Telemetry::default());
    let (shutdown_tx, shutdown) = watch::channel(false);
    let hospitals = start_registry(
        &args.host,
        &file,
        &kafka,
        telemetry.metrics.clone(),
        shutdown.clone(),
    )
    .await?;
    start_influx(&file, &telemetry)?;
    let listen = args.listen.unwrap_or(file.admin.listen);
    let tokens = Arc::new(token_store(&file.admin));
    let registry = Some(hospitals.registry.clone());
    let scheme = if tls.is_some() { "https" } else { "http" };
    let (address, _server) =
        crate::admin::serve_with_tls(listen, tls, telemetry.clone(), tokens, registry).await?;
    tracing::info!(
        scheme,
        %address,
        "dashboard, component API, /metrics, /healthz and /readyz listening"
    );
    tokio::spawn(async move {
        stop_requested().await;
        let _ = shutdown_tx.send(true);
    });
    let started = Instant::now();
    run_worker(kafka, hospitals, telemetry.clone(), None, shutdown).await?;
    print_summary(&telemetry.stats.snapshot(), started.elapsed());
    Ok(())
}

/// `up`: the embedded default.
pub async fn up(args: UpArgs) -> anyhow::Result<()> {
    let file = load_host_file(args.host.config.as_ref())?;
    // Before Kafka and the components, so that a bad certificate fails at once.
    let tls = load_admin_tls(&file.admin)?;
    let mut kafka = file.kafka.clone();
    let telemetry = Arc::new(Telemetry::default());
    let cluster = match &args.brokers {
        Some(brokers) => {
            kafka.brokers = brokers.clone();
            crate::source::check_brokers(&kafka).await?;
            None
        }
        None => {
            let cluster = EmbeddedCluster::start(1, &all_topics(&kafka), args.partitions)?;
            cluster.create_topic(&file.registry.control_topic, 1)?;
            kafka.brokers = cluster.bootstrap_servers().to_string();
            Some(cluster)
        }
    };
    let (shutdown_tx, shutdown) = watch::channel(false);
    let registered = start_registry(
        &args.host,
        &file,
        &kafka,
        telemetry.metrics.clone(),
        shutdown.clone(),
    )
    .await?;
    start_influx(&file, &telemetry)?;
    let hospitals = simulated_hospitals(&registered.pipeline, &kafka);
    println!(
        "cardiowatch up: {} hospitals, {} simulated patients, Kafka at {}{}",
        hospitals.len(),
        args.patients,
        kafka.brokers,
        if cluster.is_some() {
            " (embedded mock cluster)"
        } else {
            ""
        }
    );
    let mut tokens = token_store(&file.admin);
    let session_token = tokens.issue_operator_token();
    let listen = args.listen.unwrap_or(file.admin.listen);
    let registry = Some(registered.registry.clone());
    let scheme = if tls.is_some() { "https" } else { "http" };
    let (address, _server) =
        crate::admin::serve_with_tls(listen, tls, telemetry.clone(), Arc::new(tokens), registry)
            .await?;
    println!("dashboard: {scheme}://{address}/?token={session_token}");
    println!("metrics:   {scheme}://{address}/metrics");
    println!("alerts appear below; stop with Ctrl-C\n");

    let (events_tx, events_rx) = broadcast::channel(4096);
    let producer: FutureProducer = crate::source::create_producer(&kafka)?;
    let simulator = Simulator::new(sim_config(&args, &kafka, hospitals), now_ms());
    let sim_task = tokio::spawn(drive_simulator(
        simulator,
        producer,
        args.speed,
        shutdown.clone(),
    ));
    let print_task = tokio::spawn(print_events(events_rx));
    spawn_stop_signal(shutdown_tx, args.duration_s);

    let started = Instant::now();
    run_worker(
        kafka,
        registered,
        telemetry.clone(),
        Some(events_tx),
        shutdown,
    )
    .await?;
    let _ = sim_task.await;
    print_task.abort();
    flush_influx(&telemetry).await;
    print_summary(&telemetry.stats.snapshot(), started.elapsed());
    if let Some(cluster) = cluster {
        cluster.shutdown();
    }
    Ok(())
}

fn all_topics(kafka: &KafkaConfig) -> Vec<String> {
    let mut topics = kafka.vitals_topics.clone();
    topics.extend([
        kafka.patients_topic.clone(),
        kafka.predictions_topic.clone(),
        kafka.alerts_topic.clone(),
        kafka.dead_letter_topic.clone(),
        kafka.shadow_topic.clone(),
    ]);
    topics
}

/// Hospitals mapped to the legacy topic get legacy messages; the others canonical.
fn simulated_hospitals(pipeline: &Pipeline, kafka: &KafkaConfig) -> Vec<SimHospital> {
    let legacy: Vec<&String> = kafka.topic_hospitals.values().collect();
    let mut hospitals: Vec<SimHospital> = pipeline
        .hospitals()
        .map(|hospital| SimHospital {
            id: hospital.config.id.clone(),
            format: if legacy.contains(&&hospital.config.id) {
                WireFormat::Legacy
            } else {
                WireFormat::Canonical
            },
        })
        .collect();
    hospitals.sort_by(|a, b| a.id.cmp(&b.id));
    hospitals
}

fn sim_config(args: &UpArgs, kafka: &KafkaConfig, hospitals: Vec<SimHospital>) -> SimConfig {
    let legacy_topic = kafka
        .topic_hospitals
        .keys()
        .next()
        .cloned()
        .unwrap_or_else(|| "heart_data".into());
    SimConfig {
        patients: args.patients,
        hospitals,
        interval_s: 60,
        deteriorating_share: args.deteriorating_share,
        invalid_share: args.invalid_share,
        vitals_topic: kafka
            .vitals_topics
            .first()
            .cloned()
            .unwrap_or_else(|| "vitals".into()),
        legacy_topic,
        patients_topic: kafka.patients_topic.clone(),
        seed: args.seed,
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM, the signal orchestrators send to stop a
/// process, so that both drain outputs in flight and commit before exiting.
pub(super) async fn stop_requested() {
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match terminate.as_mut() {
                Some(signal) => { signal.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}

fn spawn_stop_signal(shutdown: watch::Sender<bool>, duration_s: Option<u64>) {
    tokio::spawn(async move {
        match duration_s {
            Some(seconds) => {
                tokio::select! {
                    _ = stop_requested() => {},
                    _ = tokio::time::sleep(Duration::from_secs(seconds)) => {},
                }
            }
            None => {
                stop_requested().await;
            }
        }
        let _ = shutdown.send(true);
    });
}

/// Produces profiles, then readings as simulated time passes, until shutdown.
async fn drive_simulator(
    mut simulator: Simulator,
    producer: FutureProducer,
    speed: f64,
    mut shutdown: watch::Receiver<bool>,
) {
    for message in simulator.profile_messages() {
        crate::cli::simulate::send(&producer, &message).await;
    }
    let start_ms = now_ms();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = crate::source::stopped(&mut shutdown) => return,
            _ = tick.tick() => {}
        }
        let elapsed = (now_ms() - start_ms) as f64 * speed;
        let event_now = start_ms + elapsed as i64;
        for message in simulator.readings_until(event_now) {
            crate::cli::simulate::send(&producer, &message).await;
        }
    }
}

async fn print_events(mut events: broadcast::Receiver<Event>) {
    let colour = std::io::stdout().is_terminal();
    loop {
        match events.recv().await {
            Ok(Event::Alert(alert)) => println!("{}", format_alert(&alert, colour)),
            Ok(Event::DeadLetter {
                topic,
                partition,
                offset,
                dead,
            }) => {
                let label = format!("{:<9}", "REJECTED");
                let label = if colour {
                    style(label).magenta().to_string()
                } else {
                    label
                };
                let hospital = printable(dead.hospital.as_deref().unwrap_or("-"));
                // The first line only: a trap's reason goes on with a wasm backtrace.
                let reason = printable(dead.reason.lines().next().unwrap_or_default());
                let kind = dead.kind.as_str();
                println!("{label} {hospital:<10} {topic}/{partition}@{offset} {kind}: {reason}");
            }
            Err(broadcast::error::RecvError::Lagged(skipped)) => {
                println!("({skipped} alerts not shown: the display fell behind)");
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Replaces control characters, so that an id from a message cannot drive the terminal.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

/// One readable line per alert; coloured by severity when `colour` is set. Model
/// alerts name the features that raised the risk most.
pub fn format_alert(alert: &AlertRecord, colour: bool) -> String {
    let severity = format!("{:<9}", alert.severity.to_uppercase());
    let severity = match (colour, alert.severity) {
        (false, _) => severity,
        (true, "emergency") => style(severity).red().bold().to_string(),
        (true, "urgent") => style(severity).yellow().bold().to_string(),
        (true, _) => style(severity).cyan().to_string(),
    };
    let mut line = format!(
        "{severity} {:<10} {:<8} {:<6} {}",
        printable(&alert.hospital),
        printable(&alert.patient_id),
        alert.kind,
        printable(&alert.reason)
    );
    if alert.kind == "model" && !alert.top_positive.is_empty() {
        let drivers: Vec<String> = alert
            .top_positive
            .iter()
            .map(|c| format!("{} {:+.2}", c.feature, c.contribution))
            .collect();
        line.push_str(&format!(" | raised by {}", drivers.join(", ")));
    }
    line
}

fn print_summary(stats: &Snapshot, elapsed: Duration) {
    let seconds = elapsed.as_secs_f64().max(1e-9);
    println!(
        "\nstopped after {:.1} s: {} messages ({:.0}/s), {} predictions ({} with the model), {} alerts, {} dead letters, {} profiles",
        seconds,
        stats.messages,
        stats.messages as f64 / seconds,
        stats.predictions,
        stats.scored,
        stats.alerts,
        stats.dead_letters,
        stats.profiles
    );
}
