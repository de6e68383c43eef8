//! Hot swap through the control topic, on librdkafka's mock cluster: deploys while
//! records flow, hospital tokens kept to their hospital, uploads that must be refused,
//! versions that survive a restart and reach a second instance, and quarantine.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cardiowatch::admin::{TokenStore, digest};
use cardiowatch::config::{HospitalConfig, KafkaConfig};
use cardiowatch::embedded::EmbeddedCluster;
use cardiowatch::pipeline::Pipeline;
use cardiowatch::registry::{Action, Registry, RegistryConfig};
use cardiowatch::runtime::Role;
use cardiowatch::source::Worker;
use cardiowatch::telemetry::Telemetry;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

const PARTITIONS: i32 = 2;
const CONTROL_TOPIC: &str = "cardiowatch.control";
const OPERATOR: &str = "operator-test-token";
const ST_MARYS: &str = "st-marys-test-token";
/// Event time of the first reading; later readings are one second apart.
const BASE_MS: i64 = 1_796_379_300_000;

fn cluster() -> EmbeddedCluster {
    let kafka = KafkaConfig::default();
    let mut topics = kafka.vitals_topics.clone();
    topics.extend([
        kafka.patients_topic,
        kafka.predictions_topic,
        kafka.alerts_topic,
        kafka.dead_letter_topic,
        kafka.shadow_topic,
    ]);
    let cluster = EmbeddedCluster::start(1, &topics, PARTITIONS).unwrap();
    cluster.create_topic(CONTROL_TOPIC, 1).unwrap();
    cluster
}

/// One host instance in this process: registry, consume loop and admin server.
struct Host {
    registry: Registry,
    address: std::net::SocketAddr,
    telemetry: Arc<Telemetry>,
    stop: watch::Sender<bool>,
    worker: tokio::task::JoinHandle<anyhow::Result<Pipeline>>,
    follower: tokio::task::JoinHandle<()>,
    server: tokio::task::JoinHandle<()>,
}

impl Host {
    async fn start(brokers: &str, dir: &Path, seeds: Vec<HospitalConfig>) -> Host {
        Host::start_with(brokers, dir, seeds, 5).await
    }

    async fn start_with(
        brokers: &str,
        dir: &Path,
        seeds: Vec<HospitalConfig>,
        quarantine_after: u32,
    ) -> Host {
        // A group per instance: the mock cluster stalls a group's rebalance for the
        // session timeout when a member leaves mid-join, which is not under test here.
        let kafka = KafkaConfig {
            brokers: brokers.into(),
            group_id: format!("hotswap-{}", rand::random::<u32>()),
            ..KafkaConfig::default()
        };
        let config = RegistryConfig {
            dir: dir.to_path_buf(),
            quarantine_after,
            ..RegistryConfig::default()
        };
        let (stop, shutdown) = watch::channel(false);
        let (registry, hospitals, follower) =
            Registry::start(common::runtime(), &kafka, config, seeds, shutdown.clone())
                .await
                .expect("registry starts");
        let pipeline = Pipeline::new(hospitals, kafka.topic_hospitals.clone())
            .with_quarantine_after(quarantine_after);
        let telemetry = Arc::new(Telemetry::default());
        let mut tokens = TokenStore::default();
        tokens.add_operator_digest(digest(OPERATOR));
        tokens.add_hospital_digest(digest(ST_MARYS), "st-marys".into());
        let (address, server) = cardiowatch::admin::serve(
            "127.0.0.1:0".parse().unwrap(),
            telemetry.clone(),
            Arc::new(tokens),
            Some(registry.clone()),
        )
        .await
        .unwrap();
        let (activations_tx, activations_rx) = mpsc::channel(16);
        let follower = tokio::spawn(follower.run(activations_tx));
        let worker = Worker::new(kafka, pipeline, telemetry.stats.clone(), None)
            .unwrap()
            .with_telemetry(telemetry.clone())
            .with_control(registry.clone(), activations_rx);
        let worker = tokio::spawn(worker.run(shutdown));
        Host {
            registry,
            address,
            telemetry,
            stop,
            worker,
            follower,
            server,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    async fn stop(self) {
        self.stop.send(true).unwrap();
        self.worker.await.unwrap().unwrap();
        self.follower.abort();
        self.server.abort();
    }
}

/// Sends `request` with `token` and returns the status and the JSON body.
async fn call(request: reqwest::RequestBuilder, token: &str) -> (u16, Value) {
    let response = request.bearer_auth(token).send().await.unwrap();
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn deploy(
    host: &Host,
    token: &str,
    hospital: &str,
    role: &str,
    bytes: Vec<u8>,
) -> (u16, Value) {
    let url = host.url(&format!("/api/hospitals/{hospital}/components/{role}"));
    call(reqwest::Client::new().post(url).body(bytes), token).await
}

fn read_component(name: &str) -> Vec<u8> {
    std::fs::read(common::component(name)).unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Reading `index` for hospital `hospital`: a full canonical record with a profile, one
/// second after the previous one, for one of 20 patients.
fn reading(index: usize, hospital: &str) -> (String, String, OwnedHeaders) {
    let body = json!({
        "time_ms": BASE_MS + index as i64 * 1000,
        "vitals": {"heart_rate_bpm": 70 + index % 50, "respiratory_rate_per_min": 16,
            "spo2_percent": 97, "systolic_bp_mmhg": 125, "diastolic_bp_mmhg": 80,
            "temperature_celsius": 36.9},
        "profile": {"age_years": 61, "sex": "female", "height_cm": 160, "weight_kg": 70,
            "cholesterol_category": 2, "glucose_category": 1, "smoker": false,
            "alcohol": false, "physically_active": true}
    });
    let headers = OwnedHeaders::new().insert(Header {
        key: "hospital-id",
        value: Some(hospital),
    });
    (format!("p-{:02}", index % 20), body.to_string(), headers)
}

fn producer(brokers: &str) -> BaseProducer {
    rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "2")
        .create()
        .unwrap()
}

/// One output: topic, body (null for a dead letter), Kafka timestamp.
type Output = (String, Value, i64);

/// Reads predictions and dead letters from the beginning until `expected` arrived, then
/// 2 s more so that extra records are seen too.
fn collect(brokers: &str, expected: usize, timeout: Duration) -> Vec<Output> {
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "hotswap-reader")
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for topic in ["predictions", "dead-letters"] {
        for partition in 0..PARTITIONS {
            list.add_partition_offset(topic, partition, Offset::Beginning)
                .unwrap();
        }
    }
    consumer.assign(&list).unwrap();
    let mut deadline = Instant::now() + timeout;
    let mut settling = false;
    let mut outputs = Vec::new();
    while Instant::now() < deadline {
        if !settling && outputs.len() >= expected {
            settling = true;
            deadline = Instant::now() + Duration::from_secs(2);
        }
        let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let body = match message.topic() {
            "predictions" => serde_json::from_slice(message.payload().unwrap()).unwrap(),
            _ => Value::Null,
        };
        let at = message.timestamp().to_millis().unwrap_or(0);
        outputs.push((message.topic().to_string(), body, at));
    }
    outputs
}

fn reading_index(prediction: &Value) -> usize {
    ((prediction["event_time_ms"].as_i64().unwrap() - BASE_MS) / 1000) as usize
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swap_under_load_loses_nothing() {
    let cluster = cluster();
    let brokers = cluster.bootstrap_servers().to_string();
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(&brokers, dir.path(), common::hospital_configs()).await;
    let old = host.registry.state("st-marys").unwrap().active.score;
    let candidate = read_component("score-uci.wasm");
    let new = sha256(&candidate);
    assert_ne!(old, new);

    const TOTAL: usize = 3000;
    let sent = Arc::new(AtomicUsize::new(0));
    let producing = {
        let (brokers, sent) = (brokers.clone(), sent.clone());
        std::thread::spawn(move || {
            let producer = producer(&brokers);
            for index in 0..TOTAL {
                let (key, payload, headers) = reading(index, "st-marys");
                let record = BaseRecord::to("vitals")
                    .key(&key)
                    .payload(&payload)
                    .headers(headers);
                producer.send(record).unwrap();
                producer.poll(Duration::ZERO);
                sent.store(index + 1, Ordering::SeqCst);
                if index % 10 == 9 {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            producer.flush(Duration::from_secs(10)).unwrap();
        })
    };
    while sent.load(Ordering::SeqCst) < TOTAL / 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (status, report) = deploy(&host, OPERATOR, "st-marys", "score", candidate).await;
    let live_after = sent.load(Ordering::SeqCst);
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["state"]["active"]["score"], new.as_str());
    producing.join().unwrap();
    assert!(
        live_after < TOTAL,
        "the deploy finished after every record was sent"
    );

    let outputs =
        tokio::task::spawn_blocking(move || collect(&brokers, TOTAL, Duration::from_secs(60)))
            .await
            .unwrap();
    host.stop().await;

    let dead = outputs
        .iter()
        .filter(|(topic, _, _)| topic == "dead-letters")
        .count();
    assert_eq!(dead, 0, "no record became a dead letter");
    let mut seen = vec![0usize; TOTAL];
    let mut stamp = vec![String::new(); TOTAL];
    for (_, prediction, _) in &outputs {
        let index = reading_index(prediction);
        seen[index] += 1;
        let score = prediction["components"]["score"]["sha256"]
            .as_str()
            .unwrap();
        assert!(
            score == old || score == new,
            "unknown score version {score}"
        );
        stamp[index] = score.to_string();
    }
    let missing = seen.iter().filter(|count| **count == 0).count();
    let duplicated = seen.iter().filter(|count| **count > 1).count();
    assert_eq!(missing, 0, "every record has a prediction");
    assert_eq!(duplicated, 0, "one instance, no rebalance: no redelivery");
    // Records sent after the deploy response were consumed after the swap.
    let late_old = (live_after..TOTAL).filter(|&i| stamp[i] == old).count();
    assert_eq!(
        late_old, 0,
        "records sent after the deploy answered ran the old version"
    );
    let first_new = stamp.iter().position(|s| *s == new).unwrap();
    assert!(
        first_new > 0,
        "records before the deploy ran the old version"
    );
    // Per patient, records are consumed in order: once new, never old again.
    for patient in 0..20 {
        let versions: Vec<&String> = (patient..TOTAL).step_by(20).map(|i| &stamp[i]).collect();
        let switch = versions
            .iter()
            .position(|s| **s == new)
            .unwrap_or(versions.len());
        assert!(
            versions[switch..].iter().all(|s| **s == new),
            "patient {patient} went back to the old version"
        );
    }
    let mut times: Vec<i64> = outputs.iter().map(|(_, _, at)| *at).collect();
    times.sort_unstable();
    let gap = times.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    println!(
        "swap under load: {TOTAL} records, deploy live after record {live_after}, first new at {first_new}, largest output gap {gap} ms"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hospital_token_is_scoped() {
    let cluster = cluster();
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(
        cluster.bootstrap_servers(),
        dir.path(),
        common::hospital_configs(),
    )
    .await;
    let client = reqwest::Client::new();
    let before = host.registry.state("northgate").unwrap();

    let (status, list) = call(client.get(host.url("/api/hospitals")), ST_MARYS).await;
    assert_eq!(status, 200);
    let listed: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["hospital"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        ["st-marys"],
        "a hospital token lists only its hospital"
    );

    let (status, _) = call(client.get(host.url("/api/hospitals/northgate")), ST_MARYS).await;
    assert_eq!(status, 403);
    let (status, body) = deploy(
        &host,
        ST_MARYS,
        "northgate",
        "score",
        read_component("score-cardio.wasm"),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("may not read or change hospital \"northgate\"")
    );
    let rollback = client
        .post(host.url("/api/hospitals/northgate/rollback"))
        .body(r#"{"role": "score"}"#);
    assert_eq!(call(rollback, ST_MARYS).await.0, 403);
    let thresholds = client
        .put(host.url("/api/hospitals/northgate/thresholds"))
        .body(r#"{"model_probability": 0.5}"#);
    assert_eq!(call(thresholds, ST_MARYS).await.0, 403);
    let sha = &before.active.score;
    let (status, _) = call(
        client.get(host.url(&format!("/api/components/{sha}"))),
        ST_MARYS,
    )
    .await;
    assert_eq!(
        status, 404,
        "northgate's score component is not visible to st-marys"
    );
    let (status, _) = call(client.get(host.url("/api/hospitals")), "not-a-token").await;
    assert_eq!(status, 401);
    let status = client
        .get(host.url("/api/hospitals"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status.as_u16(), 401);

    // Its own hospital: allowed, and recorded with who did it.
    let own = client
        .put(host.url("/api/hospitals/st-marys/thresholds"))
        .body(r#"{"model_probability": 0.6}"#);
    let (status, report) = call(own, ST_MARYS).await;
    assert_eq!(status, 200, "{report}");
    let by = report["change"]["by"].as_str().unwrap();
    assert_eq!(by, format!("hospital:st-marys:{}", &digest(ST_MARYS)[..8]));
    assert_eq!(
        host.registry.state("northgate").unwrap(),
        before,
        "northgate is untouched"
    );
    let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    assert_eq!(audit.lines().count(), 1, "{audit}");
    assert!(audit.contains("\"action\":\"thresholds\""), "{audit}");
    assert!(!audit.contains(ST_MARYS), "the audit log contains a token");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_uploads_are_rejected() {
    let cluster = cluster();
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(
        cluster.bootstrap_servers(),
        dir.path(),
        common::hospital_configs(),
    )
    .await;
    let before = host.registry.state("st-marys").unwrap();
    let mut too_large = b"\0asm\x0d\0\x01\0".to_vec();
    too_large.resize((16 << 20) + 100, 0);
    let cases: [(&str, &str, Vec<u8>, &str); 6] = [
        (
            "score",
            "text",
            b"not a component at all".to_vec(),
            "does not start with the WebAssembly magic bytes",
        ),
        (
            "score",
            "core module",
            b"\0asm\x01\0\0\0".to_vec(),
            "core WebAssembly module, not a component",
        ),
        (
            "score",
            "wrong world",
            read_component("preprocess.wasm"),
            "wrong world for a score component",
        ),
        (
            "alert-rules",
            "endless loop in its self-test",
            read_component("hostile.wasm"),
            "per-call CPU deadline",
        ),
        (
            "score",
            "over the size limit",
            too_large,
            "over the limit of 16777216 bytes",
        ),
        (
            "preprocess",
            "broken component",
            b"\0asm\x0d\0\x01\0garbage".to_vec(),
            "not a WebAssembly component",
        ),
    ];
    for (role, name, bytes, expected) in cases.into_iter().chain([(
        "score",
        "an HTTP component, which imports wasi:http",
        read_component("spin-score.wasm"),
        "imports wasi:http/",
    )]) {
        let (status, body) = deploy(&host, OPERATOR, "st-marys", role, bytes).await;
        assert_eq!(status, 422, "{name}: {body}");
        let message = body["error"].as_str().unwrap();
        assert!(message.contains(expected), "{name}: {message}");
    }
    let (status, body) = deploy(&host, OPERATOR, "st-marys", "scorer", vec![]).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        host.registry.state("st-marys").unwrap(),
        before,
        "nothing changed"
    );

    // The host still serves st-marys.
    let producer = producer(cluster.bootstrap_servers());
    let (key, payload, headers) = reading(0, "st-marys");
    producer
        .send(
            BaseRecord::to("vitals")
                .key(&key)
                .payload(&payload)
                .headers(headers),
        )
        .unwrap();
    producer.flush(Duration::from_secs(10)).unwrap();
    let brokers = cluster.bootstrap_servers().to_string();
    let outputs =
        tokio::task::spawn_blocking(move || collect(&brokers, 1, Duration::from_secs(30)))
            .await
            .unwrap();
    assert_eq!(outputs.len(), 1);
    assert_eq!(outputs[0].1["status"], "scored");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_survive_restart_and_spread() {
    let cluster = cluster();
    let brokers = cluster.bootstrap_servers().to_string();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let client = reqwest::Client::new();
    let a = Host::start(&brokers, dir_a.path(), common::hospital_configs()).await;
    let cardio = a.registry.state("st-marys").unwrap().active.score;
    let uci = sha256(&read_component("score-uci.wasm"));
    assert_eq!(
        deploy(
            &a,
            OPERATOR,
            "st-marys",
            "score",
            read_component("score-uci.wasm")
        )
        .await
        .0,
        200
    );
    let thresholds = client
        .put(a.url("/api/hospitals/st-marys/thresholds"))
        .body(r#"{"news2_urgent": 4}"#);
    assert_eq!(call(thresholds, OPERATOR).await.0, 200);

    // A second instance started later, with no hospital files and an empty cache, runs
    // what the control topic records.
    let b = Host::start(&brokers, dir_b.path(), Vec::new()).await;
    let on_b = b.registry.state("st-marys").unwrap();
    assert_eq!(on_b, a.registry.state("st-marys").unwrap());
    assert_eq!(on_b.active.score, uci);
    assert_eq!(on_b.thresholds.news2_urgent, 4);
    assert_eq!(b.registry.states().len(), 3);

    // A rollback through the second instance reaches the first.
    let rollback = client
        .post(b.url("/api/hospitals/st-marys/rollback"))
        .body(r#"{"role": "score"}"#);
    let (status, report) = call(rollback, OPERATOR).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["state"]["active"]["score"], cardio.as_str());
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.registry.state("st-marys").unwrap().active.score != cardio {
        assert!(
            Instant::now() < deadline,
            "the rollback did not reach the first instance"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let revision = a.registry.state("st-marys").unwrap().revision;
    assert_eq!(revision, 4, "seed, deploy, thresholds, rollback");
    // A second rollback has nowhere further back to go; it must not return to UCI.
    let again = client
        .post(b.url("/api/hospitals/st-marys/rollback"))
        .body(r#"{"role": "score"}"#);
    let (status, body) = call(again, OPERATOR).await;
    assert_eq!(status, 409, "{body}");
    a.stop().await;
    b.stop().await;

    // Restart against the same cluster: the topic restores everything.
    let a = Host::start(&brokers, dir_a.path(), common::hospital_configs()).await;
    let restored = a.registry.state("st-marys").unwrap();
    assert_eq!(
        (restored.revision, restored.active.score.as_str()),
        (4, cardio.as_str())
    );
    a.stop().await;
    drop(cluster);

    // Restart against a new, empty cluster (the embedded default): the cache restores it.
    let cluster = self::cluster();
    let a = Host::start(
        cluster.bootstrap_servers(),
        dir_a.path(),
        common::hospital_configs(),
    )
    .await;
    let restored = a.registry.state("st-marys").unwrap();
    assert_eq!(restored.revision, 4);
    assert_eq!(restored.active.score, cardio);
    assert_eq!(restored.thresholds.news2_urgent, 4);
    assert_eq!(restored.history.last().unwrap().action, Action::Rollback);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_component_is_quarantined() {
    let cluster = cluster();
    let brokers = cluster.bootstrap_servers().to_string();
    let dir = tempfile::tempdir().unwrap();
    // Seeding takes the hospital file as it is, without a self-test: the hostile alert
    // rules start active, then a good version is deployed and the hostile one rolled
    // back to, as an operator might by mistake.
    let mut hostile = common::hospital_configs()
        .into_iter()
        .find(|config| config.id == "st-marys")
        .unwrap();
    hostile.components.alert_rules = common::component("hostile.wasm");
    let hostile_sha = sha256(&read_component("hostile.wasm"));
    let host = Host::start_with(&brokers, dir.path(), vec![hostile], 3).await;
    let (status, body) = deploy(
        &host,
        OPERATOR,
        "st-marys",
        "alert-rules",
        read_component("alert-rules.wasm"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let good_sha = body["state"]["active"]["alert_rules"]
        .as_str()
        .unwrap()
        .to_string();
    let rollback = reqwest::Client::new()
        .post(host.url("/api/hospitals/st-marys/rollback"))
        .body(json!({"role": "alert-rules", "to": hostile_sha}).to_string());
    assert_eq!(call(rollback, OPERATOR).await.0, 200);

    // The hostile rules panic when the event time ends in 3.
    let producer = producer(&brokers);
    for index in 0..6 {
        let (key, mut payload, headers) = reading(index, "st-marys");
        payload = payload.replacen(
            &format!("\"time_ms\":{}", BASE_MS + index as i64 * 1000),
            &format!("\"time_ms\":{}", BASE_MS + index as i64 * 1000 + 3),
            1,
        );
        producer
            .send(
                BaseRecord::to("vitals")
                    .key(&key)
                    .payload(&payload)
                    .headers(headers),
            )
            .unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let state = host.registry.state("st-marys").unwrap();
        if state.quarantined.contains(&hostile_sha) {
            assert_eq!(state.active.get(Role::AlertRules), good_sha);
            let change = state.history.last().unwrap();
            assert_eq!(change.action, Action::Quarantine);
            assert!(
                change.detail.contains("3 records in a row"),
                "{}",
                change.detail
            );
            break;
        }
        assert!(Instant::now() < deadline, "no quarantine: {state:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metrics = host.telemetry.metrics.render();
    assert!(
        metrics.contains("cardiowatch_quarantines_total{hospital=\"st-marys\"} 1"),
        "{metrics}"
    );
    // A quarantined version cannot come back by mistake.
    let again = reqwest::Client::new()
        .post(host.url("/api/hospitals/st-marys/rollback"))
        .body(json!({"role": "alert-rules", "to": hostile_sha}).to_string());
    assert_eq!(call(again, OPERATOR).await.0, 409);
    let outputs =
        tokio::task::spawn_blocking(move || collect(&brokers, 6, Duration::from_secs(30)))
            .await
            .unwrap();
    let dead = outputs
        .iter()
        .filter(|(topic, _, _)| topic == "dead-letters")
        .count();
    assert_eq!(outputs.len(), 6, "one outcome per record");
    assert!(dead >= 3, "the failing records are dead letters ({dead})");
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_compared_then_promoted() {
    let cluster = cluster();
    let brokers = cluster.bootstrap_servers().to_string();
    let dir = tempfile::tempdir().unwrap();
    let host = Host::start(&brokers, dir.path(), common::hospital_configs()).await;
    let active = host.registry.state("st-marys").unwrap().active.score;
    let candidate = read_component("score-uci.wasm");
    let candidate_sha = sha256(&candidate);
    let url = host.url("/api/hospitals/st-marys/shadow");
    let client = reqwest::Client::new();
    let (status, body) = call(client.post(&url).body(candidate), OPERATOR).await;
    assert_eq!(status, 200, "{body}");

    const READINGS: usize = 40;
    let producer = producer(&brokers);
    for index in 0..READINGS {
        let (key, payload, headers) = reading(index, "st-marys");
        producer
            .send(
                BaseRecord::to("vitals")
                    .key(&key)
                    .payload(&payload)
                    .headers(headers),
            )
            .unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let (code, status) = call(client.get(&url), OPERATOR).await;
        assert_eq!(code, 200, "{status}");
        if status["stats"]["compared"].as_u64() == Some(READINGS as u64) {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "shadow statistics incomplete: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status["shadow"]["sha256"], candidate_sha.as_str());
    assert_eq!(status["stats"]["sha256"], candidate_sha.as_str());

    // Live predictions stay on the active version; the shadow topic has one record per
    // reading, naming both versions.
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", "shadow-reader")
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for topic in ["predictions", "predictions-shadow"] {
        for partition in 0..PARTITIONS {
            list.add_partition_offset(topic, partition, Offset::Beginning)
                .unwrap();
        }
    }
    consumer.assign(&list).unwrap();
    let (mut live, mut shadow) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    while (live < READINGS || shadow < READINGS) && Instant::now() < deadline {
        let Some(Ok(message)) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let body: Value = serde_json::from_slice(message.payload().unwrap()).unwrap();
        if message.topic() == "predictions" {
            assert_eq!(body["components"]["score"]["sha256"], active.as_str());
            live += 1;
        } else {
            assert_eq!(body["shadow_score_sha256"], candidate_sha.as_str());
            assert_eq!(body["live_score_sha256"], active.as_str());
            shadow += 1;
        }
    }
    assert_eq!((live, shadow), (READINGS, READINGS));

    let promote = client.post(host.url("/api/hospitals/st-marys/shadow/promote"));
    let (code, report) = call(promote, ST_MARYS).await;
    assert_eq!(code, 200, "{report}");
    let state = host.registry.state("st-marys").unwrap();
    assert_eq!(state.active.score, candidate_sha);
    assert!(state.shadow.is_none());
    assert_eq!(state.history.last().unwrap().action, Action::Promote);
    let (code, _) = call(client.delete(&url), OPERATOR).await;
    assert_eq!(code, 409, "no candidate runs after the promotion");
    host.stop().await;
}
