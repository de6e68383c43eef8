//! The InfluxDB metrics sink: vitals, predictions and alerts as line-protocol points for
//! Grafana, tagged with the hospital and a keyed hash of the patient id.
//!
//! [`InfluxSink::record_prediction`] and [`InfluxSink::record_alert`] format points and
//! queue them without waiting. A background task writes the queue in batches and retries
//! failed writes with exponential backoff. Points that find the queue full, and batches
//! that the server rejects or that run out of retries, are dropped and counted, so a slow
//! or dead store never stalls the caller.
//!
//! Points carry the reading's event time in milliseconds. A repeated point (a record read
//! again after a rebalance, a batch retried after a lost response) has the same series
//! and time, so InfluxDB overwrites it rather than counting it twice.

mod config;
mod line_protocol;
mod points;
mod writer;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

pub use config::{InfluxApi, InfluxConfig, MIN_PATIENT_KEY_BYTES, Secret};
pub use points::{
    ALERTS_MEASUREMENT, PREDICTIONS_MEASUREMENT, PSEUDONYM_HEX_CHARS, TOP_CONTRIBUTIONS,
    VITALS_MEASUREMENT,
};

use crate::pipeline::output::{AlertRecord, PredictionRecord};
use points::PatientTagger;
use writer::{WriteError, Writer};

/// Minimum time between two warnings of one kind (dropped points, failed writes).
const WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// Errors of starting or flushing the sink.
#[derive(Debug, thiserror::Error)]
pub enum InfluxError {
    /// The config is invalid or the HTTP client could not be built.
    #[error("{0}")]
    Config(String),
    /// Points recorded before the flush were still queued or being written at the
    /// deadline; the writer task goes on with them.
    #[error(
        "InfluxDB flush timed out after {timeout_ms} ms; points are still queued or being retried"
    )]
    FlushTimedOut {
        /// The flush timeout in milliseconds.
        timeout_ms: u128,
    },
    /// The writer task has ended, which happens only if it panicked.
    #[error("the InfluxDB writer task has stopped")]
    Stopped,
}

/// A point-in-time copy of the sink's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct InfluxCounters {
    /// Points the server acknowledged.
    pub written_points: u64,
    /// Points dropped: the queue was full, or their batch was rejected or ran out of
    /// retries.
    pub dropped_points: u64,
    /// Write requests that failed, each retry counted.
    pub write_errors: u64,
    /// Points waiting in the queue, not counting the batch being written.
    pub queued_points: u64,
}

/// Reasons for dropping points, as logged.
#[derive(Debug, Clone, Copy)]
enum DropReason {
    QueueFull,
    WriterStopped,
    Rejected,
    RetriesExhausted,
}

impl DropReason {
    fn as_str(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::WriterStopped => "writer_stopped",
            DropReason::Rejected => "rejected",
            DropReason::RetriesExhausted => "retries_exhausted",
        }
    }
}

/// Lets one warning through per [`WARNING_INTERVAL`], from any thread.
#[derive(Debug)]
struct WarningLimiter {
    start: std::time::Instant,
    /// Milliseconds after `start` before which warnings are suppressed.
    next_ms: AtomicU64,
}

impl WarningLimiter {
    fn new() -> Self {
        WarningLimiter {
            start: std::time::Instant::now(),
            next_ms: AtomicU64::new(0),
        }
    }

    /// Whether a warning may be logged now; if so, the next one must wait an interval.
    fn allow(&self) -> bool {
        let now = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        let next = self.next_ms.load(Ordering::Relaxed);
        let later = now.saturating_add(WARNING_INTERVAL.as_millis() as u64);
        now >= next
            && self
                .next_ms
                .compare_exchange(next, later, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

/// Counters and the drop warning, shared by the handles and the writer task.
#[derive(Debug)]
struct Shared {
    written: AtomicU64,
    dropped: AtomicU64,
    write_errors: AtomicU64,
    drop_warnings: WarningLimiter,
}

impl Shared {
    /// Counts dropped points and logs a warning with counts only, never the points.
    fn drop_points(&self, points: u64, reason: DropReason) {
        let total = self.dropped.fetch_add(points, Ordering::Relaxed) + points;
        if self.drop_warnings.allow() {
            tracing::warn!(
                reason = reason.as_str(),
                points,
                dropped_points_total = total,
                "InfluxDB points dropped; this warning repeats at most every 10 s"
            );
        }
    }
}

enum Command {
    /// One point of line protocol.
    Point(String),
    /// Write everything queued before this command, then reply.
    Flush(oneshot::Sender<()>),
}

/// Handle of the InfluxDB sink; cheap to clone. The writer task ends, after writing what
/// is queued, when the last handle is dropped.
#[derive(Debug, Clone)]
pub struct InfluxSink {
    queue: mpsc::Sender<Command>,
    tagger: Arc<PatientTagger>,
    shared: Arc<Shared>,
}

impl InfluxSink {
    /// Validates `config`, builds the HTTP client and spawns the writer task on the
    /// current Tokio runtime. Nothing is sent until the first point.
    ///
    /// # Errors
    ///
    /// [`InfluxError::Config`] naming the invalid field.
    ///
    /// # Panics
    ///
    /// When called outside a Tokio runtime.
    pub fn start(config: &InfluxConfig) -> Result<Self, InfluxError> {
        config.validate().map_err(InfluxError::Config)?;
        let writer = Writer::new(config).map_err(InfluxError::Config)?;
        let tagger = match (&config.patient_key, config.pseudonymise) {
            (Some(key), true) => PatientTagger::keyed(key.expose().as_bytes()),
            _ => PatientTagger::Raw,
        };
        let shared = Arc::new(Shared {
            written: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            write_errors: AtomicU64::new(0),
            drop_warnings: WarningLimiter::new(),
        });
        let (queue, receiver) = mpsc::channel(config.buffer_points);
        let task = BatchWriter {
            writer,
            shared: shared.clone(),
            batch_size: config.batch_size,
            flush_interval: config.flush_interval(),
            max_retries: config.max_retries,
            retry_backoff: Duration::from_millis(config.retry_backoff_ms),
            retry_max_backoff: Duration::from_millis(config.retry_max_backoff_ms),
            error_warnings: WarningLimiter::new(),
            failed_attempts: 0,
        };
        tokio::spawn(task.run(receiver));
        tracing::info!(
            api = config.api.as_str(),
            url = %config.url,
            pseudonymise = config.pseudonymise,
            "InfluxDB sink started"
        );
        Ok(InfluxSink {
            queue,
            tagger: Arc::new(tagger),
            shared,
        })
    }

    /// Queues the `vitals` and `predictions` points of a prediction. Never blocks and
    /// never fails: points that do not fit in the queue are dropped and counted.
    pub fn record_prediction(&self, record: &PredictionRecord) {
        let patient = self.tagger.tag(&record.patient_id);
        for point in points::prediction_points(record, &patient) {
            self.enqueue(point);
        }
    }

    /// Queues the `alerts` point of an alert. Never blocks and never fails: a point
    /// that does not fit in the queue is dropped and counted.
    pub fn record_alert(&self, record: &AlertRecord) {
        let patient = self.tagger.tag(&record.patient_id);
        self.enqueue(points::alert_point(record, &patient));
    }

    fn enqueue(&self, point: String) {
        match self.queue.try_send(Command::Point(point)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.shared.drop_points(1, DropReason::QueueFull);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.shared.drop_points(1, DropReason::WriterStopped);
            }
        }
    }

    /// Waits until every point recorded before the call has been written or dropped, for
    /// at most `timeout`; for shutdown. Check [`InfluxSink::dropped_points`] to learn
    /// whether all were written.
    ///
    /// # Errors
    ///
    /// [`InfluxError::FlushTimedOut`] when the store is slow or down, and
    /// [`InfluxError::Stopped`] when the writer task has ended.
    pub async fn flush(&self, timeout: Duration) -> Result<(), InfluxError> {
        let (done, finished) = oneshot::channel();
        let flush = async {
            self.queue
                .send(Command::Flush(done))
                .await
                .map_err(|_| InfluxError::Stopped)?;
            finished.await.map_err(|_| InfluxError::Stopped)
        };
        tokio::time::timeout(timeout, flush)
            .await
            .map_err(|_| InfluxError::FlushTimedOut {
                timeout_ms: timeout.as_millis(),
            })?
    }

    /// The `patient` tag written for `patient_id`: its pseudonym, or the id itself when
    /// `pseudonymise` is false. Lets an operator find a patient's series in Grafana.
    pub fn patient_tag(&self, patient_id: &str) -> String {
        self.tagger.tag(patient_id)
    }

    /// Points the server acknowledged.
    pub fn written_points(&self) -> u64 {
        self.shared.written.load(Ordering::Relaxed)
    }

    /// Points dropped because the queue was full or their batch was rejected or ran out
    /// of retries.
    pub fn dropped_points(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Write requests that failed, each retry counted.
    pub fn write_errors(&self) -> u64 {
        self.shared.write_errors.load(Ordering::Relaxed)
    }

    /// All counters at once.
    pub fn counters(&self) -> InfluxCounters {
        InfluxCounters {
            written_points: self.written_points(),
            dropped_points: self.dropped_points(),
            write_errors: self.write_errors(),
            queued_points: (self.queue.max_capacity() - self.queue.capacity()) as u64,
        }
    }
}

/// The writer task: batches the queue, writes and retries.
struct BatchWriter {
    writer: Writer,
    shared: Arc<Shared>,
    batch_size: usize,
    flush_interval: Duration,
    max_retries: u32,
    retry_backoff: Duration,
    retry_max_backoff: Duration,
    error_warnings: WarningLimiter,
    /// Failed write requests since the last success, for the recovery log.
    failed_attempts: u64,
}

impl BatchWriter {
    /// Writes a batch when it reaches `batch_size`, `flush_interval` after its first
    /// point, on a flush command, and when the last handle is dropped.
    async fn run(mut self, mut queue: mpsc::Receiver<Command>) {
        let mut batch: Vec<String> = Vec::with_capacity(self.batch_size);
        let mut deadline: Option<Instant> = None;
        loop {
            let command = match deadline {
                Some(at) => tokio::select! {
                    command = queue.recv() => command,
                    () = tokio::time::sleep_until(at) => {
                        self.write(&mut batch).await;
                        deadline = None;
                        continue;
                    }
                },
                None => queue.recv().await,
            };
            match command {
                Some(Command::Point(point)) => {
                    if batch.is_empty() {
                        deadline = Some(Instant::now() + self.flush_interval);
                    }
                    batch.push(point);
                    if batch.len() >= self.batch_size {
                        self.write(&mut batch).await;
                        deadline = None;
                    }
                }
                Some(Command::Flush(done)) => {
                    self.write(&mut batch).await;
                    deadline = None;
                    let _ = done.send(());
                }
                None => {
                    self.write(&mut batch).await;
                    tracing::info!(
                        written_points = self.shared.written.load(Ordering::Relaxed),
                        dropped_points = self.shared.dropped.load(Ordering::Relaxed),
                        "InfluxDB sink stopped"
                    );
                    return;
                }
            }
        }
    }

    /// Writes and empties `batch`, retrying with exponential backoff; drops it when the
    /// server rejects it or the retries run out.
    async fn write(&mut self, batch: &mut Vec<String>) {
        if batch.is_empty() {
            return;
        }
        let points = batch.len() as u64;
        let body = batch.join("\n");
        batch.clear();
        let mut backoff = self.retry_backoff;
        for attempt in 0..=self.max_retries {
            let error = match self.writer.write(body.clone()).await {
                Ok(()) => {
                    self.count_success(points);
                    return;
                }
                Err(error) => error,
            };
            self.shared.write_errors.fetch_add(1, Ordering::Relaxed);
            self.failed_attempts += 1;
            if !error.is_retryable() {
                self.warn_failure(&error, points, None);
                self.shared.drop_points(points, DropReason::Rejected);
                return;
            }
            if attempt == self.max_retries {
                self.warn_failure(&error, points, None);
                break;
            }
            let wait = backoff.mul_f64(rand::random_range(0.5..=1.0));
            self.warn_failure(&error, points, Some(wait));
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(self.retry_max_backoff);
        }
        self.shared
            .drop_points(points, DropReason::RetriesExhausted);
    }

    fn count_success(&mut self, points: u64) {
        self.shared.written.fetch_add(points, Ordering::Relaxed);
        if self.failed_attempts > 0 {
            tracing::info!(
                failed_attempts = self.failed_attempts,
                "InfluxDB writes succeed again"
            );
            self.failed_attempts = 0;
        }
    }

    /// Logs a failed write, rate-limited; `retry_in` is `None` when the batch is given up.
    fn warn_failure(&self, error: &WriteError, points: u64, retry_in: Option<Duration>) {
        if !self.error_warnings.allow() {
            return;
        }
        let write_errors_total = self.shared.write_errors.load(Ordering::Relaxed);
        match retry_in {
            Some(wait) => tracing::warn!(
                %error,
                points,
                retry_in_ms = wait.as_millis() as u64,
                write_errors_total,
                "InfluxDB write failed; retrying (this warning repeats at most every 10 s)"
            ),
            None => tracing::warn!(
                %error,
                points,
                write_errors_total,
                "InfluxDB write failed; batch given up (this warning repeats at most every 10 s)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::points::tests::prediction;
    use super::*;

    /// Requests bodies received by [`http_server`].
    type Bodies = Arc<Mutex<Vec<String>>>;

    /// An HTTP server on 127.0.0.1 answering every request with `status`; returns its
    /// URL and the request bodies it received.
    async fn http_server(status: u16) -> (String, Bodies) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let bodies: Bodies = Arc::default();
        let received = bodies.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let body = read_request_body(&mut stream).await;
                received.lock().unwrap().push(body);
                let response = format!(
                    "HTTP/1.1 {status} Test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = stream.write_all(response.as_bytes()).await;
            }
        });
        (url, bodies)
    }

    /// Reads one request's headers and its `Content-Length` body.
    async fn read_request_body(stream: &mut tokio::net::TcpStream) -> String {
        let mut data = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let read = stream.read(&mut chunk).await.unwrap_or(0);
            if read == 0 {
                break;
            }
            data.extend_from_slice(&chunk[..read]);
            let text = String::from_utf8_lossy(&data);
            let Some(end) = text.find("\r\n\r\n") else {
                continue;
            };
            let length = text[..end]
                .lines()
                .filter_map(|line| line.split_once(':'))
                .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, value)| value.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                return String::from_utf8_lossy(&data[end + 4..end + 4 + length]).into_owned();
            }
        }
        String::from_utf8_lossy(&data).into_owned()
    }

    fn config(url: &str) -> InfluxConfig {
        let mut config = InfluxConfig::v1(url, "cardiowatch");
        config.patient_key = Some(Secret::new("0123456789abcdef"));
        config.flush_interval_ms = 10;
        config.retry_backoff_ms = 1;
        config.retry_max_backoff_ms = 2;
        config.request_timeout_ms = 2_000;
        config
    }

    const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

    #[tokio::test]
    async fn written_points_are_counted() {
        let (url, bodies) = http_server(204).await;
        let sink = InfluxSink::start(&config(&url)).unwrap();
        sink.record_prediction(&prediction(None));
        sink.flush(FLUSH_TIMEOUT).await.unwrap();

        assert_eq!(sink.written_points(), 2);
        assert_eq!(sink.dropped_points(), 0);
        assert_eq!(sink.write_errors(), 0);
        let bodies = bodies.lock().unwrap();
        assert_eq!(bodies.len(), 1);
        let lines: Vec<&str> = bodies[0].lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("vitals,hospital=st-marys,patient="));
        assert!(lines[1].starts_with("predictions,hospital=st-marys,patient="));
        assert!(!bodies[0].contains("p-00012"), "raw patient id sent");
    }

    #[tokio::test]
    async fn full_batch_is_written_without_waiting() {
        let (url, bodies) = http_server(204).await;
        let mut config = config(&url);
        config.batch_size = 2;
        config.flush_interval_ms = 3_600_000;
        let sink = InfluxSink::start(&config).unwrap();
        sink.record_prediction(&prediction(None));

        let deadline = std::time::Instant::now() + FLUSH_TIMEOUT;
        while sink.written_points() < 2 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(sink.written_points(), 2);
        assert_eq!(bodies.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn server_error_is_retried_then_dropped() {
        let (url, bodies) = http_server(503).await;
        let mut config = config(&url);
        config.max_retries = 2;
        let sink = InfluxSink::start(&config).unwrap();
        sink.record_prediction(&prediction(None));
        sink.flush(FLUSH_TIMEOUT).await.unwrap();

        assert_eq!(bodies.lock().unwrap().len(), 3);
        assert_eq!(sink.write_errors(), 3);
        assert_eq!(sink.dropped_points(), 2);
        assert_eq!(sink.written_points(), 0);
    }

    #[tokio::test]
    async fn bad_request_is_dropped_without_retry() {
        let (url, bodies) = http_server(400).await;
        let sink = InfluxSink::start(&config(&url)).unwrap();
        sink.record_prediction(&prediction(None));
        sink.flush(FLUSH_TIMEOUT).await.unwrap();

        assert_eq!(bodies.lock().unwrap().len(), 1);
        assert_eq!(sink.write_errors(), 1);
        assert_eq!(sink.dropped_points(), 2);
    }

    /// A listener that never accepts: connections complete in the kernel's backlog and
    /// then hang, as with a stalled server.
    fn stalled_server() -> (String, std::net::TcpListener) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        (
            format!("http://{}", listener.local_addr().unwrap()),
            listener,
        )
    }

    #[tokio::test]
    async fn stalled_store_never_blocks_caller() {
        let (url, _listener) = stalled_server();
        let mut config = config(&url);
        config.buffer_points = 100;
        config.batch_size = 10;
        config.request_timeout_ms = 60_000;
        let sink = InfluxSink::start(&config).unwrap();
        let record = prediction(None);

        let started = std::time::Instant::now();
        for _ in 0..5_000 {
            sink.record_prediction(&record);
        }
        let elapsed = started.elapsed();

        assert!(
            elapsed < Duration::from_secs(2),
            "recording took {elapsed:?}"
        );
        let counters = sink.counters();
        // Every point is either queued, in the batch being written or dropped.
        let not_dropped = counters.queued_points + config.batch_size as u64;
        assert!(
            counters.dropped_points >= 10_000 - not_dropped,
            "{counters:?}"
        );
        assert_eq!(counters.written_points, 0);
    }

    #[tokio::test]
    async fn flush_times_out_while_store_stalls() {
        let (url, _listener) = stalled_server();
        let mut config = config(&url);
        config.request_timeout_ms = 60_000;
        let sink = InfluxSink::start(&config).unwrap();
        sink.record_prediction(&prediction(None));

        let result = sink.flush(Duration::from_millis(200)).await;
        assert!(
            matches!(result, Err(InfluxError::FlushTimedOut { timeout_ms: 200 })),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn invalid_config_is_rejected_at_start() {
        let mut config = config("http://127.0.0.1:1");
        config.batch_size = 0;
        let error = InfluxSink::start(&config).unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid influx.batch_size 0: expected at least 1"
        );
    }

    #[test]
    fn warning_limiter_allows_one_per_interval() {
        let limiter = WarningLimiter::new();
        assert!(limiter.allow());
        assert!(!limiter.allow());
        assert!(!limiter.allow());
    }
}
