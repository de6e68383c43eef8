//! The `[kafka]` table: topics, the consumer group and librdkafka settings, with the
//! security settings checked once at start-up.
//!
//! Secrets never come from the config file. The SASL password and the private key's
//! password are read from an environment variable or a file that the table names, and
//! kept in [`Secrets`], whose `Debug` output shows only the setting names.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Kafka topics and client settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma separated. Default `127.0.0.1:9092`.
    #[serde(default = "default_brokers")]
    pub brokers: String,
    /// Consumer group id shared by every host instance. Default `cardiowatch`.
    #[serde(default = "default_group_id")]
    pub group_id: String,
    /// Topics carrying vitals. Default `vitals` and the legacy `heart_data`.
    #[serde(default = "default_vitals_topics")]
    pub vitals_topics: Vec<String>,
    /// Compacted topic of patient profiles keyed by patient id. Default `patients`.
    #[serde(default = "default_patients_topic")]
    pub patients_topic: String,
    /// Output topic for predictions. Default `predictions`.
    #[serde(default = "default_predictions_topic")]
    pub predictions_topic: String,
    /// Output topic for alerts. Default `alerts`.
    #[serde(default = "default_alerts_topic")]
    pub alerts_topic: String,
    /// Output topic for records that could not be processed. Default `dead-letters`.
    #[serde(default = "default_dead_letter_topic")]
    pub dead_letter_topic: String,
    /// Output topic for what a shadow score component would have predicted. Default
    /// `predictions-shadow`.
    #[serde(default = "default_shadow_topic")]
    pub shadow_topic: String,
    /// Hospital for records without a `hospital-id` header, per topic. Default maps
    /// `heart_data` to `legacy`.
    #[serde(default = "default_topic_hospitals")]
    pub topic_hospitals: BTreeMap<String, String>,
    /// librdkafka settings passed through to every client, e.g. `security.protocol`.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// Environment variable that contains the SASL password (librdkafka's
    /// `sasl.password`). Default none.
    #[serde(default)]
    pub sasl_password_env: Option<String>,
    /// File that contains the SASL password. Trailing line breaks are ignored. Default none.
    #[serde(default)]
    pub sasl_password_file: Option<PathBuf>,
    /// Environment variable that contains the password of the private key in
    /// `ssl.key.location` (librdkafka's `ssl.key.password`). Default none.
    #[serde(default)]
    pub ssl_key_password_env: Option<String>,
    /// File that contains the password of the private key in `ssl.key.location`. Trailing
    /// line breaks are ignored. Default none.
    #[serde(default)]
    pub ssl_key_password_file: Option<PathBuf>,
    /// How long the start-up check waits for the brokers to return metadata, in
    /// milliseconds. Default 10000.
    #[serde(default = "default_startup_timeout_ms")]
    pub startup_timeout_ms: u64,
    /// Secret settings read by [`KafkaConfig::validate_and_load_secrets`]. They are never
    /// read from or written to the config file.
    #[serde(skip)]
    pub secrets: Secrets,
}

fn default_brokers() -> String {
    "127.0.0.1:9092".into()
}
fn default_group_id() -> String {
    "cardiowatch".into()
}
fn default_vitals_topics() -> Vec<String> {
    vec!["vitals".into(), "heart_data".into()]
}
fn default_patients_topic() -> String {
    "patients".into()
}
fn default_predictions_topic() -> String {
    "predictions".into()
}
fn default_alerts_topic() -> String {
    "alerts".into()
}
fn default_dead_letter_topic() -> String {
    "dead-letters".into()
}
fn default_shadow_topic() -> String {
    "predictions-shadow".into()
}
fn default_topic_hospitals() -> BTreeMap<String, String> {
    BTreeMap::from([("heart_data".to_string(), "legacy".to_string())])
}
fn default_startup_timeout_ms() -> u64 {
    10_000
}

impl Default for KafkaConfig {
    fn default() -> Self {
        toml::from_str("").expect("every Kafka setting has a default")
    }
}

/// librdkafka settings that contain a secret, with what to write instead. The config file
/// may be readable by many and is often committed, so these are rejected there.
const SECRET_SETTINGS: &[(&str, &str)] = &[
    (
        "sasl.password",
        "name an environment variable in sasl_password_env or a file in sasl_password_file",
    ),
    (
        "ssl.key.password",
        "name an environment variable in ssl_key_password_env or a file in ssl_key_password_file",
    ),
    (
        "ssl.keystore.password",
        "use a PEM key and certificate (ssl.key.location, ssl.certificate.location) and \
         name the key's password in ssl_key_password_env or ssl_key_password_file",
    ),
    (
        "ssl.key.pem",
        "put the key in a file and name it in ssl.key.location",
    ),
    (
        "sasl.oauthbearer.client.secret",
        "use SCRAM or PLAIN, because cardiowatch cannot read this secret from elsewhere",
    ),
];

/// SASL mechanisms that librdkafka implements without Cyrus SASL, which this build
/// leaves out. GSSAPI (Kerberos) needs Cyrus SASL.
const SASL_MECHANISMS: &[&str] = &["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"];

/// Secret librdkafka settings by name. `Debug` shows the names only.
#[derive(Clone, Default)]
pub struct Secrets(BTreeMap<&'static str, String>);

impl Secrets {
    /// Iterates over the settings and their secret values.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.0.iter().map(|(name, value)| (*name, value.as_str()))
    }
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|name| (name, "<redacted>")))
            .finish()
    }
}

/// `security.protocol`, which decides whether SASL and TLS settings take effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    /// Neither authentication nor encryption; librdkafka's default.
    Plaintext,
    /// TLS.
    Ssl,
    /// SASL authentication without encryption.
    SaslPlaintext,
    /// SASL authentication over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    const ALL: [SecurityProtocol; 4] = [
        Self::Plaintext,
        Self::Ssl,
        Self::SaslPlaintext,
        Self::SaslSsl,
    ];

    /// Returns the name librdkafka uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plaintext => "PLAINTEXT",
            Self::Ssl => "SSL",
            Self::SaslPlaintext => "SASL_PLAINTEXT",
            Self::SaslSsl => "SASL_SSL",
        }
    }

    /// Parses a name, ignoring case as librdkafka does.
    fn parse(value: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|protocol| protocol.as_str().eq_ignore_ascii_case(value))
    }

    /// Returns whether the connection is encrypted with TLS.
    pub fn uses_tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    /// Returns whether the client authenticates with SASL.
    pub fn uses_sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }
}

impl std::fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Source of a secret: an environment variable or a file.
enum SecretSource<'a> {
    Env(&'a str),
    File(&'a Path),
}

impl KafkaConfig {
    /// Returns the `security.protocol` setting. An unset or invalid value counts as
    /// PLAINTEXT, and [`KafkaConfig::validate_and_load_secrets`] rejects an invalid one.
    pub fn security_protocol(&self) -> SecurityProtocol {
        self.setting("security.protocol")
            .and_then(SecurityProtocol::parse)
            .unwrap_or(SecurityProtocol::Plaintext)
    }

    /// Returns the SASL mechanism under either of librdkafka's names for it.
    pub fn sasl_mechanism(&self) -> Option<&str> {
        self.setting("sasl.mechanism")
            .or_else(|| self.setting("sasl.mechanisms"))
    }

    fn setting(&self, name: &str) -> Option<&str> {
        self.settings.get(name).map(String::as_str)
    }

    /// Describes where the SASL password is read from, e.g. `the environment variable
    /// KAFKA_PASSWORD`, for error messages. None when no source is configured.
    pub fn sasl_password_source(&self) -> Option<String> {
        let source = secret_source(&self.sasl_password_env, &self.sasl_password_file)?;
        Some(describe(&source))
    }

    /// Checks the security settings and reads the secrets they name into
    /// [`KafkaConfig::secrets`].
    ///
    /// # Errors
    ///
    /// A message naming the setting and the fix: a secret written in the config file, a
    /// SASL or TLS setting that the `security.protocol` ignores, a missing SASL user name
    /// or password, or a secret that cannot be read.
    pub fn validate_and_load_secrets(&mut self) -> Result<(), String> {
        self.validate_security()?;
        let sources = [
            (
                "sasl.password",
                "sasl_password",
                secret_source(&self.sasl_password_env, &self.sasl_password_file),
            ),
            (
                "ssl.key.password",
                "ssl_key_password",
                secret_source(&self.ssl_key_password_env, &self.ssl_key_password_file),
            ),
        ];
        let mut secrets = Secrets::default();
        for (setting, field, source) in sources {
            if let Some(source) = source {
                secrets.0.insert(setting, read_secret(field, &source)?);
            }
        }
        self.secrets = secrets;
        Ok(())
    }

    fn validate_security(&self) -> Result<(), String> {
        for (setting, fix) in SECRET_SETTINGS {
            if self.settings.contains_key(*setting) {
                return Err(format!(
                    "kafka.settings.\"{setting}\" must not be written in the config file: {fix}"
                ));
            }
        }
        for (field, env, file) in [
            (
                "sasl_password",
                self.sasl_password_env.is_some(),
                self.sasl_password_file.is_some(),
            ),
            (
                "ssl_key_password",
                self.ssl_key_password_env.is_some(),
                self.ssl_key_password_file.is_some(),
            ),
        ] {
            if env && file {
                return Err(format!(
                    "both kafka.{field}_env and kafka.{field}_file are set: keep one"
                ));
            }
        }
        let protocol = match self.setting("security.protocol") {
            None => SecurityProtocol::Plaintext,
            Some(value) => SecurityProtocol::parse(value).ok_or_else(|| {
                format!(
                    "invalid kafka.settings.\"security.protocol\" {value:?}: expected \
                     PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
                )
            })?,
        };
        self.validate_sasl(protocol)?;
        self.validate_tls(protocol)
    }

    fn validate_sasl(&self, protocol: SecurityProtocol) -> Result<(), String> {
        let password = self.sasl_password_source();
        if !protocol.uses_sasl() {
            let sasl_setting = self.settings.keys().find(|key| key.starts_with("sasl."));
            let misplaced = sasl_setting
                .map(|key| format!("kafka.settings.\"{key}\""))
                .or_else(|| password.as_ref().map(|_| "a SASL password source".into()));
            return match misplaced {
                Some(setting) => Err(format!(
                    "{setting} is set but security.protocol is {protocol}, which ignores \
                     SASL: set kafka.settings.\"security.protocol\" to SASL_SSL, or to \
                     SASL_PLAINTEXT on a trusted network"
                )),
                None => Ok(()),
            };
        }
        let Some(mechanism) = self.sasl_mechanism() else {
            return Err(
                "missing kafka.settings.\"sasl.mechanism\": set it to SCRAM-SHA-256, \
                 SCRAM-SHA-512 or PLAIN"
                    .into(),
            );
        };
        if !SASL_MECHANISMS.contains(&mechanism) {
            return Err(format!(
                "invalid kafka.settings.\"sasl.mechanism\" {mechanism:?}: expected \
                 SCRAM-SHA-256, SCRAM-SHA-512, PLAIN or OAUTHBEARER (GSSAPI is not built in)"
            ));
        }
        if mechanism == "OAUTHBEARER" {
            return Ok(());
        }
        if self.setting("sasl.username").is_none() {
            return Err(format!(
                "missing kafka.settings.\"sasl.username\": {mechanism} needs a user name"
            ));
        }
        if password.is_none() {
            return Err(format!(
                "missing SASL password: {mechanism} needs one, so set kafka.sasl_password_env \
                 to the name of an environment variable or kafka.sasl_password_file to a file"
            ));
        }
        if mechanism == "PLAIN" && protocol == SecurityProtocol::SaslPlaintext {
            tracing::warn!(
                "sasl.mechanism PLAIN over SASL_PLAINTEXT sends the password unencrypted; \
                 use SASL_SSL or a SCRAM mechanism"
            );
        }
        Ok(())
    }

    fn validate_tls(&self, protocol: SecurityProtocol) -> Result<(), String> {
        if !protocol.uses_tls() {
            let tls_setting = self.settings.keys().find(|key| key.starts_with("ssl."));
            let key_password =
                self.ssl_key_password_env.is_some() || self.ssl_key_password_file.is_some();
            let misplaced = tls_setting
                .map(|key| format!("kafka.settings.\"{key}\""))
                .or_else(|| key_password.then(|| "a private key password source".into()));
            return match misplaced {
                Some(setting) => Err(format!(
                    "{setting} is set but security.protocol is {protocol}, which does not \
                     use TLS: set kafka.settings.\"security.protocol\" to SSL or SASL_SSL"
                )),
                None => Ok(()),
            };
        }
        // librdkafka reads "false", "f" (either case) and "0" as false.
        let verification = self.setting("enable.ssl.certificate.verification");
        if verification.is_some_and(|value| {
            ["false", "f", "0"]
                .iter()
                .any(|no| no.eq_ignore_ascii_case(value))
        }) {
            tracing::warn!(
                "enable.ssl.certificate.verification is false: the brokers' certificates are \
                 not checked, so anyone on the network path can pose as a broker"
            );
        }
        Ok(())
    }
}

fn secret_source<'a>(
    env: &'a Option<String>,
    file: &'a Option<PathBuf>,
) -> Option<SecretSource<'a>> {
    match (env, file) {
        (Some(name), _) => Some(SecretSource::Env(name)),
        (None, Some(path)) => Some(SecretSource::File(path)),
        (None, None) => None,
    }
}

fn describe(source: &SecretSource<'_>) -> String {
    match source {
        SecretSource::Env(name) => format!("the environment variable {name}"),
        SecretSource::File(path) => format!("the file {}", path.display()),
    }
}

/// Reads a secret named by `kafka.{field}_env` or `kafka.{field}_file`. Errors name the
/// variable or file, never its content.
fn read_secret(field: &str, source: &SecretSource<'_>) -> Result<String, String> {
    let value = match source {
        SecretSource::Env(name) => std::env::var(name).map_err(|error| match error {
            std::env::VarError::NotPresent => format!(
                "missing environment variable {name}, named by kafka.{field}_env: set it \
                 before starting cardiowatch"
            ),
            std::env::VarError::NotUnicode(_) => {
                format!(
                    "invalid environment variable {name}, named by kafka.{field}_env: not UTF-8"
                )
            }
        })?,
        SecretSource::File(path) => std::fs::read_to_string(path)
            .map_err(|error| {
                format!(
                    "failed to read {}, named by kafka.{field}_file: {error}",
                    path.display()
                )
            })?
            .trim_end_matches(['\n', '\r'])
            .to_string(),
    };
    if value.is_empty() {
        return Err(format!(
            "{} is empty: it must contain the secret for kafka.{field}",
            describe(source)
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml: &str) -> KafkaConfig {
        toml::from_str(toml).unwrap()
    }

    const SCRAM: &str = r#"
sasl_password_env = "CARDIOWATCH_TEST_UNIT_PASSWORD"
[settings]
"security.protocol" = "SASL_SSL"
"sasl.mechanism" = "SCRAM-SHA-256"
"sasl.username" = "alice"
"#;

    #[test]
    fn plain_text_password_rejected() {
        let mut kafka = config(
            "[settings]\n\"security.protocol\" = \"SASL_SSL\"\n\"sasl.mechanism\" = \"PLAIN\"\n\
             \"sasl.username\" = \"alice\"\n\"sasl.password\" = \"hunter2\"\n",
        );
        let error = kafka.validate_and_load_secrets().unwrap_err();
        assert!(error.contains("\"sasl.password\""), "{error}");
        assert!(error.contains("sasl_password_env"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn every_secret_setting_rejected() {
        for (setting, _) in SECRET_SETTINGS {
            let mut kafka = KafkaConfig::default();
            kafka.settings.insert(setting.to_string(), "secret".into());
            let error = kafka.validate_and_load_secrets().unwrap_err();
            assert!(error.contains(setting), "{setting}: {error}");
        }
    }

    #[test]
    fn password_read_from_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("password");
        std::fs::write(&path, "s3cret\n").unwrap();
        let mut kafka = config(&SCRAM.replace(
            "sasl_password_env = \"CARDIOWATCH_TEST_UNIT_PASSWORD\"",
            &format!("sasl_password_file = {:?}", path.display().to_string()),
        ));
        kafka.validate_and_load_secrets().unwrap();
        let secrets: Vec<(&str, &str)> = kafka.secrets.iter().collect();
        assert_eq!(secrets, vec![("sasl.password", "s3cret")]);
    }

    #[test]
    fn missing_password_variable_named() {
        let mut kafka = config(&SCRAM.replace(
            "CARDIOWATCH_TEST_UNIT_PASSWORD",
            "CARDIOWATCH_TEST_UNSET_VARIABLE",
        ));
        let error = kafka.validate_and_load_secrets().unwrap_err();
        assert!(
            error.contains("missing environment variable CARDIOWATCH_TEST_UNSET_VARIABLE"),
            "{error}"
        );
    }

    #[test]
    fn secrets_debug_hides_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("password");
        std::fs::write(&path, "s3cret").unwrap();
        let mut kafka = config(&SCRAM.replace(
            "sasl_password_env = \"CARDIOWATCH_TEST_UNIT_PASSWORD\"",
            &format!("sasl_password_file = {:?}", path.display().to_string()),
        ));
        kafka.validate_and_load_secrets().unwrap();
        let debug = format!("{kafka:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(debug.contains("sasl.password"), "{debug}");
    }

    #[test]
    fn sasl_setting_needs_sasl_protocol() {
        let mut kafka = config("[settings]\n\"sasl.mechanism\" = \"SCRAM-SHA-256\"\n");
        let error = kafka.validate_and_load_secrets().unwrap_err();
        assert!(error.contains("\"sasl.mechanism\""), "{error}");
        assert!(error.contains("security.protocol is PLAINTEXT"), "{error}");
        assert!(error.contains("SASL_SSL"), "{error}");
    }

    #[test]
    fn password_source_needs_sasl_protocol() {
        let mut kafka = config("sasl_password_env = \"X\"\n");
        let error = kafka.validate_and_load_secrets().unwrap_err();
        assert!(error.contains("SASL password source"), "{error}");
    }

    #[test]
    fn tls_setting_needs_tls_protocol() {
        let mut kafka = config(
            "sasl_password_env = \"X\"\n[settings]\n\"security.protocol\" = \"SASL_PLAINTEXT\"\n\
             \"sasl.mechanism\" = \"SCRAM-SHA-512\"\n\"sasl.username\" = \"alice\"\n\
             \"ssl.ca.location\" = \"/etc/ca.pem\"\n",
        );
        let error = kafka.validate_and_load_secrets().unwrap_err();
        assert!(error.contains("\"ssl.ca.location\""), "{error}");
        assert!(error.contains("SSL or SASL_SSL"), "{error}");
    }

    #[test]
    fn sasl_protocol_needs_mechanism() {
        let mut kafka = config("[settings]\n\"security.protocol\" = \"sasl_ssl\"\n");
        let error = kafka.validate_and_load_secrets().unwrap_err();
        assert!(
            error.contains("missing kafka.settings.\"sasl.mechanism\""),
            "{error}"
        );
    }

    #[test]
    fn gssapi_rejected() {
        let mut kafka = config(
            "[settings]\n\"security.protocol\" = \"SASL_SSL\"\n\"sasl.mechanisms\" = \"GSSAPI\"\n",
        );
        let error = kafka.validate_and_load_secrets().unwrap_err();
        assert!(error.contains("GSSAPI is not built in"), "{error}");
    }

    #[test]
    fn scram_needs_username_and_password() {
        let mut without_user = config(&SCRAM.replace("\"sasl.username\" = \"alice\"", ""));
        let error = without_user.validate_and_load_secrets().unwrap_err();
        assert!(
            error.contains("missing kafka.settings.\"sasl.username\""),
            "{error}"
        );

        let mut without_password =
            config(&SCRAM.replace("sasl_password_env = \"CARDIOWATCH_TEST_UNIT_PASSWORD\"", ""));
        let error = without_password.validate_and_load_secrets().unwrap_err();
        assert!(error.contains("missing SASL password"), "{error}");
    }

    #[test]
    fn invalid_protocol_rejected() {
        let mut kafka = config("[settings]\n\"security.protocol\" = \"TLS\"\n");
        let error = kafka.validate_and_load_secrets().unwrap_err();
        assert!(
            error.contains("invalid kafka.settings.\"security.protocol\" \"TLS\""),
            "{error}"
        );
    }

    #[test]
    fn both_password_sources_rejected() {
        let mut kafka = config(&format!("{SCRAM}\n").replace(
            "[settings]",
            "sasl_password_file = \"/run/password\"\n[settings]",
        ));
        let error = kafka.validate_and_load_secrets().unwrap_err();
        assert!(
            error.contains("both kafka.sasl_password_env and kafka.sasl_password_file"),
            "{error}"
        );
    }

    #[test]
    fn plaintext_default_passes() {
        let mut kafka = KafkaConfig::default();
        assert_eq!(kafka.validate_and_load_secrets(), Ok(()));
        assert_eq!(kafka.security_protocol(), SecurityProtocol::Plaintext);
    }
}
