//! The consume loop: vitals from a consumer group, profiles from the whole patients
//! topic, outputs produced, offsets committed only once every output is acknowledged.
//!
//! Delivery is at-least-once: after a crash or a rebalance, records whose outputs were
//! not all acknowledged are read again, so consumers of the output topics may see a
//! prediction twice. A record that cannot be processed becomes a dead letter and never
//! stalls its partition.

mod connect;
pub mod offsets;
pub mod profiles;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaResult;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::{broadcast, mpsc, watch};

use crate::config::KafkaConfig;
use crate::pipeline::output::AlertRecord;
use crate::pipeline::{DeadLetter, InputRecord, Outcome, Pipeline, ProfileOutcome};
use crate::sink::kafka::{OutputRecord, dead_letter, output_records};
use crate::stats::Stats;
use crate::telemetry::Telemetry;
use crate::telemetry::metrics::{Metrics, PartitionLabels, SinkLabels};
pub use connect::{ConnectError, check_brokers};
use offsets::{OffsetTracker, TopicPartition};

/// Records consumed but not yet fully acknowledged, beyond which the loop stops reading.
const MAX_IN_FLIGHT: usize = 10_000;
/// How often acknowledged offsets are committed.
const COMMIT_INTERVAL: Duration = Duration::from_millis(500);
/// Pause before re-sending outputs whose delivery failed.
const RETRY_BACKOFF: Duration = Duration::from_millis(500);
/// How long shutdown waits for outputs still in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds a client config with the brokers, the pass-through librdkafka settings and the
/// secrets loaded by [`KafkaConfig::validate_and_load_secrets`].
///
/// With TLS and no CA configured, it sets `ssl.ca.location` to `probe`. librdkafka then
/// looks for the system's CA certificates in the usual places, because the OpenSSL built
/// into this binary would otherwise look only under its own build-time directory.
pub fn client_config(kafka: &KafkaConfig) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &kafka.brokers);
    for (key, value) in &kafka.settings {
        config.set(key, value);
    }
    let ca_configured = ["ssl.ca.location", "ssl.ca.pem"]
        .iter()
        .any(|key| kafka.settings.contains_key(*key));
    if kafka.security_protocol().uses_tls() && !ca_configured {
        config.set("ssl.ca.location", "probe");
    }
    for (key, value) in kafka.secrets.iter() {
        config.set(key, value);
    }
    config
}

/// Creates the idempotent producer used for every output.
///
/// # Errors
///
/// A librdkafka configuration error, naming the setting.
pub fn create_producer(kafka: &KafkaConfig) -> KafkaResult<FutureProducer> {
    client_config(kafka)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .create()
}

/// Logs partition assignments and turns librdkafka statistics into the consumer lag
/// gauge. It keeps no offsets, so a rebalance only causes re-reads.
pub struct RebalanceLogger {
    metrics: Option<Metrics>,
    telemetry: Option<Arc<Telemetry>>,
}

impl ClientContext for RebalanceLogger {
    fn stats(&self, statistics: rdkafka::Statistics) {
        let Some(metrics) = &self.metrics else { return };
        for (topic, stats) in &statistics.topics {
            for (partition, partition_stats) in &stats.partitions {
                // librdkafka reports -1 for partitions this consumer does not fetch.
                if *partition < 0 || partition_stats.consumer_lag < 0 {
                    continue;
                }
                let labels = PartitionLabels {
                    topic: topic.clone(),
                    partition: partition.to_string(),
                };
                metrics
                    .consumer_lag
                    .get_or_create(&labels)
                    .set(partition_stats.consumer_lag);
            }
        }
    }
}

impl ConsumerContext for RebalanceLogger {
    fn post_rebalance(
        &self,
        _consumer: &rdkafka::consumer::BaseConsumer<Self>,
        rebalance: &Rebalance<'_>,
    ) {
        match rebalance {
            Rebalance::Assign(partitions) => {
                tracing::info!(partitions = partitions.count(), "partitions assigned");
                if let Some(telemetry) = &self.telemetry {
                    telemetry.set_consuming(true);
                }
            }
            Rebalance::Revoke(partitions) => {
                tracing::info!(partitions = partitions.count(), "partitions revoked");
            }
            Rebalance::Error(error) => tracing::warn!(%error, "rebalance failed"),
        }
    }
}

/// What the loop reports to a live display.
#[derive(Debug, Clone)]
pub enum Event {
    /// An alert was produced.
    Alert(Box<AlertRecord>),
    /// A record went to the dead-letter topic.
    DeadLetter {
        /// Source topic.
        topic: String,
        /// Source partition.
        partition: i32,
        /// Source offset.
        offset: i64,
        /// Why.
        dead: DeadLetter,
    },
}

/// Dead letters logged at info level before only every thousandth one is.
const DEAD_LETTER_LOG_BURST: u64 = 10;

/// The consume loop of one host instance.
pub struct Worker {
    kafka: KafkaConfig,
    pipeline: Pipeline,
    control: Option<Control>,
    producer: FutureProducer,
    stats: Arc<Stats>,
    events: Option<broadcast::Sender<Event>>,
    telemetry: Arc<Telemetry>,
}

/// Resolves once `shutdown` is true, including when it turned true before the call:
/// `changed()` alone would miss a stop sent while the loop was still starting.
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// The consume loop's link to the registry.
struct Control {
    registry: crate::registry::Registry,
    activations: mpsc::Receiver<crate::registry::Activation>,
}

/// The next hospital version to swap in; never resolves without a registry.
async fn next_activation(control: &mut Option<Control>) -> Option<crate::registry::Activation> {
    match control {
        Some(control) => control.activations.recv().await,
        None => std::future::pending().await,
    }
}

/// Resolves when every output of a record is acknowledged, with the record's position
/// when it must be committed (vitals) and `None` when it must not (patients).
type DeliveryFuture = std::pin::Pin<Box<dyn Future<Output = Option<(TopicPartition, i64)>> + Send>>;

impl Worker {
    /// Creates a worker; `events`, if given, receives every alert and dead letter.
    ///
    /// # Errors
    ///
    /// A librdkafka configuration error.
    pub fn new(
        kafka: KafkaConfig,
        pipeline: Pipeline,
        stats: Arc<Stats>,
        events: Option<broadcast::Sender<Event>>,
    ) -> KafkaResult<Self> {
        let producer = create_producer(&kafka)?;
        let telemetry = Arc::new(Telemetry::with_stats(stats.clone()));
        Ok(Worker {
            kafka,
            pipeline,
            control: None,
            producer,
            stats,
            events,
            telemetry,
        })
    }

    /// Reports to `telemetry` (metrics, dashboard, readiness) instead of a private one;
    /// its counters replace the ones passed to [`Worker::new`].
    pub fn with_telemetry(mut self, telemetry: Arc<Telemetry>) -> Self {
        self.stats = telemetry.stats.clone();
        self.telemetry = telemetry;
        self
    }

    /// Applies hospital versions from the control topic between records, and sends
    /// quarantine requests to the registry.
    pub fn with_control(
        mut self,
        registry: crate::registry::Registry,
        activations: mpsc::Receiver<crate::registry::Activation>,
    ) -> Self {
        self.control = Some(Control {
            registry,
            activations,
        });
        self
    }

    /// Swaps in a hospital version between two records.
    fn activate(&mut self, activation: crate::registry::Activation) {
        let id = activation.hospital.config.id.clone();
        let set = activation.hospital.components().clone();
        self.pipeline.activate(activation.hospital);
        self.telemetry.register_pipeline(&self.pipeline);
        if let Some(control) = &self.control {
            control.registry.mark_applied(&id, activation.revision);
        }
        tracing::info!(
            hospital = %id,
            revision = activation.revision,
            preprocess = %set.info(crate::runtime::Role::Preprocess).sha256,
            score = %set.info(crate::runtime::Role::Score).sha256,
            alert_rules = %set.info(crate::runtime::Role::AlertRules).sha256,
            "hospital version live"
        );
    }

    fn send_quarantine_requests(&mut self) {
        let requests = self.pipeline.take_quarantine_requests();
        let Some(control) = &self.control else {
            return;
        };
        for request in requests {
            let labels = crate::telemetry::metrics::HospitalLabels {
                hospital: request.hospital.clone(),
            };
            self.telemetry
                .metrics
                .quarantines
                .get_or_create(&labels)
                .inc();
            let registry = control.registry.clone();
            tokio::spawn(async move {
                registry
                    .quarantine(
                        &request.hospital,
                        request.role,
                        &request.sha256,
                        &request.reason,
                    )
                    .await;
            });
        }
    }

    /// Consumes until `shutdown` turns true, then drains outputs in flight and commits.
    ///
    /// # Errors
    ///
    /// A Kafka error that prevents consuming at all (bad configuration, subscription), or
    /// a [`ConnectError`] when the start-up check fails or the consumer reports a failed
    /// authentication or TLS handshake.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<Pipeline> {
        check_brokers(&self.kafka).await?;
        tracing::info!(brokers = %self.kafka.brokers, "Kafka brokers returned metadata");
        let mut in_flight: FuturesUnordered<DeliveryFuture> = FuturesUnordered::new();
        let (profile_tx, mut profile_rx) = mpsc::channel(1024);
        let profile_task = profiles::spawn(self.kafka.clone(), profile_tx, shutdown.clone())?;
        self.bootstrap_profiles(&mut profile_rx, &mut shutdown, &mut in_flight)
            .await;

        self.telemetry.register_pipeline(&self.pipeline);
        let consumer = self.create_consumer()?;
        let topics: Vec<&str> = self
            .kafka
            .vitals_topics
            .iter()
            .map(String::as_str)
            .collect();
        consumer.subscribe(&topics)?;
        tracing::info!(topics = ?topics, group = %self.kafka.group_id, "subscribed; ready once partitions are assigned");

        let mut tracker = OffsetTracker::default();
        let mut consume_errors = 0u64;
        let mut fatal = None;
        let mut commit_tick = tokio::time::interval(COMMIT_INTERVAL);
        loop {
            tokio::select! {
                biased;
                _ = crate::source::stopped(&mut shutdown) => break,
                Some(done) = in_flight.next() => {
                    if let Some((partition, offset)) = done {
                        tracker.finish(&partition, offset);
                    }
                }
                _ = commit_tick.tick() => commit(&consumer, &mut tracker, CommitMode::Async),
                Some(profile) = profile_rx.recv() => self.apply_profile(profile, &mut in_flight),
                Some(activation) = next_activation(&mut self.control) => self.activate(activation),
                message = consumer.recv(), if in_flight.len() < MAX_IN_FLIGHT => match message {
                    Ok(message) => self.handle(&message, &mut tracker, &mut in_flight),
                    Err(error) => {
                        fatal = connect::fatal_consume_error(&self.kafka, &error);
                        if fatal.is_some() {
                            tracing::error!(%error, "Kafka authentication or TLS failed; stopping");
                            break;
                        }
                        consume_failed(&error, &mut consume_errors).await;
                    }
                },
            }
        }
        self.telemetry.set_consuming(false);
        self.drain(&consumer, &mut tracker, &mut in_flight).await;
        profile_task.abort();
        match fatal {
            Some(error) => Err(error.into()),
            None => Ok(self.pipeline),
        }
    }

    fn create_consumer(&self) -> KafkaResult<StreamConsumer<RebalanceLogger>> {
        let mut config = client_config(&self.kafka);
        config
            .set("group.id", &self.kafka.group_id)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set("statistics.interval.ms", "5000");
        config.create_with_context(RebalanceLogger {
            metrics: Some(self.telemetry.metrics.clone()),
            telemetry: Some(self.telemetry.clone()),
        })
    }

    /// Applies profiles until the patients topic has been read to its end, so that the
    /// first vitals already find the profiles that were published before them.
    async fn bootstrap_profiles(
        &mut self,
        profile_rx: &mut mpsc::Receiver<profiles::ProfileEvent>,
        shutdown: &mut watch::Receiver<bool>,
        in_flight: &mut FuturesUnordered<DeliveryFuture>,
    ) {
        loop {
            tokio::select! {
                _ = crate::source::stopped(shutdown) => return,
                event = profile_rx.recv() => match event {
                    Some(profiles::ProfileEvent::Record(record)) => {
                        self.apply_profile(profiles::ProfileEvent::Record(record), in_flight);
                    }
                    Some(profiles::ProfileEvent::CaughtUp) | None => break,
                },
            }
        }
        let loaded = self
            .stats
            .profiles
            .load(std::sync::atomic::Ordering::Relaxed);
        tracing::info!(profiles = loaded, "profiles loaded");
    }

    fn apply_profile(
        &mut self,
        event: profiles::ProfileEvent,
        in_flight: &mut FuturesUnordered<DeliveryFuture>,
    ) {
        let profiles::ProfileEvent::Record(record) = event else {
            return;
        };
        match crate::runtime::guest_calls(|| self.pipeline.apply_profile(&record)) {
            ProfileOutcome::Stored => Stats::bump(&self.stats.profiles),
            ProfileOutcome::DeadLetter(dead) => {
                Stats::bump(&self.stats.dead_letters);
                tracing::warn!(topic = %record.topic, partition = record.partition, offset = record.offset, kind = dead.kind.as_str(), "profile record rejected");
                let output = dead_letter(&self.kafka.dead_letter_topic, &record, &dead);
                in_flight.push(deliver(
                    self.producer.clone(),
                    vec![output],
                    None,
                    self.telemetry.clone(),
                ));
            }
        }
    }

    fn handle(
        &mut self,
        message: &BorrowedMessage<'_>,
        tracker: &mut OffsetTracker,
        in_flight: &mut FuturesUnordered<DeliveryFuture>,
    ) {
        let record = to_input_record(message);
        let span = tracing::debug_span!("record", topic = %record.topic, partition = record.partition, offset = record.offset);
        let _entered = span.enter();
        Stats::bump(&self.stats.messages);
        let outcome = crate::runtime::guest_calls(|| self.pipeline.process(&record));
        self.send_quarantine_requests();
        if let (
            Outcome::Scored {
                shadow: Some(shadow),
                ..
            },
            Some(control),
        ) = (&outcome, &self.control)
        {
            control.registry.record_shadow(shadow);
        }
        self.count(&record, &outcome);
        let outputs = output_records(&self.kafka, &record, &outcome);
        let partition: TopicPartition = (record.topic.clone(), record.partition);
        tracker.start(&partition, record.offset);
        let position = Some((partition, record.offset));
        in_flight.push(deliver(
            self.producer.clone(),
            outputs,
            position,
            self.telemetry.clone(),
        ));
    }

    fn count(&self, record: &InputRecord, outcome: &Outcome) {
        self.telemetry.record_outcome(outcome);
        match outcome {
            Outcome::Scored {
                prediction, alerts, ..
            } => {
                Stats::bump(&self.stats.predictions);
                if prediction.model.is_some() {
                    Stats::bump(&self.stats.scored);
                }
                for alert in alerts {
                    Stats::bump(&self.stats.alerts);
                    if let Some(sender) = &self.events {
                        let _ = sender.send(Event::Alert(Box::new(alert.clone())));
                    }
                }
            }
            Outcome::DeadLetter(dead) => {
                Stats::bump(&self.stats.dead_letters);
                self.log_dead_letter(record, dead);
                if let Some(sender) = &self.events {
                    let _ = sender.send(Event::DeadLetter {
                        topic: record.topic.clone(),
                        partition: record.partition,
                        offset: record.offset,
                        dead: dead.clone(),
                    });
                }
            }
        }
    }

    /// Logs a dead letter by its coordinates, never its reason, which may quote vitals.
    /// After a burst, only every thousandth is logged at info level.
    fn log_dead_letter(&self, record: &InputRecord, dead: &DeadLetter) {
        let total = self
            .stats
            .dead_letters
            .load(std::sync::atomic::Ordering::Relaxed);
        let hospital = dead.hospital.as_deref().unwrap_or("-");
        if total <= DEAD_LETTER_LOG_BURST || total.is_multiple_of(1000) {
            tracing::info!(
                topic = %record.topic,
                partition = record.partition,
                offset = record.offset,
                hospital,
                kind = dead.kind.as_str(),
                dead_letters_total = total,
                "record sent to the dead-letter topic"
            );
        } else {
            tracing::debug!(topic = %record.topic, partition = record.partition, offset = record.offset, hospital, kind = dead.kind.as_str(), "record sent to the dead-letter topic");
        }
    }

    async fn drain(
        &mut self,
        consumer: &StreamConsumer<RebalanceLogger>,
        tracker: &mut OffsetTracker,
        in_flight: &mut FuturesUnordered<DeliveryFuture>,
    ) {
        let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
        while !in_flight.is_empty() {
            match tokio::time::timeout_at(deadline, in_flight.next()).await {
                Ok(Some(Some((partition, offset)))) => tracker.finish(&partition, offset),
                Ok(Some(None)) => {}
                Ok(None) => break,
                Err(_) => {
                    tracing::warn!(
                        in_flight = in_flight.len(),
                        "outputs still in flight at shutdown; their records will be read again"
                    );
                    break;
                }
            }
        }
        commit(consumer, tracker, CommitMode::Sync);
    }
}

/// Logs a failed consume (the first ten, then every hundredth) and backs off for a
/// second, so that an unreachable cluster neither floods the log nor spins the loop.
async fn consume_failed(error: &rdkafka::error::KafkaError, count: &mut u64) {
    *count += 1;
    if *count <= 10 || count.is_multiple_of(100) {
        tracing::warn!(%error, failures = *count, "consume failed; retrying in 1 s (check the brokers)");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
}

fn commit<C: ConsumerContext>(
    consumer: &StreamConsumer<C>,
    tracker: &mut OffsetTracker,
    mode: CommitMode,
) {
    let ready = tracker.take_committable();
    if ready.is_empty() {
        return;
    }
    let mut list = TopicPartitionList::new();
    for ((topic, partition), position) in &ready {
        if let Err(error) = list.add_partition_offset(topic, *partition, Offset::Offset(*position))
        {
            tracing::warn!(%error, topic, partition, "invalid commit position");
        }
    }
    if let Err(error) = consumer.commit(&list, mode) {
        tracing::warn!(%error, "offset commit failed; the next commit retries it");
    }
}

/// Produces `outputs`, re-sending any that fail, and resolves with `position` once all
/// are acknowledged.
fn deliver(
    producer: FutureProducer,
    outputs: Vec<OutputRecord>,
    position: Option<(TopicPartition, i64)>,
    telemetry: Arc<Telemetry>,
) -> DeliveryFuture {
    Box::pin(async move {
        let mut pending = outputs;
        while !pending.is_empty() {
            let sends = pending.iter().map(|output| {
                let mut record =
                    FutureRecord::<[u8], [u8]>::to(&output.topic).payload(&output.payload);
                if let Some(key) = &output.key {
                    record = record.key(key);
                }
                if !output.headers.is_empty() {
                    record = record.headers(output.owned_headers());
                }
                producer.send(record, Timeout::After(Duration::from_secs(30)))
            });
            let results = futures::future::join_all(sends).await;
            let failed: Vec<OutputRecord> = pending
                .iter()
                .zip(results)
                .filter_map(|(output, result)| match result {
                    Ok(_) => None,
                    Err((error, _)) => {
                        tracing::warn!(%error, topic = %output.topic, "output delivery failed; retrying");
                        Stats::bump(&telemetry.stats.delivery_retries);
                        let labels = SinkLabels { sink: "kafka".into() };
                        telemetry.metrics.sink_errors.get_or_create(&labels).inc();
                        Some(output.clone())
                    }
                })
                .collect();
            if !failed.is_empty() {
                tokio::time::sleep(RETRY_BACKOFF).await;
            }
            pending = failed;
        }
        position
    })
}

/// Copies a consumed message into an owned record.
pub fn to_input_record(message: &BorrowedMessage<'_>) -> InputRecord {
    let headers = message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|header| (header.key.to_string(), header.value.map(<[u8]>::to_vec)))
                .collect()
        })
        .unwrap_or_default();
    InputRecord {
        topic: message.topic().to_string(),
        partition: message.partition(),
        offset: message.offset(),
        key: message.key().map(<[u8]>::to_vec),
        payload: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        headers,
        timestamp_ms: message.timestamp().to_millis(),
    }
}
