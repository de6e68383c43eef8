//! Configuration of the InfluxDB sink: which write API, where, how points are batched and
//! retried, and how patient ids are pseudonymised.
//!
//! Read from TOML with unknown fields rejected, and checked once by
//! [`InfluxConfig::validate`] before the sink starts.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

/// Minimum length of `patient_key` in bytes. Patient ids are short and guessable, so the
/// pseudonyms are only as strong as the key.
pub const MIN_PATIENT_KEY_BYTES: usize = 16;

/// A secret string (token, password, key) whose `Debug` output is redacted.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// Returns the secret value. Call it only where the secret is sent or used.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Secret(<redacted>)")
    }
}

/// InfluxDB write API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InfluxApi {
    /// InfluxDB 1.x `POST /write?db=...`, with optional basic authentication.
    V1,
    /// `POST /api/v2/write?org=...&bucket=...` through the `influxdb2` crate: InfluxDB 2.x
    /// and 3.x, 1.8+ in compatibility mode, and other stores that accept it.
    V2,
}

impl InfluxApi {
    /// Lowercase name, as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            InfluxApi::V1 => "v1",
            InfluxApi::V2 => "v2",
        }
    }
}

/// Where and how the InfluxDB sink writes.
///
/// ```toml
/// api = "v1"
/// url = "http://127.0.0.1:8086"
/// database = "cardiowatch"
/// patient_key = "0f4c...64 hex characters from `openssl rand -hex 32`"
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfluxConfig {
    /// Write API: `v1` or `v2`. Required.
    pub api: InfluxApi,
    /// Base URL of the server, `http://` or `https://`, for example
    /// `http://127.0.0.1:8086`. HTTPS certificates are verified against the operating
    /// system's certificate store. Credentials go in `username`/`password` or `token`,
    /// not in the URL. Required.
    ///
    /// NOTE: with `api = "v2"` the `influxdb2` crate (0.5) replaces the URL's path with
    /// `/api/v2/write`, so a path prefix of a reverse proxy is lost.
    pub url: String,
    /// v1: database to write to. Required with `api = "v1"`.
    #[serde(default)]
    pub database: Option<String>,
    /// v1: retention policy. Default: the database's default retention policy.
    #[serde(default)]
    pub retention_policy: Option<String>,
    /// v1: user name for HTTP basic authentication. Default: none.
    #[serde(default)]
    pub username: Option<String>,
    /// v1: password for HTTP basic authentication. Required with `username`.
    #[serde(default)]
    pub password: Option<Secret>,
    /// v2: organization name. Required with `api = "v2"`.
    #[serde(default)]
    pub org: Option<String>,
    /// v2: bucket to write to. Required with `api = "v2"`.
    #[serde(default)]
    pub bucket: Option<String>,
    /// v2: API token, sent as `Authorization: Token ...`. Default: none, for servers
    /// without authentication.
    #[serde(default)]
    pub token: Option<Secret>,
    /// Points per write request. A batch is written when it is full or
    /// `flush_interval_ms` after its first point. Default 500.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Maximum time in milliseconds a point waits for its batch to fill. Default 1000.
    #[serde(default = "default_flush_interval_ms")]
    pub flush_interval_ms: u64,
    /// Points queued for writing, beyond the batch being written; further points are
    /// dropped and counted. Default 50,000 (about 15 MB of line protocol).
    #[serde(default = "default_buffer_points")]
    pub buffer_points: usize,
    /// Retries of a failed write (a connection error, a timeout, HTTP 408, 429 or 5xx)
    /// before its batch is dropped. Other HTTP errors drop the batch at once. Default 10.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// Delay in milliseconds before the first retry. It doubles with each retry, and each
    /// wait is drawn at random between half the delay and the full delay. Default 200.
    #[serde(default = "default_retry_backoff_ms")]
    pub retry_backoff_ms: u64,
    /// Upper bound in milliseconds of the delay between retries. Default 30,000. With the
    /// defaults the waits of one batch add up to 55 to 111 s, plus the time of the failed
    /// requests, before the batch is dropped.
    #[serde(default = "default_retry_max_backoff_ms")]
    pub retry_max_backoff_ms: u64,
    /// Timeout in milliseconds of one write request, connecting included. Default
    /// 10,000.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Whether the `patient` tag is a keyed hash of the patient id (HMAC-SHA256 with
    /// `patient_key`, the first 16 hex characters) rather than the id itself. Default
    /// true.
    #[serde(default = "default_pseudonymise")]
    pub pseudonymise: bool,
    /// Secret key of the patient id hash, at least 16 bytes; for example the output of
    /// `openssl rand -hex 32`. Changing it changes every patient's tag. Required when
    /// `pseudonymise` is true.
    #[serde(default)]
    pub patient_key: Option<Secret>,
}

fn default_batch_size() -> usize {
    500
}
fn default_flush_interval_ms() -> u64 {
    1000
}
fn default_buffer_points() -> usize {
    50_000
}
fn default_max_retries() -> u32 {
    10
}
fn default_retry_backoff_ms() -> u64 {
    200
}
fn default_retry_max_backoff_ms() -> u64 {
    30_000
}
fn default_request_timeout_ms() -> u64 {
    10_000
}
fn default_pseudonymise() -> bool {
    true
}

impl InfluxConfig {
    /// A v1 config for `url` and `database`, with every other field at its default.
    pub fn v1(url: impl Into<String>, database: impl Into<String>) -> Self {
        InfluxConfig {
            database: Some(database.into()),
            ..Self::defaults(InfluxApi::V1, url.into())
        }
    }

    /// A v2 config for `url`, `org` and `bucket`, with every other field at its default.
    pub fn v2(url: impl Into<String>, org: impl Into<String>, bucket: impl Into<String>) -> Self {
        InfluxConfig {
            org: Some(org.into()),
            bucket: Some(bucket.into()),
            ..Self::defaults(InfluxApi::V2, url.into())
        }
    }

    fn defaults(api: InfluxApi, url: String) -> Self {
        InfluxConfig {
            api,
            url,
            database: None,
            retention_policy: None,
            username: None,
            password: None,
            org: None,
            bucket: None,
            token: None,
            batch_size: default_batch_size(),
            flush_interval_ms: default_flush_interval_ms(),
            buffer_points: default_buffer_points(),
            max_retries: default_max_retries(),
            retry_backoff_ms: default_retry_backoff_ms(),
            retry_max_backoff_ms: default_retry_max_backoff_ms(),
            request_timeout_ms: default_request_timeout_ms(),
            pseudonymise: default_pseudonymise(),
            patient_key: None,
        }
    }

    /// Checks required fields, ranges and the fields that belong to the other API.
    ///
    /// # Errors
    ///
    /// A message naming the field, the value and the fix.
    pub fn validate(&self) -> Result<(), String> {
        self.validate_url()?;
        match self.api {
            InfluxApi::V1 => self.validate_v1()?,
            InfluxApi::V2 => self.validate_v2()?,
        }
        for (name, value) in [
            ("batch_size", self.batch_size as u64),
            ("flush_interval_ms", self.flush_interval_ms),
            ("buffer_points", self.buffer_points as u64),
            ("request_timeout_ms", self.request_timeout_ms),
        ] {
            if value == 0 {
                return Err(format!("invalid influx.{name} 0: expected at least 1"));
            }
        }
        if self.retry_backoff_ms > self.retry_max_backoff_ms {
            return Err(format!(
                "invalid influx.retry_backoff_ms {}: expected at most retry_max_backoff_ms {}",
                self.retry_backoff_ms, self.retry_max_backoff_ms
            ));
        }
        self.validate_patient_key()
    }

    fn validate_url(&self) -> Result<(), String> {
        let url = reqwest::Url::parse(&self.url)
            .map_err(|error| format!("invalid influx.url {:?}: {error}", self.url))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!(
                "invalid influx.url {:?}: expected http://HOST:PORT or https://HOST:PORT",
                self.url
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(
                "invalid influx.url: it contains credentials; set username and password (v1) or token (v2) instead"
                    .to_string(),
            );
        }
        Ok(())
    }

    fn validate_v1(&self) -> Result<(), String> {
        if self.database.as_deref().is_none_or(str::is_empty) {
            return Err("missing influx.database: required with api = \"v1\"".to_string());
        }
        if self.username.is_some() != self.password.is_some() {
            return Err(
                "influx.username and influx.password must be set together for basic authentication"
                    .to_string(),
            );
        }
        for (name, set) in [
            ("org", self.org.is_some()),
            ("bucket", self.bucket.is_some()),
            ("token", self.token.is_some()),
        ] {
            if set {
                return Err(format!(
                    "influx.{name} applies only to api = \"v2\": remove it or set api = \"v2\""
                ));
            }
        }
        Ok(())
    }

    fn validate_v2(&self) -> Result<(), String> {
        for (name, value) in [("org", &self.org), ("bucket", &self.bucket)] {
            if value.as_deref().is_none_or(str::is_empty) {
                return Err(format!("missing influx.{name}: required with api = \"v2\""));
            }
        }
        for (name, set) in [
            ("database", self.database.is_some()),
            ("retention_policy", self.retention_policy.is_some()),
            ("username", self.username.is_some()),
            ("password", self.password.is_some()),
        ] {
            if set {
                return Err(format!(
                    "influx.{name} applies only to api = \"v1\": remove it or set api = \"v1\""
                ));
            }
        }
        Ok(())
    }

    fn validate_patient_key(&self) -> Result<(), String> {
        if !self.pseudonymise {
            return Ok(());
        }
        match &self.patient_key {
            None => Err(
                "missing influx.patient_key: required while pseudonymise is true; generate one with `openssl rand -hex 32`"
                    .to_string(),
            ),
            Some(key) if key.expose().len() < MIN_PATIENT_KEY_BYTES => Err(format!(
                "invalid influx.patient_key of {} bytes: expected at least {MIN_PATIENT_KEY_BYTES}; generate one with `openssl rand -hex 32`",
                key.expose().len()
            )),
            Some(_) => Ok(()),
        }
    }

    /// `flush_interval_ms` as a duration.
    pub fn flush_interval(&self) -> Duration {
        Duration::from_millis(self.flush_interval_ms)
    }

    /// `request_timeout_ms` as a duration.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    fn parse(text: &str) -> Result<InfluxConfig, String> {
        let config: InfluxConfig = toml::from_str(text).map_err(|error| error.to_string())?;
        config.validate()?;
        Ok(config)
    }

    #[test]
    fn v1_defaults_fill_in() {
        let config = parse(&format!(
            "api = \"v1\"\nurl = \"http://127.0.0.1:8086\"\ndatabase = \"cw\"\npatient_key = \"{KEY}\""
        ))
        .unwrap();
        assert_eq!(config.api, InfluxApi::V1);
        assert_eq!(config.batch_size, 500);
        assert_eq!(config.flush_interval_ms, 1000);
        assert_eq!(config.buffer_points, 50_000);
        assert_eq!(config.max_retries, 10);
        assert!(config.pseudonymise);
    }

    #[test]
    fn v2_needs_org_and_bucket() {
        let error = parse(&format!(
            "api = \"v2\"\nurl = \"http://127.0.0.1:8086\"\norg = \"o\"\npatient_key = \"{KEY}\""
        ))
        .unwrap_err();
        assert!(error.contains("missing influx.bucket"), "{error}");
    }

    #[test]
    fn unknown_field_is_rejected() {
        let error = parse(&format!(
            "api = \"v1\"\nurl = \"http://127.0.0.1:8086\"\ndatabase = \"cw\"\npatient_key = \"{KEY}\"\nbatch = 5"
        ))
        .unwrap_err();
        assert!(error.contains("unknown field `batch`"), "{error}");
    }

    #[test]
    fn field_of_other_api_is_rejected() {
        let mut config = InfluxConfig::v1("http://127.0.0.1:8086", "cw");
        config.patient_key = Some(Secret::new(KEY));
        config.bucket = Some("b".into());
        let error = config.validate().unwrap_err();
        assert!(
            error.contains("influx.bucket applies only to api = \"v2\""),
            "{error}"
        );
    }

    #[test]
    fn pseudonymising_needs_long_key() {
        let mut config = InfluxConfig::v2("http://127.0.0.1:8428", "o", "b");
        let missing = config.validate().unwrap_err();
        assert!(missing.contains("missing influx.patient_key"), "{missing}");

        config.patient_key = Some(Secret::new("short"));
        let short = config.validate().unwrap_err();
        assert!(short.contains("of 5 bytes"), "{short}");

        config.pseudonymise = false;
        config.patient_key = None;
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn url_with_credentials_is_rejected() {
        let mut config = InfluxConfig::v1("http://admin:hunter2@127.0.0.1:8086", "cw");
        config.pseudonymise = false;
        let error = config.validate().unwrap_err();
        assert!(error.contains("contains credentials"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn url_must_be_http() {
        let mut config = InfluxConfig::v1("ftp://127.0.0.1", "cw");
        config.pseudonymise = false;
        let error = config.validate().unwrap_err();
        assert!(error.contains("expected http://HOST:PORT"), "{error}");
    }

    #[test]
    fn secret_debug_is_redacted() {
        let mut config = InfluxConfig::v2("http://127.0.0.1:8086", "o", "b");
        config.token = Some(Secret::new("token-value"));
        config.patient_key = Some(Secret::new(KEY));
        let debug = format!("{config:?}");
        assert!(!debug.contains("token-value"), "{debug}");
        assert!(!debug.contains(KEY), "{debug}");
    }
}
