//! One HTTP write of a batch of line protocol, over the v1 `/write` API (reqwest) or the
//! v2 `/api/v2/write` API (the `influxdb2` crate), with timestamps in milliseconds.

use influxdb2::api::write::TimestampPrecision;
use reqwest::{StatusCode, Url};

use super::config::{InfluxApi, InfluxConfig, Secret};

/// Characters of a server's error message kept for the log.
const MAX_LOGGED_MESSAGE_CHARS: usize = 200;

/// A failed write.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// No HTTP response: connection refused or reset, timeout, TLS failure.
    #[error("request failed: {0}")]
    Request(reqwest::Error),
    /// The server responded with an error status.
    #[error("HTTP {status}{}", message.as_deref().map(|text| format!(": {text}")).unwrap_or_default())]
    Status {
        /// HTTP status code.
        status: u16,
        /// The server's message, cut to 200 characters; `None` for 400, whose message
        /// quotes the rejected line and so a patient's pseudonym and vitals.
        message: Option<String>,
    },
    /// The `influxdb2` crate failed for another reason.
    #[error("{0}")]
    Client(String),
}

impl WriteError {
    /// Whether the same batch may succeed later: no response (connection error, timeout),
    /// HTTP 408, 429 or 5xx, or another failure inside the `influxdb2` crate. Other HTTP
    /// errors (bad line protocol, authentication, an unknown database) would fail again.
    pub fn is_retryable(&self) -> bool {
        match self {
            WriteError::Request(_) | WriteError::Client(_) => true,
            WriteError::Status { status, .. } => {
                *status == 408 || *status == 429 || (500..600).contains(status)
            }
        }
    }

    fn from_status(status: StatusCode, body: &str) -> Self {
        let message = (status != StatusCode::BAD_REQUEST)
            .then(|| body.trim().chars().take(MAX_LOGGED_MESSAGE_CHARS).collect());
        WriteError::Status {
            status: status.as_u16(),
            message,
        }
    }
}

/// A client for one server and destination.
#[derive(Debug)]
pub enum Writer {
    /// InfluxDB 1.x `/write`.
    V1 {
        /// HTTP client with the request timeout.
        client: reqwest::Client,
        /// `/write` URL with `db`, `rp` and `precision` set.
        url: Url,
        /// Basic authentication, if configured.
        credentials: Option<(String, Secret)>,
    },
    /// The v2 API.
    V2 {
        /// `influxdb2` client with the request timeout and token.
        client: influxdb2::Client,
        /// Organization name.
        org: String,
        /// Bucket name.
        bucket: String,
    },
}

impl Writer {
    /// Creates the client of a validated config.
    ///
    /// # Errors
    ///
    /// The URL cannot be parsed or reqwest cannot build a client (no TLS backend).
    pub fn new(config: &InfluxConfig) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout())
            .user_agent(concat!("cardiowatch/", env!("CARGO_PKG_VERSION")));
        let base = Url::parse(&config.url)
            .map_err(|error| format!("invalid influx.url {:?}: {error}", config.url))?;
        match config.api {
            InfluxApi::V1 => Ok(Writer::V1 {
                client: http
                    .build()
                    .map_err(|error| format!("failed to build the HTTP client: {error}"))?,
                url: v1_write_url(base, config)?,
                credentials: config.username.clone().zip(config.password.clone()),
            }),
            InfluxApi::V2 => {
                let token = config.token.as_ref().map(Secret::expose).unwrap_or("");
                let org = config.org.clone().unwrap_or_default();
                let client =
                    influxdb2::ClientBuilder::with_builder(http, base.as_str(), org.clone(), token)
                        .build()
                        .map_err(|error| {
                            format!("failed to build the InfluxDB v2 client: {error}")
                        })?;
                Ok(Writer::V2 {
                    client,
                    org,
                    bucket: config.bucket.clone().unwrap_or_default(),
                })
            }
        }
    }

    /// Writes `body`, points separated by line feeds.
    ///
    /// # Errors
    ///
    /// [`WriteError`]. [`WriteError::is_retryable`] decides whether to try again.
    pub async fn write(&self, body: String) -> Result<(), WriteError> {
        match self {
            Writer::V1 {
                client,
                url,
                credentials,
            } => write_v1(client, url, credentials.as_ref(), body).await,
            Writer::V2 {
                client,
                org,
                bucket,
            } => {
                let result = client
                    .write_line_protocol_with_precision(
                        org,
                        bucket,
                        body,
                        TimestampPrecision::Milliseconds,
                    )
                    .await;
                result.or_else(v2_error)
            }
        }
    }
}

/// `BASE/write?db=...&rp=...&precision=ms`, keeping any path prefix of `base`.
fn v1_write_url(mut base: Url, config: &InfluxConfig) -> Result<Url, String> {
    base.path_segments_mut()
        .map_err(|()| format!("invalid influx.url {:?}: it cannot have a path", config.url))?
        .pop_if_empty()
        .push("write");
    {
        let mut query = base.query_pairs_mut();
        query.append_pair("db", config.database.as_deref().unwrap_or_default());
        if let Some(policy) = &config.retention_policy {
            query.append_pair("rp", policy);
        }
        query.append_pair("precision", "ms");
    }
    Ok(base)
}

async fn write_v1(
    client: &reqwest::Client,
    url: &Url,
    credentials: Option<&(String, Secret)>,
    body: String,
) -> Result<(), WriteError> {
    let mut request = client
        .post(url.clone())
        .header(reqwest::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(body);
    if let Some((username, password)) = credentials {
        request = request.basic_auth(username, Some(password.expose()));
    }
    let response = request
        .send()
        .await
        .map_err(|error| WriteError::Request(error.without_url()))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response.text().await.unwrap_or_default();
    Err(WriteError::from_status(status, &body))
}

/// Maps an `influxdb2` error; it treats every status but 204 as an error, so other 2xx
/// statuses count as success here.
fn v2_error(error: influxdb2::RequestError) -> Result<(), WriteError> {
    match error {
        influxdb2::RequestError::Http { status, .. } if status.is_success() => Ok(()),
        influxdb2::RequestError::Http { status, text } => {
            Err(WriteError::from_status(status, &text))
        }
        influxdb2::RequestError::ReqwestProcessing { source } => {
            Err(WriteError::Request(source.without_url()))
        }
        other => Err(WriteError::Client(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_url_keeps_path_prefix_and_sets_query() {
        let mut config = InfluxConfig::v1("http://127.0.0.1:8086/influx/", "cardio watch");
        config.retention_policy = Some("autogen".into());
        let url = v1_write_url(Url::parse(&config.url).unwrap(), &config).unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:8086/influx/write?db=cardio+watch&rp=autogen&precision=ms"
        );
    }

    #[test]
    fn v1_url_without_path() {
        let config = InfluxConfig::v1("http://127.0.0.1:8086", "cw");
        let url = v1_write_url(Url::parse(&config.url).unwrap(), &config).unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:8086/write?db=cw&precision=ms"
        );
    }

    #[test]
    fn status_retry_classes() {
        let retryable = |status: u16| {
            WriteError::from_status(StatusCode::from_u16(status).unwrap(), "").is_retryable()
        };
        assert!(retryable(500));
        assert!(retryable(503));
        assert!(retryable(429));
        assert!(retryable(408));
        assert!(!retryable(400));
        assert!(!retryable(401));
        assert!(!retryable(404));
        assert!(!retryable(413));
    }

    #[test]
    fn bad_request_message_is_not_kept() {
        let error = WriteError::from_status(
            StatusCode::BAD_REQUEST,
            "unable to parse 'vitals,patient=abc heart_rate_bpm=96'",
        );
        assert_eq!(error.to_string(), "HTTP 400");
    }

    #[test]
    fn other_status_message_is_cut() {
        let body = format!("database not found: {}", "x".repeat(500));
        let error = WriteError::from_status(StatusCode::NOT_FOUND, &body);
        let WriteError::Status { message, .. } = &error else {
            panic!("expected a status error");
        };
        assert_eq!(
            message.as_ref().unwrap().chars().count(),
            MAX_LOGGED_MESSAGE_CHARS
        );
        assert!(
            error
                .to_string()
                .starts_with("HTTP 404: database not found")
        );
    }
}
