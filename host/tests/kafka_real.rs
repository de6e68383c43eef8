//! End to end against a real Apache Kafka broker, started by `scripts/kafka.sh start`
//! (which `./dev test` runs): one outcome per record, a consumer group split across two
//! workers with a rebalance, and commit and resume across a restart.
//!
//! Each test creates its own topics with 4 partitions and its own consumer group, so the
//! tests share one broker without seeing each other's records.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cardiowatch::config::KafkaConfig;
use cardiowatch::pipeline::{Hospital, Pipeline, load_component_set};
use cardiowatch::source::{Worker, client_config};
use cardiowatch::stats::Stats;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

const PARTITIONS: i32 = 4;
/// Patients with a profile; vitals keys cycle through them.
const PATIENTS: usize = 12;

/// Bootstrap servers of the broker that `scripts/kafka.sh start` runs.
fn brokers() -> String {
    std::env::var("CARDIOWATCH_TEST_KAFKA_BROKERS").unwrap_or_else(|_| {
        panic!(
            "CARDIOWATCH_TEST_KAFKA_BROKERS is not set: run `scripts/kafka.sh start` and \
             `source target/kafka.env`, or run `./dev test`"
        )
    })
}

/// Builds a config whose topics and group are named after `test` with a unique suffix.
fn kafka_config(test: &str) -> KafkaConfig {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let prefix = format!("{test}-{}-{nanos}", std::process::id());
    let name = |role: &str| format!("{prefix}-{role}");
    KafkaConfig {
        brokers: brokers(),
        group_id: name("group"),
        vitals_topics: vec![name("vitals"), name("heart_data")],
        patients_topic: name("patients"),
        predictions_topic: name("predictions"),
        alerts_topic: name("alerts"),
        dead_letter_topic: name("dead-letters"),
        topic_hospitals: BTreeMap::from([(name("heart_data"), "legacy".to_string())]),
        ..KafkaConfig::default()
    }
}

fn vitals_topic(kafka: &KafkaConfig) -> &str {
    &kafka.vitals_topics[0]
}

fn legacy_topic(kafka: &KafkaConfig) -> &str {
    &kafka.vitals_topics[1]
}

/// Creates every topic of `kafka` with [`PARTITIONS`] partitions and one replica.
async fn create_topics(kafka: &KafkaConfig) {
    let admin: AdminClient<DefaultClientContext> = client_config(kafka).create().unwrap();
    let mut names = kafka.vitals_topics.clone();
    names.extend([
        kafka.patients_topic.clone(),
        kafka.predictions_topic.clone(),
        kafka.alerts_topic.clone(),
        kafka.dead_letter_topic.clone(),
    ]);
    let topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|name| NewTopic::new(name, PARTITIONS, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin.create_topics(&topics, &options).await.unwrap();
    for result in results {
        assert!(result.is_ok(), "topic creation failed: {result:?}");
    }
}

/// Builds a pipeline over the demonstration hospitals that reads the test's legacy topic
/// as the `legacy` hospital's feed.
fn pipeline(kafka: &KafkaConfig) -> Pipeline {
    let runtime = common::runtime();
    let hospitals = common::hospital_configs()
        .into_iter()
        .map(|config| {
            let set = load_component_set(&runtime, &config).expect("components load");
            Hospital::new(&runtime, config, set).expect("instances start")
        })
        .collect();
    Pipeline::new(hospitals, kafka.topic_hospitals.clone())
}

/// One input record: topic, key, headers, payload.
struct Input {
    topic: String,
    key: String,
    headers: Vec<(&'static str, &'static str)>,
    payload: Value,
}

/// Builds the `index`th valid input: canonical vitals for `st-marys`, and every fourth one a
/// legacy record, which names its format in a header because the test's legacy topic is
/// not called `heart_data`.
fn valid_input(kafka: &KafkaConfig, index: usize) -> Input {
    let i = index as i64;
    if index % 4 == 3 {
        let payload = json!({"id": i, "age": 40 + i % 30, "gender": i % 2, "height": 168,
            "weight": 75, "ap_hi": 120 + i % 40, "ap_lo": 80, "cholesterol": 1 + i % 3,
            "gluc": 1, "smoke": 0, "alco": 0, "active": 1});
        return Input {
            topic: legacy_topic(kafka).into(),
            key: format!("{i}"),
            headers: vec![("cardiowatch-format", "legacy-json")],
            payload,
        };
    }
    let payload = json!({"time_ms": 1_796_379_300_000i64 + i * 60_000,
        "vitals": {"heart_rate_bpm": 60 + i % 50, "respiratory_rate_per_min": 16,
            "spo2_percent": 97, "systolic_bp_mmhg": 125, "diastolic_bp_mmhg": 80,
            "temperature_celsius": 36.9}});
    Input {
        topic: vitals_topic(kafka).into(),
        key: format!("p-{:03}", index % PATIENTS),
        headers: vec![("hospital-id", "st-marys")],
        payload,
    }
}

/// Builds invalid inputs in both formats: an implausible value, an unknown hospital, a
/// legacy record missing fields, a misspelt field and a payload that is not a JSON object.
fn invalid_inputs(kafka: &KafkaConfig) -> Vec<Input> {
    let vitals = |key: &str, hospital, payload| Input {
        topic: vitals_topic(kafka).into(),
        key: key.into(),
        headers: vec![("hospital-id", hospital)],
        payload,
    };
    vec![
        vitals(
            "p-bad1",
            "st-marys",
            json!({"vitals": {"heart_rate_bpm": 412}}),
        ),
        vitals(
            "p-bad2",
            "atlantis",
            json!({"vitals": {"heart_rate_bpm": 80}}),
        ),
        vitals("p-bad3", "st-marys", json!({"vitals": {"heart_rte": 80}})),
        vitals("p-bad4", "st-marys", json!("not an object")),
        Input {
            topic: legacy_topic(kafka).into(),
            key: "99".into(),
            headers: vec![("cardiowatch-format", "legacy-json")],
            payload: json!({"id": 99, "age": 50}),
        },
        Input {
            topic: legacy_topic(kafka).into(),
            key: "98".into(),
            headers: vec![],
            payload: json!({"id": 98, "ap_hi": 16020}),
        },
    ]
}

fn producer(kafka: &KafkaConfig) -> BaseProducer {
    client_config(kafka).create().unwrap()
}

/// Publishes a profile for every patient that [`valid_input`] uses.
fn produce_profiles(kafka: &KafkaConfig) {
    let producer = producer(kafka);
    let profile = json!({"profile": {"age_years": 61, "sex": "female", "height_cm": 160,
        "weight_kg": 70, "cholesterol_category": 2, "glucose_category": 1, "smoker": false,
        "alcohol": false, "physically_active": true}})
    .to_string();
    for i in 0..PATIENTS {
        let key = format!("p-{i:03}");
        let headers = OwnedHeaders::new().insert(Header {
            key: "hospital-id",
            value: Some("st-marys"),
        });
        let record = BaseRecord::to(&kafka.patients_topic)
            .key(&key)
            .payload(&profile)
            .headers(headers);
        producer.send(record).unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
}

fn produce(kafka: &KafkaConfig, inputs: &[Input]) {
    let producer = producer(kafka);
    for input in inputs {
        let payload = input.payload.to_string();
        let mut headers = OwnedHeaders::new();
        for (key, value) in &input.headers {
            headers = headers.insert(Header {
                key,
                value: Some(*value),
            });
        }
        let record = BaseRecord::to(&input.topic)
            .key(&input.key)
            .payload(&payload)
            .headers(headers);
        producer.send(record).unwrap();
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(10)).unwrap();
}

/// Produces valid inputs `range` in chunks of `chunk`, pausing `pause` after each, so that
/// workers see a stream rather than one batch.
fn produce_stream(
    kafka: &KafkaConfig,
    range: std::ops::Range<usize>,
    chunk: usize,
    pause: Duration,
) {
    let indexes: Vec<usize> = range.collect();
    for part in indexes.chunks(chunk) {
        let inputs: Vec<Input> = part.iter().map(|&i| valid_input(kafka, i)).collect();
        produce(kafka, &inputs);
        std::thread::sleep(pause);
    }
}

/// One record of the predictions or dead-letter topic, reduced to what the tests check.
#[derive(Debug, Clone)]
struct Output {
    dead_letter: bool,
    status: Option<String>,
    has_reason: bool,
    /// Topic, partition and offset of the input record it came from.
    source: (String, i32, i64),
}

fn header(message: &impl Message, name: &str) -> Option<String> {
    let headers = message.headers()?;
    let header = headers.iter().find(|h| h.key == name)?;
    Some(String::from_utf8_lossy(header.value.unwrap_or_default()).into_owned())
}

fn to_output(kafka: &KafkaConfig, message: &impl Message) -> Output {
    if message.topic() == kafka.dead_letter_topic {
        let coordinate = |name: &str| {
            header(message, name).unwrap_or_else(|| panic!("dead letter without {name}"))
        };
        let source = (
            coordinate("cardiowatch-source-topic"),
            coordinate("cardiowatch-source-partition").parse().unwrap(),
            coordinate("cardiowatch-source-offset").parse().unwrap(),
        );
        let has_reason = header(message, "cardiowatch-error").is_some_and(|e| !e.is_empty());
        return Output {
            dead_letter: true,
            status: None,
            has_reason,
            source,
        };
    }
    let body: Value = serde_json::from_slice(message.payload().unwrap()).unwrap();
    let source = &body["source"];
    Output {
        dead_letter: false,
        status: body["status"].as_str().map(str::to_string),
        has_reason: false,
        source: (
            source["topic"].as_str().unwrap().into(),
            source["partition"].as_i64().unwrap() as i32,
            source["offset"].as_i64().unwrap(),
        ),
    }
}

/// Reads the predictions and dead-letter topics from the beginning until `expected`
/// distinct inputs have an output (or the timeout), then 2 s more, so that an unexpected
/// extra record is seen too.
fn collect(kafka: &KafkaConfig, expected: usize, timeout: Duration) -> Vec<Output> {
    let consumer: BaseConsumer = client_config(kafka)
        .set("group.id", format!("{}-reader", kafka.group_id))
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for topic in [&kafka.predictions_topic, &kafka.dead_letter_topic] {
        for partition in 0..PARTITIONS {
            list.add_partition_offset(topic, partition, Offset::Beginning)
                .unwrap();
        }
    }
    consumer.assign(&list).unwrap();
    let mut deadline = Instant::now() + timeout;
    let mut outputs = Vec::new();
    let mut sources = BTreeSet::new();
    let mut settling = false;
    while Instant::now() < deadline {
        if !settling && sources.len() >= expected {
            settling = true;
            deadline = Instant::now() + Duration::from_secs(2);
        }
        let Some(Ok(message)) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let output = to_output(kafka, &message);
        sources.insert(output.source.clone());
        outputs.push(output);
    }
    outputs
}

/// Coordinates of every record in the vitals topics.
fn all_inputs(kafka: &KafkaConfig) -> BTreeSet<(String, i32, i64)> {
    common::end_offsets(kafka, PARTITIONS)
        .into_iter()
        .flat_map(|((topic, partition), high)| {
            (0..high).map(move |offset| (topic.clone(), partition, offset))
        })
        .collect()
}

/// A running worker: its counters, its stop signal and its task.
struct Running {
    stats: Arc<Stats>,
    stop: watch::Sender<bool>,
    task: JoinHandle<anyhow::Result<Pipeline>>,
}

fn start_worker(kafka: &KafkaConfig) -> Running {
    let stats = Arc::new(Stats::default());
    let worker = Worker::new(kafka.clone(), pipeline(kafka), stats.clone(), None).unwrap();
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(worker.run(shutdown));
    Running { stats, stop, task }
}

impl Running {
    fn messages(&self) -> u64 {
        self.stats.snapshot().messages
    }

    /// Signals shutdown and waits for the drain and the final commit.
    async fn stop(self) -> u64 {
        self.stop.send(true).unwrap();
        self.task.await.unwrap().unwrap();
        self.stats.snapshot().messages
    }
}

/// Polls `condition` every 200 ms until it returns true or `timeout` passes.
async fn wait_for(timeout: Duration, condition: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !condition() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    true
}

/// Waits until the group's committed offsets reach the end of every vitals partition.
async fn wait_for_commits(kafka: &KafkaConfig, timeout: Duration) {
    let expected = common::end_offsets(kafka, PARTITIONS);
    let deadline = Instant::now() + timeout;
    let mut offsets = common::committed_offsets(kafka, PARTITIONS);
    while offsets != expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(300)).await;
        offsets = common::committed_offsets(kafka, PARTITIONS);
    }
    assert_eq!(offsets, expected, "committed offsets reach the end");
}

/// Inputs that have more than one output.
fn duplicates(outputs: &[Output]) -> usize {
    let distinct: BTreeSet<_> = outputs.iter().map(|o| &o.source).collect();
    outputs.len() - distinct.len()
}

/// Inputs with no output.
fn missing(kafka: &KafkaConfig, outputs: &[Output]) -> Vec<(String, i32, i64)> {
    let seen: BTreeSet<_> = outputs.iter().map(|o| o.source.clone()).collect();
    all_inputs(kafka)
        .into_iter()
        .filter(|input| !seen.contains(input))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_has_one_outcome() {
    let kafka = kafka_config("outcomes");
    create_topics(&kafka).await;
    produce_profiles(&kafka);
    let invalid = invalid_inputs(&kafka);
    let mut inputs: Vec<Input> = (0..80).map(|i| valid_input(&kafka, i)).collect();
    let valid = inputs.len();
    inputs.extend(invalid_inputs(&kafka));
    produce(&kafka, &inputs);

    let worker = start_worker(&kafka);
    let reader_kafka = kafka.clone();
    let expected = inputs.len();
    let outputs = tokio::task::spawn_blocking(move || {
        collect(&reader_kafka, expected, Duration::from_secs(60))
    })
    .await
    .unwrap();
    wait_for_commits(&kafka, Duration::from_secs(30)).await;
    let consumed = worker.stop().await;

    assert_eq!(outputs.len(), inputs.len(), "one output per input record");
    assert_eq!(duplicates(&outputs), 0, "no input has two outputs");
    assert_eq!(
        missing(&kafka, &outputs),
        vec![],
        "every input has an output"
    );
    let dead: Vec<&Output> = outputs.iter().filter(|o| o.dead_letter).collect();
    assert_eq!(dead.len(), invalid.len(), "dead letters");
    assert!(
        dead.iter().all(|o| o.has_reason),
        "a dead letter without a reason: {dead:?}"
    );
    let scored = outputs
        .iter()
        .filter(|o| o.status.as_deref() == Some("scored"))
        .count();
    assert_eq!(
        scored, valid,
        "every valid record had a profile, so the model ran"
    );
    assert_eq!(consumed as usize, inputs.len(), "records consumed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_splits_and_rebalances() {
    let kafka = kafka_config("rebalance");
    create_topics(&kafka).await;
    produce_profiles(&kafka);
    let first = start_worker(&kafka);
    let second = start_worker(&kafka);

    // Produce until both workers have consumed something, which shows that the group
    // split the partitions between them.
    let mut produced = 0;
    let both_consumed =
        |first: &Running, second: &Running| first.messages() > 0 && second.messages() > 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !both_consumed(&first, &second) && Instant::now() < deadline {
        let batch: Vec<Input> = (produced..produced + 20)
            .map(|i| valid_input(&kafka, i))
            .collect();
        produce(&kafka, &batch);
        produced += 20;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(first.messages() > 0, "the first worker consumed no record");
    assert!(
        second.messages() > 0,
        "the second worker consumed no record"
    );

    // Keep producing while the second worker leaves the group, then produce the rest
    // to the remaining worker.
    let stream_kafka = kafka.clone();
    let stream = tokio::task::spawn_blocking(move || {
        produce_stream(
            &stream_kafka,
            produced..produced + 400,
            20,
            Duration::from_millis(50),
        )
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second_consumed = second.stop().await;
    stream.await.unwrap();
    produce(&kafka, &invalid_inputs(&kafka));

    let total = all_inputs(&kafka).len();
    let reader_kafka = kafka.clone();
    let outputs =
        tokio::task::spawn_blocking(move || collect(&reader_kafka, total, Duration::from_secs(60)))
            .await
            .unwrap();
    wait_for_commits(&kafka, Duration::from_secs(30)).await;
    let first_consumed = first.stop().await;

    assert_eq!(
        missing(&kafka, &outputs),
        vec![],
        "every input has an output"
    );
    // At-least-once: a record whose outputs the leaving worker produced but whose offset
    // it had not committed yet is read again by the new owner of its partition.
    let redelivered = duplicates(&outputs);
    println!(
        "rebalance: {total} inputs, worker 1 consumed {first_consumed}, worker 2 consumed \
         {second_consumed}, {redelivered} outputs duplicated by redelivery"
    );
    assert_eq!(
        (first_consumed + second_consumed) as usize,
        total + redelivered,
        "every consumed record had an output, and every duplicate came from a record read twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_from_commits() {
    let kafka = kafka_config("resume");
    create_topics(&kafka).await;
    produce_profiles(&kafka);
    let first_batch: Vec<Input> = (0..100).map(|i| valid_input(&kafka, i)).collect();
    produce(&kafka, &first_batch);

    // The first worker stops while the second batch is still arriving.
    let first = start_worker(&kafka);
    assert!(
        wait_for(Duration::from_secs(60), || first.messages() >= 100).await,
        "the first worker consumed {} of the first 100 records",
        first.messages()
    );
    let stream_kafka = kafka.clone();
    let stream = tokio::task::spawn_blocking(move || {
        produce_stream(&stream_kafka, 100..300, 20, Duration::from_millis(50))
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let first_consumed = first.stop().await;
    let at_stop: i64 = common::committed_offsets(&kafka, PARTITIONS).values().sum();
    stream.await.unwrap();

    let second = start_worker(&kafka);
    let rest: Vec<Input> = (300..400).map(|i| valid_input(&kafka, i)).collect();
    produce(&kafka, &rest);
    let total = all_inputs(&kafka).len();
    let reader_kafka = kafka.clone();
    let outputs =
        tokio::task::spawn_blocking(move || collect(&reader_kafka, total, Duration::from_secs(60)))
            .await
            .unwrap();
    wait_for_commits(&kafka, Duration::from_secs(30)).await;
    let second_consumed = second.stop().await;

    assert_eq!(total, 400, "inputs produced");
    assert_eq!(
        missing(&kafka, &outputs),
        vec![],
        "every input has an output"
    );
    // The first worker owned every partition and started at offset 0, so it consumed
    // every record below its committed offsets. The second worker starts at those
    // offsets, so only the records the first one consumed beyond them can be read
    // twice. A graceful stop waits for the outputs in flight and commits them, so that
    // number is 0 unless the drain timed out.
    let uncommitted = first_consumed as i64 - at_stop;
    let redelivered = duplicates(&outputs);
    println!(
        "restart: {total} inputs, worker 1 consumed {first_consumed} and committed \
         {at_stop}, worker 2 consumed {second_consumed}, {redelivered} outputs duplicated"
    );
    assert_eq!(
        uncommitted, 0,
        "the graceful stop committed every record consumed"
    );
    assert!(
        redelivered as i64 <= uncommitted,
        "{redelivered} duplicates, but only {uncommitted} records were consumed and not committed"
    );
    assert_eq!(
        (first_consumed + second_consumed) as usize,
        total + redelivered,
        "the second worker consumed only what the first did not commit"
    );
}
