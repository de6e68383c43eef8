//! The embedded default: librdkafka's in-process mock cluster, so `up` needs no broker.
//!
//! The cluster lives inside a client created with `test.mock.num.brokers`; it stops when
//! that client is dropped. The mock cluster waits 3 s before a consumer group's first
//! assignment by default; this sets that delay to zero through `rdkafka-sys`, since
//! rdkafka's `MockCluster` type does not expose it.

use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, Producer};

/// A running mock cluster.
pub struct EmbeddedCluster {
    owner: BaseProducer,
    bootstrap_servers: String,
}

impl EmbeddedCluster {
    /// Starts a cluster of `brokers` brokers and creates `topics` with `partitions` each.
    ///
    /// # Errors
    ///
    /// Fails when librdkafka cannot create the cluster or a topic.
    pub fn start(brokers: u32, topics: &[String], partitions: i32) -> anyhow::Result<Self> {
        let owner: BaseProducer = ClientConfig::new()
            .set("test.mock.num.brokers", brokers.to_string())
            .create()?;
        let bootstrap_servers = {
            let cluster = owner
                .client()
                .mock_cluster()
                .ok_or_else(|| anyhow::anyhow!("librdkafka did not start a mock cluster"))?;
            for topic in topics {
                cluster.create_topic(topic, partitions, 1)?;
            }
            cluster.bootstrap_servers()
        };
        // SAFETY: the handle belongs to `owner`, which is alive for this call; the function
        // only sets an integer on the cluster.
        unsafe {
            let handle = rdkafka_sys::rd_kafka_handle_mock_cluster(owner.client().native_ptr());
            if !handle.is_null() {
                rdkafka_sys::rd_kafka_mock_group_initial_rebalance_delay_ms(handle, 0);
            }
        }
        Ok(EmbeddedCluster {
            owner,
            bootstrap_servers,
        })
    }

    /// Bootstrap servers of the cluster, for clients to connect to.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }

    /// Runs `action` with librdkafka's mock cluster handle, for fault injection in tests.
    ///
    /// # Panics
    ///
    /// Never in practice: the owning client was created with a mock cluster.
    pub fn with_mock<R>(
        &self,
        action: impl FnOnce(
            &rdkafka::mocking::MockCluster<'_, rdkafka::producer::DefaultProducerContext>,
        ) -> R,
    ) -> R {
        let cluster = self
            .owner
            .client()
            .mock_cluster()
            .expect("created with a mock cluster");
        action(&cluster)
    }

    /// Creates one more topic. The mock cluster ignores topic configuration, so a
    /// compacted topic is an ordinary one here.
    ///
    /// # Errors
    ///
    /// When librdkafka refuses the topic.
    pub fn create_topic(&self, topic: &str, partitions: i32) -> anyhow::Result<()> {
        self.with_mock(|mock| mock.create_topic(topic, partitions, 1))?;
        Ok(())
    }

    /// Flushes the owning client; the cluster stops when `self` is dropped.
    pub fn shutdown(self) {
        let _ = self.owner.flush(std::time::Duration::from_secs(1));
    }
}
