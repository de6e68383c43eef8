//! Host and hospital configuration, read from TOML and validated once at start-up.
//!
//! `hospitals/<id>.toml` names each role's component file and the hospital's thresholds.
//! Component paths are relative to the file that names them. Every field documents its
//! unit and default; unknown fields are rejected so a typo cannot silently keep a
//! default.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod kafka;

pub use kafka::{KafkaConfig, Secrets, SecurityProtocol};

/// Why configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file or directory could not be read.
    #[error("failed to read {path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file is not valid TOML of the expected shape.
    #[error("invalid config {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("invalid config {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong and how to fix it.
        message: String,
    },
}

/// When exact TreeSHAP contributions are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ExplainMode {
    /// For every prediction; costs far more than scoring.
    All,
    /// Only for predictions that raise an alert.
    #[default]
    Alerting,
    /// Never.
    None,
}

/// One hospital: its components and its thresholds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HospitalConfig {
    /// Hospital id, as sent in the `hospital-id` header. Must equal the file name stem.
    pub id: String,
    /// Display name. Default: the id.
    #[serde(default)]
    pub name: Option<String>,
    /// Component file per role.
    pub components: ComponentPaths,
    /// Alert thresholds.
    #[serde(default)]
    pub thresholds: Thresholds,
    /// Scoring options.
    #[serde(default)]
    pub scoring: Scoring,
}

/// Component files of one hospital, relative to its config file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentPaths {
    /// Preprocess component (`.wasm`).
    pub preprocess: PathBuf,
    /// Score component (`.wasm`), one per model.
    pub score: PathBuf,
    /// Alert rules component (`.wasm`).
    pub alert_rules: PathBuf,
}

/// Scoring options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scoring {
    /// When contributions are computed. Default `alerting`.
    #[serde(default)]
    pub explain: ExplainMode,
    /// A vital older than this, in seconds of event time, is not used. 0 disables the
    /// limit. Default 900 (15 minutes).
    #[serde(default = "default_max_reading_age_s")]
    pub max_reading_age_s: u64,
    /// Share of the model's features, 0 to 1, that must be present for the model's
    /// output to count. Below it the prediction is NEWS2 only, because a model fed mostly
    /// missing values returns little more than its training prior. Default 0.5.
    #[serde(default = "default_min_features_present")]
    pub min_features_present: f64,
}

fn default_min_features_present() -> f64 {
    0.5
}

fn default_max_reading_age_s() -> u64 {
    900
}

impl Default for Scoring {
    fn default() -> Self {
        Scoring {
            explain: ExplainMode::default(),
            max_reading_age_s: default_max_reading_age_s(),
            min_features_present: default_min_features_present(),
        }
    }
}

/// Alert thresholds, passed to the alert rules component on every call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Probability at or above which a model alert is raised. Default 0.7.
    #[serde(default = "default_model_probability")]
    pub model_probability: f64,
    /// Probability at or above which a model alert is urgent. Default 0.85.
    #[serde(default = "default_model_urgent_probability")]
    pub model_urgent_probability: f64,
    /// Probability margin below `model_probability` that ends a model alert episode.
    /// Default 0.05.
    #[serde(default = "default_model_hysteresis")]
    pub model_hysteresis: f64,
    /// NEWS2 aggregate for an urgent alert. Default 5 (RCP 2017).
    #[serde(default = "default_news2_urgent")]
    pub news2_urgent: u8,
    /// NEWS2 aggregate for an emergency alert. Default 7 (RCP 2017).
    #[serde(default = "default_news2_emergency")]
    pub news2_emergency: u8,
    /// Whether one NEWS2 parameter scoring 3 raises an urgent alert. Default true.
    #[serde(default = "default_true")]
    pub news2_single_parameter: bool,
    /// Minutes of event time within which an alert of the same kind and severity is not
    /// repeated. Default 30.
    #[serde(default = "default_suppression_window_minutes")]
    pub suppression_window_minutes: u32,
}

fn default_model_probability() -> f64 {
    0.7
}
fn default_model_urgent_probability() -> f64 {
    0.85
}
fn default_model_hysteresis() -> f64 {
    0.05
}
fn default_news2_urgent() -> u8 {
    5
}
fn default_news2_emergency() -> u8 {
    7
}
fn default_true() -> bool {
    true
}
fn default_suppression_window_minutes() -> u32 {
    30
}

impl Default for Thresholds {
    fn default() -> Self {
        toml::from_str("").expect("every threshold has a default")
    }
}

impl Thresholds {
    /// Checks ranges and consistency, naming the value and the fix.
    ///
    /// # Errors
    ///
    /// A message for [`ConfigError::Invalid`].
    pub fn validate(&self) -> Result<(), String> {
        for (name, value) in [
            ("model_probability", self.model_probability),
            ("model_urgent_probability", self.model_urgent_probability),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(format!(
                    "invalid thresholds.{name} {value}: expected 0.0..=1.0"
                ));
            }
        }
        if self.model_urgent_probability < self.model_probability {
            return Err(format!(
                "invalid thresholds.model_urgent_probability {}: expected at least model_probability {}",
                self.model_urgent_probability, self.model_probability
            ));
        }
        if !(0.0..=self.model_probability).contains(&self.model_hysteresis) {
            return Err(format!(
                "invalid thresholds.model_hysteresis {}: expected 0.0..={}",
                self.model_hysteresis, self.model_probability
            ));
        }
        if self.news2_urgent == 0
            || self.news2_urgent > self.news2_emergency
            || self.news2_emergency > 20
        {
            return Err(format!(
                "invalid thresholds.news2_urgent {} / news2_emergency {}: expected 1 <= urgent <= emergency <= 20",
                self.news2_urgent, self.news2_emergency
            ));
        }
        // A longer window would silence repeated alerts of a patient for over a day.
        if self.suppression_window_minutes > 24 * 60 {
            return Err(format!(
                "invalid thresholds.suppression_window_minutes {}: expected at most 1440 (one day)",
                self.suppression_window_minutes
            ));
        }
        Ok(())
    }
}

impl HospitalConfig {
    /// Reads and validates one hospital file; resolves component paths against it.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the file and the field.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config: HospitalConfig =
            toml::from_str(&text).map_err(|error| ConfigError::Parse {
                path: path.to_path_buf(),
                message: error.to_string(),
            })?;
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let stem = path
            .file_stem()
            .and_then(|stem| stem.to_str())
            .unwrap_or_default();
        if config.id != stem {
            return Err(invalid(format!(
                "id {:?} differs from the file name {stem:?}: rename the file or the id",
                config.id
            )));
        }
        config.thresholds.validate().map_err(invalid)?;
        let share = config.scoring.min_features_present;
        if !(0.0..=1.0).contains(&share) {
            return Err(invalid(format!(
                "invalid scoring.min_features_present {share}: expected 0.0..=1.0"
            )));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let components = &mut config.components;
        for file in [
            &mut components.preprocess,
            &mut components.score,
            &mut components.alert_rules,
        ] {
            if file.is_relative() {
                *file = base.join(&*file);
            }
        }
        Ok(config)
    }

    /// Display name, or the id.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.id)
    }
}

/// Reads every `*.toml` in `dir`, sorted by id.
///
/// # Errors
///
/// [`ConfigError`] for the first file that fails, or when the directory has none.
pub fn load_hospitals(dir: &Path) -> Result<Vec<HospitalConfig>, ConfigError> {
    let entries = std::fs::read_dir(dir).map_err(|source| ConfigError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(ConfigError::Invalid {
            path: dir.to_path_buf(),
            message: "no hospital files (*.toml) found: add one per hospital".into(),
        });
    }
    paths
        .iter()
        .map(|path| HospitalConfig::load(path))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_default_follow_rcp() {
        let thresholds = Thresholds::default();
        assert_eq!(thresholds.news2_urgent, 5);
        assert_eq!(thresholds.news2_emergency, 7);
        assert!(thresholds.validate().is_ok());
    }

    #[test]
    fn thresholds_reject_urgent_below_alert() {
        let thresholds = Thresholds {
            model_urgent_probability: 0.5,
            ..Thresholds::default()
        };
        let error = thresholds.validate().unwrap_err();
        assert!(error.contains("model_urgent_probability 0.5"), "{error}");
    }

    #[test]
    fn hospital_rejects_unknown_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h1.toml");
        std::fs::write(
            &path,
            "id = \"h1\"\n[components]\npreprocess = \"p.wasm\"\nscore = \"s.wasm\"\nalert_rules = \"a.wasm\"\n[thresholds]\nmodel_probabilty = 0.5\n",
        )
        .unwrap();
        let error = HospitalConfig::load(&path).unwrap_err().to_string();
        assert!(error.contains("model_probabilty"), "{error}");
    }

    #[test]
    fn hospital_resolves_relative_components() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h1.toml");
        std::fs::write(
            &path,
            "id = \"h1\"\n[components]\npreprocess = \"p.wasm\"\nscore = \"s.wasm\"\nalert_rules = \"/abs/a.wasm\"\n",
        )
        .unwrap();
        let config = HospitalConfig::load(&path).unwrap();
        assert_eq!(config.components.preprocess, dir.path().join("p.wasm"));
        assert_eq!(config.components.alert_rules, PathBuf::from("/abs/a.wasm"));
        assert_eq!(config.scoring.explain, ExplainMode::Alerting);
    }
}

/// The admin HTTP server: health, metrics and the dashboard.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Address to listen on. Default `127.0.0.1:8787`.
    #[serde(default = "default_admin_listen")]
    pub listen: std::net::SocketAddr,
    /// sha256 digests (lowercase hex) of operator tokens, which see every hospital.
    /// Make one with `printf %s "$TOKEN" | sha256sum`. Default none.
    #[serde(default)]
    pub operator_token_sha256: Vec<String>,
    /// sha256 digests of hospital tokens by hospital id. Each token reads only its hospital's data.
    /// Default none.
    #[serde(default)]
    pub hospital_token_sha256: BTreeMap<String, Vec<String>>,
    /// PEM file with the server certificate chain, leaf first. Set together with `tls_key`
    /// to serve the admin API over HTTPS. Default none (plain HTTP).
    #[serde(default)]
    pub tls_cert: Option<std::path::PathBuf>,
    /// PEM file with the private key of `tls_cert` (PKCS#8, PKCS#1 or SEC1). Default none.
    #[serde(default)]
    pub tls_key: Option<std::path::PathBuf>,
}

fn default_admin_listen() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 8787))
}

impl Default for AdminConfig {
    fn default() -> Self {
        toml::from_str("").expect("every admin setting has a default")
    }
}
