//! The start-up check: ask the brokers for metadata with the configured security
//! settings, and turn a failed SASL authentication or TLS handshake into one error that
//! names the cause and the fix.
//!
//! librdkafka retries a failed connection forever and reports each failure only to the
//! client's error callback, so the check records those reports while it waits.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, Producer, ProducerContext};

use crate::config::KafkaConfig;

use super::client_config;

/// Maximum wait of one metadata request, so that errors reported meanwhile are seen
/// within about this time.
const METADATA_ATTEMPT: Duration = Duration::from_millis(100);

/// Failure to use the Kafka cluster, at start-up or while consuming. Messages name where
/// the password comes from, never the password.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The brokers rejected the SASL credentials.
    #[error(
        "Kafka authentication failed for user {username:?} with mechanism {mechanism} at \
         {brokers}: check the password in {password_source} and kafka.settings.\"sasl.username\" \
         (librdkafka: {reason})"
    )]
    Authentication {
        /// `sasl.username`.
        username: String,
        /// `sasl.mechanism`.
        mechanism: String,
        /// Description of the password source, e.g. `the environment variable X`.
        password_source: String,
        /// Bootstrap servers.
        brokers: String,
        /// librdkafka's error message.
        reason: String,
    },
    /// The TLS handshake failed, most often because the broker's certificate is not
    /// signed by a trusted CA or does not name the broker's host.
    #[error(
        "TLS handshake with the Kafka brokers at {brokers} failed: {fix} (librdkafka: {reason})"
    )]
    Tls {
        /// Bootstrap servers.
        brokers: String,
        /// Suggested change.
        fix: String,
        /// librdkafka's error message.
        reason: String,
    },
    /// No broker returned metadata in time.
    #[error(
        "no Kafka broker at {brokers} returned metadata within {timeout_ms} ms: check the \
         addresses and that security.protocol {protocol} matches the brokers' listener \
         (last error: {reason})"
    )]
    Unreachable {
        /// Bootstrap servers.
        brokers: String,
        /// `kafka.startup_timeout_ms`.
        timeout_ms: u64,
        /// The configured protocol.
        protocol: crate::config::SecurityProtocol,
        /// The last error librdkafka reported.
        reason: String,
    },
    /// A client could not be created, for example because of an unknown setting.
    #[error("failed to create a Kafka client: {0}")]
    Client(#[from] KafkaError),
}

impl ConnectError {
    /// Builds the error for an authentication or TLS failure, or None for other codes.
    pub fn from_code(kafka: &KafkaConfig, code: RDKafkaErrorCode, reason: &str) -> Option<Self> {
        let brokers = kafka.brokers.clone();
        let reason = reason.to_string();
        match code {
            RDKafkaErrorCode::Authentication => Some(ConnectError::Authentication {
                username: kafka
                    .settings
                    .get("sasl.username")
                    .cloned()
                    .unwrap_or_default(),
                mechanism: kafka.sasl_mechanism().unwrap_or("-").to_string(),
                password_source: kafka
                    .sasl_password_source()
                    .unwrap_or_else(|| "the password source".into()),
                brokers,
                reason,
            }),
            RDKafkaErrorCode::SSL => Some(ConnectError::Tls {
                fix: tls_fix(kafka, &reason),
                brokers,
                reason,
            }),
            _ => None,
        }
    }
}

/// Suggests a fix for a failed TLS handshake from librdkafka's message.
fn tls_fix(kafka: &KafkaConfig, reason: &str) -> String {
    if !reason.contains("certificate verify failed") {
        return "check that the addresses are TLS listeners and that security.protocol \
                is SSL or SASL_SSL only for them"
            .into();
    }
    // OpenSSL reports an unknown CA and a host name that the certificate does not name
    // with the same "certificate verify failed".
    let host_hint = "and check that the certificate names the host in the broker address";
    match kafka.settings.get("ssl.ca.location") {
        Some(location) if location != "probe" => format!(
            "the broker's certificate was not verified with the CA in ssl.ca.location \
             {location:?}: set it to the CA file that signed the broker's certificate, \
             {host_hint}"
        ),
        _ => format!(
            "the broker's certificate was not verified with the system's CA store: set \
             kafka.settings.\"ssl.ca.location\" to the CA file that signed it, {host_hint}"
        ),
    }
}

/// Records the last error librdkafka reported, with its message.
#[derive(Default)]
struct ErrorRecorder {
    last: Mutex<Option<(RDKafkaErrorCode, String)>>,
}

impl ClientContext for ErrorRecorder {
    /// Logs librdkafka's messages at debug level only, because the check turns the
    /// failures they report into one error.
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        tracing::debug!(
            ?level,
            facility = fac,
            message = log_message,
            "librdkafka log"
        );
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(%error, reason, "Kafka client error during the start-up check");
        // "All brokers are down" follows every connection failure and would hide its cause.
        match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::AllBrokersDown) | None => {}
            Some(code) => {
                *self.last.lock().expect("no panic while locked") = Some((code, reason.into()));
            }
        }
    }
}

impl ProducerContext for ErrorRecorder {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

/// Fetches metadata of the first vitals topic until the brokers return it, an
/// authentication or TLS error is reported, or `kafka.startup_timeout_ms` passes. Runs on
/// a blocking thread.
///
/// # Errors
///
/// [`ConnectError`] naming the cause and the fix.
pub async fn check_brokers(kafka: &KafkaConfig) -> Result<(), ConnectError> {
    let kafka = kafka.clone();
    match tokio::task::spawn_blocking(move || check_brokers_blocking(&kafka)).await {
        Ok(result) => result,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}

fn check_brokers_blocking(kafka: &KafkaConfig) -> Result<(), ConnectError> {
    let producer: BaseProducer<ErrorRecorder> =
        client_config(kafka).create_with_context(ErrorRecorder::default())?;
    let topic = kafka.vitals_topics.first().map(String::as_str);
    let timeout = Duration::from_millis(kafka.startup_timeout_ms);
    let deadline = Instant::now() + timeout;
    loop {
        let attempt = deadline
            .saturating_duration_since(Instant::now())
            .min(METADATA_ATTEMPT);
        let metadata_error = match producer.client().fetch_metadata(topic, attempt) {
            Ok(_) => return Ok(()),
            Err(error) => error,
        };
        // Delivers the errors reported meanwhile to the recorder.
        producer.poll(Duration::ZERO);
        let last = producer
            .context()
            .last
            .lock()
            .expect("no panic while locked")
            .clone();
        if let Some((code, reason)) = &last
            && let Some(error) = ConnectError::from_code(kafka, *code, reason)
        {
            return Err(error);
        }
        if Instant::now() >= deadline {
            let reason = match last {
                Some((_, reason)) => reason,
                None => metadata_error.to_string(),
            };
            return Err(ConnectError::Unreachable {
                brokers: kafka.brokers.clone(),
                timeout_ms: kafka.startup_timeout_ms,
                protocol: kafka.security_protocol(),
                reason,
            });
        }
    }
}

/// Returns the error to stop the consume loop with when a consume error is an
/// authentication or TLS failure, which retrying with the same settings cannot fix.
///
/// NOTE: No test makes the brokers reject credentials after the start-up check passed,
/// so this path has not run. The producer's delivery failures are not checked: the
/// loop retries them, and relies on the consumer reporting the same failure.
pub fn fatal_consume_error(kafka: &KafkaConfig, error: &KafkaError) -> Option<ConnectError> {
    let code = error.rdkafka_error_code()?;
    ConnectError::from_code(kafka, code, &error.to_string())
}
