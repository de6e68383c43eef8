//! Helpers shared by the host's integration tests: paths of the built components and
//! pipelines over the demonstration hospitals.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cardiowatch::config::{HospitalConfig, KafkaConfig, load_hospitals};
use cardiowatch::pipeline::{Hospital, Pipeline, load_component_set};
use cardiowatch::runtime::{ComponentSet, Limits, Runtime};
use cardiowatch::source::client_config;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

/// How long a Kafka metadata or offset request in these helpers may take.
const KAFKA_TIMEOUT: Duration = Duration::from_secs(10);

/// Returns the committed offset of the group per vitals partition, where one exists.
pub fn committed_offsets(kafka: &KafkaConfig, partitions: i32) -> BTreeMap<(String, i32), i64> {
    let consumer: BaseConsumer = client_config(kafka)
        .set("group.id", &kafka.group_id)
        .create()
        .unwrap();
    let mut list = TopicPartitionList::new();
    for topic in &kafka.vitals_topics {
        for partition in 0..partitions {
            list.add_partition(topic, partition);
        }
    }
    let offsets = consumer.committed_offsets(list, KAFKA_TIMEOUT).unwrap();
    offsets
        .elements()
        .iter()
        .filter_map(|element| match element.offset() {
            Offset::Offset(offset) => {
                Some(((element.topic().to_string(), element.partition()), offset))
            }
            _ => None,
        })
        .collect()
}

/// Returns the end offset of every non-empty vitals partition.
pub fn end_offsets(kafka: &KafkaConfig, partitions: i32) -> BTreeMap<(String, i32), i64> {
    let consumer: BaseConsumer = client_config(kafka).create().unwrap();
    let mut ends = BTreeMap::new();
    for topic in &kafka.vitals_topics {
        for partition in 0..partitions {
            let (_, high) = consumer
                .fetch_watermarks(topic, partition, KAFKA_TIMEOUT)
                .unwrap();
            if high > 0 {
                ends.insert((topic.clone(), partition), high);
            }
        }
    }
    ends
}

/// Root of the repository.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A built component; fails with the command that builds it when it is missing.
pub fn component(name: &str) -> PathBuf {
    let path = repo_root().join("target/components").join(name);
    assert!(
        path.exists(),
        "{} is missing: run `./dev components` first",
        path.display()
    );
    path
}

/// The demonstration hospitals of `hospitals/`.
pub fn hospital_configs() -> Vec<HospitalConfig> {
    load_hospitals(&repo_root().join("hospitals")).expect("hospitals/ loads")
}

/// A runtime with default limits.
pub fn runtime() -> Runtime {
    Runtime::new(Limits::default()).expect("runtime starts")
}

/// The component set of one demonstration hospital.
pub fn component_set(runtime: &Runtime, hospital: &str) -> (HospitalConfig, Arc<ComponentSet>) {
    let config = hospital_configs()
        .into_iter()
        .find(|config| config.id == hospital)
        .unwrap_or_else(|| panic!("no hospital {hospital} in hospitals/"));
    let set = load_component_set(runtime, &config).expect("components load");
    (config, set)
}

/// A pipeline over every demonstration hospital, with `adjust` applied to each config.
pub fn pipeline_with(adjust: impl Fn(&mut HospitalConfig)) -> Pipeline {
    let runtime = runtime();
    let hospitals = hospital_configs()
        .into_iter()
        .map(|mut config| {
            adjust(&mut config);
            let set = load_component_set(&runtime, &config).expect("components load");
            Hospital::new(&runtime, config, set).expect("instances start")
        })
        .collect();
    Pipeline::new(hospitals, KafkaConfig::default().topic_hospitals)
}

/// A pipeline over every demonstration hospital as configured.
pub fn pipeline() -> Pipeline {
    pipeline_with(|_| {})
}
