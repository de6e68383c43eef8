//! The watched deploy directory on librdkafka's mock cluster: a good component dropped
//! into it goes live and moves to `deployed/`, and bad files move to `rejected/` with a
//! reason while the active version stays.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cardiowatch::config::KafkaConfig;
use cardiowatch::embedded::EmbeddedCluster;
use cardiowatch::pipeline::Pipeline;
use cardiowatch::registry::{Registry, RegistryConfig, inbox};
use cardiowatch::source::Worker;
use cardiowatch::telemetry::Telemetry;
use tokio::sync::{mpsc, watch};

const CONTROL_TOPIC: &str = "cardiowatch.control";
/// Short, so that a test waits about half a second for a file to count as stable.
const POLL: Duration = Duration::from_millis(250);

fn cluster() -> EmbeddedCluster {
    let kafka = KafkaConfig::default();
    let mut topics = kafka.vitals_topics.clone();
    topics.extend([
        kafka.patients_topic,
        kafka.predictions_topic,
        kafka.alerts_topic,
        kafka.dead_letter_topic,
    ]);
    let cluster = EmbeddedCluster::start(1, &topics, 1).unwrap();
    cluster.create_topic(CONTROL_TOPIC, 1).unwrap();
    cluster
}

/// One host instance in this process: registry, follower, consume loop and the watcher.
struct Host {
    registry: Registry,
    stop: watch::Sender<bool>,
    worker: tokio::task::JoinHandle<anyhow::Result<Pipeline>>,
    follower: tokio::task::JoinHandle<()>,
    watcher: tokio::task::JoinHandle<()>,
}

impl Host {
    async fn start(brokers: &str, state_dir: &Path, inbox_dir: &Path) -> Host {
        let kafka = KafkaConfig {
            brokers: brokers.into(),
            group_id: format!("watch-dir-{}", rand::random::<u32>()),
            ..KafkaConfig::default()
        };
        let config = RegistryConfig {
            dir: state_dir.to_path_buf(),
            watch_dir: Some(inbox_dir.to_path_buf()),
            ..RegistryConfig::default()
        };
        let (stop, shutdown) = watch::channel(false);
        let seeds = common::hospital_configs();
        let (registry, hospitals, follower) =
            Registry::start(common::runtime(), &kafka, config, seeds, shutdown.clone())
                .await
                .expect("registry starts");
        let pipeline = Pipeline::new(hospitals, kafka.topic_hospitals.clone());
        let telemetry = std::sync::Arc::new(Telemetry::default());
        let (activations_tx, activations_rx) = mpsc::channel(16);
        let follower = tokio::spawn(follower.run(activations_tx));
        let worker = Worker::new(kafka, pipeline, telemetry.stats.clone(), None)
            .unwrap()
            .with_telemetry(telemetry)
            .with_control(registry.clone(), activations_rx);
        let worker = tokio::spawn(worker.run(shutdown.clone()));
        let watcher = inbox::spawn(registry.clone(), inbox_dir.to_path_buf(), POLL, shutdown);
        Host {
            registry,
            stop,
            worker,
            follower,
            watcher,
        }
    }

    async fn stop(self) {
        self.stop.send(true).unwrap();
        self.worker.await.unwrap().unwrap();
        self.watcher.await.unwrap();
        self.follower.abort();
    }
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Waits up to 30 s for `done`, polling every 100 ms.
async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Files in `dir` with the extension `ext`, sorted.
fn files_with(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|found| found == ext))
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_score_component_deploys() {
    let cluster = cluster();
    let state = tempfile::tempdir().unwrap();
    let inbox_dir = tempfile::tempdir().unwrap();
    let host = Host::start(cluster.bootstrap_servers(), state.path(), inbox_dir.path()).await;
    let old = host.registry.state("st-marys").unwrap().active.score;
    let candidate = std::fs::read(common::component("score-uci.wasm")).unwrap();
    let new = sha256(&candidate);
    assert_ne!(old, new);

    let hospital_dir = inbox_dir.path().join("st-marys");
    std::fs::create_dir_all(&hospital_dir).unwrap();
    let dropped = hospital_dir.join("score.wasm");
    std::fs::write(&dropped, &candidate).unwrap();

    let deployed = hospital_dir.join("deployed").join(format!("{new}.wasm"));
    wait_for("the file to move to deployed/", || deployed.exists()).await;
    let state = host.registry.state("st-marys").unwrap();
    assert_eq!(state.active.score, new);
    assert!(!dropped.exists(), "the dropped file is still in place");
    assert_eq!(std::fs::read(&deployed).unwrap(), candidate);
    let version = state.versions.iter().find(|version| version.sha256 == new);
    let deployed_by = &version.expect("the new version is listed").deployed_by;
    assert!(deployed_by.starts_with("watch:"), "{deployed_by}");
    assert!(deployed_by.ends_with("score.wasm"), "{deployed_by}");
    assert!(files_with(&hospital_dir.join("rejected"), "txt").is_empty());
    host.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_files_rejected_with_reason() {
    let cluster = cluster();
    let state = tempfile::tempdir().unwrap();
    let inbox_dir = tempfile::tempdir().unwrap();
    let host = Host::start(cluster.bootstrap_servers(), state.path(), inbox_dir.path()).await;
    let before = host.registry.state("st-marys").unwrap().active;

    // Each case: hospital directory, file name, bytes, a phrase the reason must contain.
    let cases: [(&str, &str, &[u8], &str); 3] = [
        (
            "st-marys",
            "score.wasm",
            b"not a component",
            "not a WebAssembly component",
        ),
        (
            "st-marys",
            "triage.wasm",
            b"not a component",
            "unknown role",
        ),
        (
            "nowhere",
            "score.wasm",
            b"not a component",
            "unknown hospital",
        ),
    ];
    for (hospital, name, bytes, _) in cases {
        let dir = inbox_dir.path().join(hospital);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    for (hospital, name, _, phrase) in cases {
        let dir = inbox_dir.path().join(hospital);
        let rejected = dir.join("rejected");
        let stem = name.strip_suffix(".wasm").unwrap();
        let matching = |ext: &str| {
            files_with(&rejected, ext)
                .into_iter()
                .filter(|path| {
                    let file = path.file_name().unwrap().to_string_lossy().into_owned();
                    file.starts_with(&format!("{stem}."))
                })
                .collect::<Vec<_>>()
        };
        wait_for(&format!("{hospital}/{name} to be rejected"), || {
            matching("txt").len() == 1
        })
        .await;
        assert!(
            !dir.join(name).exists(),
            "{hospital}/{name} is still in place"
        );
        assert_eq!(matching("wasm").len(), 1, "{hospital}/{name} not moved");
        let reason = std::fs::read_to_string(&matching("txt")[0]).unwrap();
        assert!(reason.contains(phrase), "{hospital}/{name}: {reason}");
    }
    assert_eq!(host.registry.state("st-marys").unwrap().active, before);
    assert!(files_with(&inbox_dir.path().join("st-marys/deployed"), "wasm").is_empty());
    host.stop().await;
}
