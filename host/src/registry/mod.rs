//! Component versions per hospital: what is active, what was, and how a change reaches
//! every host instance.
//!
//! A compacted Kafka control topic is the source of truth. It contains two kinds of record,
//! all on partition 0 so that they keep their order:
//!
//! - `component/<sha256>`: the bytes of one component, written once per version.
//! - `hospital/<id>`: the whole state of one hospital as JSON ([`HospitalState`]): the
//!   active sha256 per role, thresholds, scoring options, every version deployed, the
//!   change history and the quarantined versions. Each change writes the next revision,
//!   so compaction keeps exactly the current state.
//!
//! Every instance reads the topic to its end before it consumes vitals and then follows
//! it; a change made through any instance's API reaches all of them in the topic's
//! order, and each applies it between two records, so no record sees a mix of versions.
//! The state directory is a cache of the topic: components by sha256, the last state of
//! each hospital, and the audit log of changes made through this instance. When the topic
//! is empty (a new cluster, or the embedded one, which starts empty every time) the
//! cached states seed it, then the hospital files for hospitals neither knows.

pub mod inbox;
pub mod validate;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};

use crate::config::{ComponentPaths, HospitalConfig, KafkaConfig, Scoring, Thresholds};
use crate::pipeline::Hospital;
use crate::runtime::{ComponentSet, LoadedComponent, Role, Runtime};
use crate::source::profiles::{self, ProfileEvent};
use validate::{Rejection, Sample};

/// Key prefix of component records on the control topic.
const COMPONENT_KEY: &str = "component/";
/// Key prefix of hospital state records on the control topic.
const HOSPITAL_KEY: &str = "hospital/";
/// Changes kept in a hospital's history; older ones stay in the audit logs.
const HISTORY_LIMIT: usize = 200;
/// How long an API call waits for its change to go live on this instance.
const APPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// The `[registry]` table of the host config file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// Directory of the component cache, cached hospital states and the audit log.
    /// Default `cardiowatch-state`, relative to the working directory.
    #[serde(default = "default_dir")]
    pub dir: PathBuf,
    /// Compacted Kafka topic that carries components and hospital states. Default
    /// `cardiowatch.control`.
    #[serde(default = "default_control_topic")]
    pub control_topic: String,
    /// Consecutive records on which a hospital's components fail before the failing
    /// version is quarantined and the previous good one restored. 0 never quarantines.
    /// Default 5.
    #[serde(default = "default_quarantine_after")]
    pub quarantine_after: u32,
    /// Largest accepted component, in bytes. Default 16 MiB.
    #[serde(default = "default_max_component_bytes")]
    pub max_component_bytes: usize,
    /// Directory watched for components shipped by file copy, laid out as
    /// `<watch_dir>/<hospital>/<role>.wasm`. Default none (not watched).
    #[serde(default)]
    pub watch_dir: Option<PathBuf>,
}

fn default_dir() -> PathBuf {
    PathBuf::from("cardiowatch-state")
}
fn default_control_topic() -> String {
    "cardiowatch.control".into()
}
fn default_quarantine_after() -> u32 {
    5
}
fn default_max_component_bytes() -> usize {
    16 << 20
}

impl Default for RegistryConfig {
    fn default() -> Self {
        toml::from_str("").expect("every registry setting has a default")
    }
}

/// One version of one role's component for a hospital.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Version {
    /// Role.
    pub role: Role,
    /// Lowercase hex sha256 of the component bytes.
    pub sha256: String,
    /// Size in bytes.
    pub size_bytes: usize,
    /// Label given at upload, such as a release number.
    pub label: Option<String>,
    /// The model baked into a score component, as `name@version`.
    pub model: Option<String>,
    /// When it was first deployed for this hospital, milliseconds since the epoch.
    pub deployed_at_ms: i64,
    /// The deployer: a token's name, a file or the host.
    pub deployed_by: String,
}

/// The kind of a change.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Loaded from a hospital file or the local cache into an empty control topic.
    Seed,
    /// A new version went live.
    Deploy,
    /// An earlier version went live again.
    Rollback,
    /// Thresholds changed.
    Thresholds,
    /// Preprocess self-test samples changed.
    Samples,
    /// A failing version was taken out and the previous good one restored.
    Quarantine,
    /// A candidate score component started running in shadow.
    Shadow,
    /// The shadow candidate stopped without going live.
    ShadowStop,
    /// The shadow candidate became the active score component.
    Promote,
}

/// One entry of a hospital's history and of the audit log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Change {
    /// Random id, to tell two changes of the same revision apart.
    pub id: String,
    /// Hospital.
    pub hospital: String,
    /// Revision of the hospital state this change produced.
    pub revision: u64,
    /// Milliseconds since the epoch.
    pub at_ms: i64,
    /// Who: `operator:<token digest prefix>`, `hospital:<id>:<prefix>`, a file, or the host.
    pub by: String,
    /// What.
    pub action: Action,
    /// Role, for component changes.
    pub role: Option<Role>,
    /// sha256 now active for the role.
    pub sha256: Option<String>,
    /// sha256 active for the role before.
    pub previous_sha256: Option<String>,
    /// Details: the label, the threshold changes, the quarantine reason.
    pub detail: String,
}

/// Active component sha256 per role.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Active {
    /// Preprocess.
    pub preprocess: String,
    /// Score.
    pub score: String,
    /// Alert rules.
    pub alert_rules: String,
}

impl Active {
    /// Returns the sha256 active for `role`.
    pub fn get(&self, role: Role) -> &str {
        match role {
            Role::Preprocess => &self.preprocess,
            Role::Score => &self.score,
            Role::AlertRules => &self.alert_rules,
        }
    }

    fn set(&mut self, role: Role, sha256: String) {
        match role {
            Role::Preprocess => self.preprocess = sha256,
            Role::Score => self.score = sha256,
            Role::AlertRules => self.alert_rules = sha256,
        }
    }
}

/// The state of one hospital as the control topic records it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HospitalState {
    /// Hospital id.
    pub hospital: String,
    /// Incremented by every change.
    pub revision: u64,
    /// Display name.
    pub name: Option<String>,
    /// Alert thresholds.
    pub thresholds: Thresholds,
    /// Scoring options.
    pub scoring: Scoring,
    /// Preprocess self-test samples; empty means the built-in ones.
    #[serde(default)]
    pub samples: Vec<Sample>,
    /// Active components.
    pub active: Active,
    /// Every version deployed, oldest first.
    pub versions: Vec<Version>,
    /// Changes, oldest first, at most the last 200.
    pub history: Vec<Change>,
    /// sha256 of versions taken out after repeated failures.
    pub quarantined: Vec<String>,
    /// A candidate score component running beside the active one.
    #[serde(default)]
    pub shadow: Option<Version>,
}

/// How a shadow candidate compares with the active score component on live traffic, as
/// seen by one host instance since the candidate started there.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ShadowStats {
    /// sha256 of the candidate.
    pub sha256: String,
    /// Readings both saw.
    pub compared: u64,
    /// Readings on which both models ran.
    pub both_scored: u64,
    /// Readings on which the candidate did not run or failed.
    pub shadow_failed: u64,
    /// Mean absolute probability difference where both ran.
    pub mean_abs_difference: f64,
    /// Largest absolute probability difference where both ran.
    pub max_abs_difference: f64,
    /// Alerts the candidate would have added.
    pub alerts_added: u64,
    /// Alerts the candidate would have removed.
    pub alerts_removed: u64,
    /// Readings whose alerts would differ.
    pub readings_with_alert_changes: u64,
}

impl ShadowStats {
    fn record(&mut self, shadow: &crate::pipeline::output::ShadowRecord) {
        self.compared += 1;
        if shadow.error.is_some() {
            self.shadow_failed += 1;
        }
        if let (Some(live), Some(candidate)) = (shadow.live_probability, shadow.shadow_probability)
        {
            let difference = (live - candidate).abs();
            self.both_scored += 1;
            self.mean_abs_difference +=
                (difference - self.mean_abs_difference) / self.both_scored as f64;
            self.max_abs_difference = self.max_abs_difference.max(difference);
        }
        let added = shadow
            .shadow_alerts
            .iter()
            .filter(|alert| !shadow.live_alerts.contains(alert))
            .count() as u64;
        let removed = shadow
            .live_alerts
            .iter()
            .filter(|alert| !shadow.shadow_alerts.contains(alert))
            .count() as u64;
        self.alerts_added += added;
        self.alerts_removed += removed;
        if added + removed > 0 {
            self.readings_with_alert_changes += 1;
        }
    }
}

impl HospitalState {
    /// The version record of `sha256` in `role`.
    pub fn version(&self, role: Role, sha256: &str) -> Option<&Version> {
        self.versions
            .iter()
            .find(|v| v.role == role && v.sha256 == sha256)
    }

    /// The versions of `role` that went live, as a stack: a deploy or promotion pushes,
    /// a rollback or quarantine returns to an entry below the top and drops what was
    /// above it. The top is the active version.
    fn live_stack(&self, role: Role) -> Vec<&str> {
        let mut stack: Vec<&str> = self
            .versions
            .iter()
            .find(|v| v.role == role)
            .map(|v| vec![v.sha256.as_str()])
            .unwrap_or_default();
        for change in self.history.iter().filter(|c| c.role == Some(role)) {
            let Some(sha256) = change.sha256.as_deref() else {
                continue;
            };
            match change.action {
                Action::Deploy | Action::Promote => stack.push(sha256),
                Action::Rollback | Action::Quarantine => {
                    match stack.iter().rposition(|s| *s == sha256) {
                        Some(position) => stack.truncate(position + 1),
                        None => stack.push(sha256),
                    }
                }
                Action::Seed
                | Action::Thresholds
                | Action::Samples
                | Action::Shadow
                | Action::ShadowStop => {}
            }
        }
        stack
    }

    /// The version a rollback of `role` returns to: the one that was live before the
    /// active one, skipping quarantined versions. Rolling back twice goes further back,
    /// never forward to the version just rolled away from.
    pub fn previous_good(&self, role: Role) -> Option<&Version> {
        let active = self.active.get(role);
        let stack = self.live_stack(role);
        stack
            .iter()
            .rev()
            .skip(1)
            .find(|sha| **sha != active && !self.quarantined.iter().any(|q| q == *sha))
            .and_then(|sha| self.version(role, sha))
    }

    /// The version a quarantine falls back to: the previous good one, else the most
    /// recently deployed version that is neither active nor quarantined.
    pub fn fallback(&self, role: Role) -> Option<&Version> {
        let active = self.active.get(role);
        self.previous_good(role).or_else(|| {
            self.versions.iter().rev().find(|v| {
                v.role == role && v.sha256 != active && !self.quarantined.contains(&v.sha256)
            })
        })
    }

    /// Returns the state after `change`, with the revision and history advanced.
    fn next(&self, mut change: Change, apply: impl FnOnce(&mut HospitalState)) -> Self {
        let mut next = self.clone();
        apply(&mut next);
        next.revision = self.revision + 1;
        change.revision = next.revision;
        next.history.push(change);
        if next.history.len() > HISTORY_LIMIT {
            let excess = next.history.len() - HISTORY_LIMIT;
            next.history.drain(..excess);
        }
        next
    }
}

/// A hospital built from a new state, for the consume loop to swap in between records.
pub struct Activation {
    /// The hospital with its instances.
    pub hospital: Hospital,
    /// The revision it runs.
    pub revision: u64,
}

/// The reason a change was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// No such hospital.
    #[error("unknown hospital {0:?}: list them with `cardiowatch versions`")]
    UnknownHospital(String),
    /// The upload failed a check.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The request makes no sense in the current state.
    #[error("{0}")]
    Conflict(String),
    /// The request is malformed.
    #[error("{0}")]
    Invalid(String),
    /// Kafka or the local disk failed.
    #[error("{0}")]
    Unavailable(String),
}

/// The report of an accepted change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChangeReport {
    /// The change.
    pub change: Change,
    /// The hospital's state after it.
    pub state: HospitalState,
    /// Milliseconds spent validating (compile, checks, self-test).
    pub validate_ms: u64,
    /// Milliseconds from the request to the change being live on this instance.
    pub live_ms: u64,
}

/// The registry: shared by the admin API, the control follower and the consume loop.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    runtime: Runtime,
    config: RegistryConfig,
    producer: FutureProducer,
    states: Mutex<BTreeMap<String, HospitalState>>,
    published: Mutex<HashSet<String>>,
    compiled: Mutex<HashMap<(Role, String), LoadedComponent>>,
    applied: watch::Sender<BTreeMap<String, u64>>,
    shadow_stats: Mutex<BTreeMap<String, ShadowStats>>,
    /// Serialises changes made through this instance.
    changes: tokio::sync::Mutex<()>,
    audit: Mutex<()>,
}

/// Follows the control topic after start-up; run it with [`Follower::run`].
pub struct Follower {
    registry: Registry,
    events: mpsc::Receiver<ProfileEvent>,
    reader: tokio::task::JoinHandle<()>,
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}

impl Registry {
    /// Reads the control topic to its end, seeds it where needed, and builds every
    /// hospital it names.
    ///
    /// # Errors
    ///
    /// Kafka unreachable, the topic not creatable, a component missing or failing to load.
    pub async fn start(
        runtime: Runtime,
        kafka: &KafkaConfig,
        config: RegistryConfig,
        seeds: Vec<HospitalConfig>,
        shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<(Registry, Vec<Hospital>, Follower)> {
        for sub in ["components", "hospitals"] {
            let dir = config.dir.join(sub);
            std::fs::create_dir_all(&dir).with_context(|| {
                format!("failed to create the state directory {}", dir.display())
            })?;
        }
        ensure_topic(kafka, &config).await?;
        let producer: FutureProducer = crate::source::client_config(kafka)
            .set(
                "message.max.bytes",
                (config.max_component_bytes + (1 << 20)).to_string(),
            )
            .set("enable.idempotence", "true")
            .create()
            .context("failed to create the control topic producer")?;
        let (applied, _) = watch::channel(BTreeMap::new());
        let registry = Registry {
            inner: Arc::new(Inner {
                runtime,
                config,
                producer,
                states: Mutex::new(BTreeMap::new()),
                published: Mutex::new(HashSet::new()),
                compiled: Mutex::new(HashMap::new()),
                applied,
                shadow_stats: Mutex::new(BTreeMap::new()),
                changes: tokio::sync::Mutex::new(()),
                audit: Mutex::new(()),
            }),
        };
        let (tx, mut events) = mpsc::channel(256);
        let topic = registry.inner.config.control_topic.clone();
        let reader = profiles::spawn_reader(kafka.clone(), &topic, "control", tx, shutdown)?;
        let started = Instant::now();
        while let Some(event) = events.recv().await {
            match event {
                ProfileEvent::Record(record) => {
                    registry.apply_record(record.key.as_deref(), &record.payload);
                }
                ProfileEvent::CaughtUp => break,
            }
        }
        let known = registry.inner.states.lock().expect("states").len();
        tracing::info!(
            hospitals = known,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "control topic read"
        );
        registry.warn_about_changed_files(&seeds);
        registry.seed(seeds).await?;
        let states: Vec<HospitalState> = registry
            .inner
            .states
            .lock()
            .expect("states")
            .values()
            .cloned()
            .collect();
        let mut hospitals = Vec::new();
        for state in &states {
            let hospital = registry.build(state).with_context(|| {
                format!(
                    "failed to load the components of hospital {:?}",
                    state.hospital
                )
            })?;
            tracing::info!(
                hospital = %state.hospital,
                revision = state.revision,
                score_sha256 = %state.active.score,
                "hospital loaded"
            );
            registry.mark_applied(&state.hospital, state.revision);
            hospitals.push(hospital);
        }
        let follower = Follower {
            registry: registry.clone(),
            events,
            reader,
        };
        Ok((registry, hospitals, follower))
    }

    /// Returns the configuration it runs with.
    pub fn config(&self) -> &RegistryConfig {
        &self.inner.config
    }

    /// Returns every hospital's state, by id.
    pub fn states(&self) -> BTreeMap<String, HospitalState> {
        self.inner.states.lock().expect("states").clone()
    }

    /// One hospital's state.
    pub fn state(&self, hospital: &str) -> Option<HospitalState> {
        self.inner
            .states
            .lock()
            .expect("states")
            .get(hospital)
            .cloned()
    }

    /// The bytes of a stored component.
    pub fn component_bytes(&self, sha256: &str) -> Option<Vec<u8>> {
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        std::fs::read(self.blob_path(sha256)).ok()
    }

    /// Records that this instance's consume loop runs `revision` of `hospital`.
    pub fn mark_applied(&self, hospital: &str, revision: u64) {
        self.inner.applied.send_modify(|applied| {
            applied.insert(hospital.to_string(), revision);
        });
    }

    fn blob_path(&self, sha256: &str) -> PathBuf {
        self.inner
            .config
            .dir
            .join("components")
            .join(format!("{sha256}.wasm"))
    }

    fn state_path(&self, hospital: &str) -> PathBuf {
        self.inner
            .config
            .dir
            .join("hospitals")
            .join(format!("{hospital}.json"))
    }

    /// Applies one control record; returns the state when it is newer than the known one.
    fn apply_record(&self, key: Option<&[u8]>, payload: &[u8]) -> Option<HospitalState> {
        let key = key.and_then(|key| std::str::from_utf8(key).ok())?;
        if let Some(sha256) = key.strip_prefix(COMPONENT_KEY) {
            if hex::encode(Sha256::digest(payload)) != sha256 {
                tracing::warn!(
                    key,
                    "control record's bytes do not match its sha256; ignored"
                );
                return None;
            }
            if let Err(error) = self.store_blob(sha256, payload) {
                tracing::error!(%error, sha256, "failed to cache a component");
            }
            self.inner
                .published
                .lock()
                .expect("published")
                .insert(sha256.to_string());
            return None;
        }
        let id = key.strip_prefix(HOSPITAL_KEY)?;
        let state: HospitalState = match serde_json::from_slice(payload) {
            Ok(state) => state,
            Err(error) => {
                tracing::warn!(%error, hospital = id, "unreadable hospital state on the control topic; ignored");
                return None;
            }
        };
        let mut states = self.inner.states.lock().expect("states");
        if states
            .get(id)
            .is_some_and(|known| known.revision >= state.revision)
        {
            return None;
        }
        if let Ok(json) = serde_json::to_vec_pretty(&state)
            && let Err(error) = std::fs::write(self.state_path(id), json)
        {
            tracing::warn!(%error, hospital = id, "failed to cache a hospital state");
        }
        states.insert(id.to_string(), state.clone());
        Some(state)
    }

    fn store_blob(&self, sha256: &str, bytes: &[u8]) -> std::io::Result<()> {
        let path = self.blob_path(sha256);
        if path.exists() {
            return Ok(());
        }
        let partial = path.with_extension("partial");
        std::fs::write(&partial, bytes)?;
        std::fs::rename(partial, path)
    }

    /// Seeds hospitals the topic does not know: from the cache, else from their files.
    async fn seed(&self, seeds: Vec<HospitalConfig>) -> anyhow::Result<()> {
        let known: HashSet<String> = self
            .inner
            .states
            .lock()
            .expect("states")
            .keys()
            .cloned()
            .collect();
        let mut ids: Vec<String> = seeds.iter().map(|s| s.id.clone()).collect();
        if let Ok(entries) = std::fs::read_dir(self.inner.config.dir.join("hospitals")) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "json")
                    && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
                    && !ids.iter().any(|id| id == stem)
                {
                    ids.push(stem.to_string());
                }
            }
        }
        for id in ids {
            if known.contains(&id) {
                continue;
            }
            let state = match self.cached_state(&id) {
                Some(state) => state,
                None => {
                    let Some(seed) = seeds.iter().find(|s| s.id == id) else {
                        continue;
                    };
                    crate::runtime::guest_calls(|| self.state_from_file(seed))?
                }
            };
            for role in Role::ALL {
                self.publish_blob(state.active.get(role)).await?;
            }
            self.publish_state(&state).await?;
            self.inner
                .states
                .lock()
                .expect("states")
                .insert(id.clone(), state);
        }
        Ok(())
    }

    /// Hospital files seed only hospitals the control topic and the cache do not know;
    /// says so when a file's thresholds or scoring differ from the running state.
    fn warn_about_changed_files(&self, seeds: &[HospitalConfig]) {
        let states = self.inner.states.lock().expect("states");
        for seed in seeds {
            let known = states
                .get(&seed.id)
                .cloned()
                .or_else(|| self.cached_state(&seed.id));
            if let Some(state) = known
                && (state.thresholds != seed.thresholds || state.scoring != seed.scoring)
            {
                tracing::warn!(
                    hospital = %seed.id,
                    revision = state.revision,
                    "the hospital file's thresholds or scoring differ from the running state, \
                     which the control topic or the state directory restored; the file seeds \
                     only a new hospital: change thresholds with `cardiowatch thresholds`, or \
                     remove the state to re-seed"
                );
            }
        }
    }

    fn cached_state(&self, hospital: &str) -> Option<HospitalState> {
        let text = std::fs::read(self.state_path(hospital)).ok()?;
        let state: HospitalState = serde_json::from_slice(&text).ok()?;
        let complete = Role::ALL
            .iter()
            .all(|&role| self.blob_path(state.active.get(role)).exists());
        if complete {
            tracing::info!(
                hospital,
                revision = state.revision,
                "restoring the cached state"
            );
            Some(state)
        } else {
            tracing::warn!(
                hospital,
                "cached state names components missing from the cache; seeding from the hospital file"
            );
            None
        }
    }

    fn state_from_file(&self, seed: &HospitalConfig) -> anyhow::Result<HospitalState> {
        let paths = &seed.components;
        let mut versions = Vec::new();
        let mut shas = Vec::new();
        let mut members = Vec::new();
        for (role, path) in [
            (Role::Preprocess, &paths.preprocess),
            (Role::Score, &paths.score),
            (Role::AlertRules, &paths.alert_rules),
        ] {
            let bytes = std::fs::read(path).with_context(|| {
                format!(
                    "hospital {:?}: component {} not found: build the components with `./dev components`",
                    seed.id,
                    path.display()
                )
            })?;
            let loaded = self.inner.runtime.load_bytes(role, path, &bytes)?;
            let sha256 = loaded.info.sha256.clone();
            self.store_blob(&sha256, &bytes)?;
            self.inner
                .compiled
                .lock()
                .expect("compiled")
                .insert((role, sha256.clone()), loaded.clone());
            members.push(loaded);
            shas.push(sha256);
        }
        let members: [LoadedComponent; 3] = members.try_into().ok().expect("three roles");
        let set = ComponentSet::new(&self.inner.runtime, members)?;
        let by = format!("file:{}.toml", seed.id);
        for (role, sha256) in Role::ALL.iter().zip(&shas) {
            versions.push(Version {
                role: *role,
                sha256: sha256.clone(),
                size_bytes: set.info(*role).size_bytes,
                label: None,
                model: (*role == Role::Score)
                    .then(|| format!("{}@{}", set.model.name, set.model.version)),
                deployed_at_ms: now_ms(),
                deployed_by: by.clone(),
            });
        }
        let change = Change {
            id: random_id(),
            hospital: seed.id.clone(),
            revision: 1,
            at_ms: now_ms(),
            by,
            action: Action::Seed,
            role: None,
            sha256: None,
            previous_sha256: None,
            detail: "first start: components and thresholds from the hospital file".into(),
        };
        Ok(HospitalState {
            hospital: seed.id.clone(),
            revision: 1,
            name: seed.name.clone(),
            thresholds: seed.thresholds.clone(),
            scoring: seed.scoring.clone(),
            samples: Vec::new(),
            active: Active {
                preprocess: shas[0].clone(),
                score: shas[1].clone(),
                alert_rules: shas[2].clone(),
            },
            versions,
            history: vec![change],
            quarantined: Vec::new(),
            shadow: None,
        })
    }

    /// The compiled component `sha256` for `role`, from memory or the disk cache.
    fn compiled(&self, role: Role, sha256: &str) -> anyhow::Result<LoadedComponent> {
        if let Some(loaded) = self
            .inner
            .compiled
            .lock()
            .expect("compiled")
            .get(&(role, sha256.to_string()))
        {
            return Ok(loaded.clone());
        }
        let loaded = self.inner.runtime.load(role, &self.blob_path(sha256))?;
        self.inner
            .compiled
            .lock()
            .expect("compiled")
            .insert((role, sha256.to_string()), loaded.clone());
        Ok(loaded)
    }

    fn component_set(&self, state: &HospitalState) -> anyhow::Result<Arc<ComponentSet>> {
        let members = [
            self.compiled(Role::Preprocess, &state.active.preprocess)?,
            self.compiled(Role::Score, &state.active.score)?,
            self.compiled(Role::AlertRules, &state.active.alert_rules)?,
        ];
        Ok(ComponentSet::new(&self.inner.runtime, members)?)
    }

    /// Builds the live hospital of a state.
    fn build(&self, state: &HospitalState) -> anyhow::Result<Hospital> {
        let set = self.component_set(state)?;
        let config = HospitalConfig {
            id: state.hospital.clone(),
            name: state.name.clone(),
            components: ComponentPaths {
                preprocess: self.blob_path(&state.active.preprocess),
                score: self.blob_path(&state.active.score),
                alert_rules: self.blob_path(&state.active.alert_rules),
            },
            thresholds: state.thresholds.clone(),
            scoring: state.scoring.clone(),
        };
        let hospital = Hospital::new(&self.inner.runtime, config, set.clone())?;
        let Some(shadow) = &state.shadow else {
            return Ok(hospital);
        };
        let members = [
            set.loaded(Role::Preprocess).clone(),
            self.compiled(Role::Score, &shadow.sha256)?,
            set.loaded(Role::AlertRules).clone(),
        ];
        let shadow_set = ComponentSet::new(&self.inner.runtime, members)?;
        Ok(hospital.with_shadow(&self.inner.runtime, shadow_set)?)
    }

    /// Adds one shadow comparison to the hospital's statistics.
    pub fn record_shadow(&self, shadow: &crate::pipeline::output::ShadowRecord) {
        let mut stats = self.inner.shadow_stats.lock().expect("shadow stats");
        let entry = stats.entry(shadow.hospital.clone()).or_default();
        if entry.sha256 != shadow.shadow_score_sha256 {
            *entry = ShadowStats {
                sha256: shadow.shadow_score_sha256.clone(),
                ..ShadowStats::default()
            };
        }
        entry.record(shadow);
    }

    /// The statistics of the hospital's current shadow candidate on this instance.
    pub fn shadow_stats(&self, hospital: &str) -> Option<ShadowStats> {
        let candidate = self.state(hospital)?.shadow?;
        let stats = self.inner.shadow_stats.lock().expect("shadow stats");
        Some(
            stats
                .get(hospital)
                .filter(|stats| stats.sha256 == candidate.sha256)
                .cloned()
                .unwrap_or(ShadowStats {
                    sha256: candidate.sha256,
                    ..ShadowStats::default()
                }),
        )
    }

    /// Runs every check on `bytes` as the `role` component of the hospital in `state`,
    /// on a blocking thread because compilation and the self-test take CPU time.
    async fn check_upload(
        &self,
        state: &HospitalState,
        role: Role,
        bytes: Vec<u8>,
    ) -> Result<(validate::Checked, Vec<u8>), ChangeError> {
        let current = self
            .component_set(state)
            .map_err(|error| ChangeError::Unavailable(format!("{error:#}")))?;
        let runtime = self.inner.runtime.clone();
        let max = self.inner.config.max_component_bytes;
        let (thresholds, samples) = (state.thresholds.clone(), state.samples.clone());
        let (checked, bytes) = tokio::task::spawn_blocking(move || {
            let checked =
                validate::check(&runtime, role, &bytes, max, &current, &thresholds, &samples);
            (checked, bytes)
        })
        .await
        .map_err(|error| ChangeError::Unavailable(format!("validation task failed: {error}")))?;
        Ok((checked?, bytes))
    }

    /// Stores a checked component on disk, keeps its compiled form, and writes it to the
    /// control topic unless it is there already.
    async fn keep_component(
        &self,
        role: Role,
        checked: &validate::Checked,
        bytes: &[u8],
    ) -> Result<(), ChangeError> {
        let sha256 = &checked.component.info.sha256;
        self.store_blob(sha256, bytes).map_err(|error| {
            ChangeError::Unavailable(format!("failed to store the component: {error}"))
        })?;
        self.inner
            .compiled
            .lock()
            .expect("compiled")
            .insert((role, sha256.clone()), checked.component.clone());
        self.publish_blob(sha256).await
    }

    /// Validates `bytes` as a score component and runs it in shadow for `hospital`.
    ///
    /// # Errors
    ///
    /// [`ChangeError`], with the failed check for a rejected upload.
    pub async fn start_shadow(
        &self,
        by: &str,
        hospital: &str,
        bytes: Vec<u8>,
        label: Option<String>,
    ) -> Result<ChangeReport, ChangeError> {
        let started = Instant::now();
        let _guard = self.inner.changes.lock().await;
        let state = self.current(hospital)?;
        let (checked, bytes) = self.check_upload(&state, Role::Score, bytes).await?;
        let validate_ms = started.elapsed().as_millis() as u64;
        let sha256 = checked.component.info.sha256.clone();
        if state.active.score == sha256 {
            return Err(ChangeError::Conflict(format!(
                "score component {sha256} is already active for {hospital}: a shadow must differ"
            )));
        }
        self.keep_component(Role::Score, &checked, &bytes).await?;
        let version = Version {
            role: Role::Score,
            sha256: sha256.clone(),
            size_bytes: bytes.len(),
            label: label.clone(),
            model: Some(format!(
                "{}@{}",
                checked.set.model.name, checked.set.model.version
            )),
            deployed_at_ms: now_ms(),
            deployed_by: by.to_string(),
        };
        let change = Change {
            id: random_id(),
            hospital: hospital.to_string(),
            revision: 0,
            at_ms: now_ms(),
            by: by.to_string(),
            action: Action::Shadow,
            role: Some(Role::Score),
            sha256: Some(sha256),
            previous_sha256: state.shadow.as_ref().map(|v| v.sha256.clone()),
            detail: label.unwrap_or_default(),
        };
        let next = state.next(change, |next| next.shadow = Some(version));
        self.commit(next, started, validate_ms).await
    }

    /// Stops the hospital's shadow candidate, or makes it the active score component.
    ///
    /// # Errors
    ///
    /// [`ChangeError::Conflict`] when no candidate runs.
    pub async fn end_shadow(
        &self,
        by: &str,
        hospital: &str,
        promote: bool,
    ) -> Result<ChangeReport, ChangeError> {
        let started = Instant::now();
        let _guard = self.inner.changes.lock().await;
        let state = self.current(hospital)?;
        let candidate = state.shadow.clone().ok_or_else(|| {
            ChangeError::Conflict(format!(
                "{hospital} runs no shadow candidate: start one with POST /api/hospitals/{hospital}/shadow"
            ))
        })?;
        let change = Change {
            id: random_id(),
            hospital: hospital.to_string(),
            revision: 0,
            at_ms: now_ms(),
            by: by.to_string(),
            action: if promote {
                Action::Promote
            } else {
                Action::ShadowStop
            },
            role: Some(Role::Score),
            sha256: Some(if promote {
                candidate.sha256.clone()
            } else {
                state.active.score.clone()
            }),
            previous_sha256: Some(if promote {
                state.active.score.clone()
            } else {
                candidate.sha256.clone()
            }),
            detail: candidate.label.clone().unwrap_or_default(),
        };
        let next = state.next(change, |next| {
            next.shadow = None;
            if promote {
                next.active.score = candidate.sha256.clone();
                if next.version(Role::Score, &candidate.sha256).is_none() {
                    next.versions.push(candidate);
                }
            }
        });
        self.commit(next, started, 0).await
    }

    async fn publish(&self, key: String, payload: &[u8]) -> Result<(), ChangeError> {
        let record = FutureRecord::<String, [u8]>::to(&self.inner.config.control_topic)
            .partition(0)
            .key(&key)
            .payload(payload);
        self.inner
            .producer
            .send(record, Duration::from_secs(30))
            .await
            .map(|_| ())
            .map_err(|(error, _)| {
                ChangeError::Unavailable(format!(
                    "failed to write {key} to the control topic {}: {error}",
                    self.inner.config.control_topic
                ))
            })
    }

    async fn publish_blob(&self, sha256: &str) -> Result<(), ChangeError> {
        if self
            .inner
            .published
            .lock()
            .expect("published")
            .contains(sha256)
        {
            return Ok(());
        }
        let bytes = std::fs::read(self.blob_path(sha256)).map_err(|error| {
            ChangeError::Unavailable(format!(
                "component {sha256} missing from the cache: {error}"
            ))
        })?;
        self.publish(format!("{COMPONENT_KEY}{sha256}"), &bytes)
            .await?;
        self.inner
            .published
            .lock()
            .expect("published")
            .insert(sha256.to_string());
        Ok(())
    }

    async fn publish_state(&self, state: &HospitalState) -> Result<(), ChangeError> {
        let json = serde_json::to_vec(state).expect("a state serialises");
        self.publish(format!("{HOSPITAL_KEY}{}", state.hospital), &json)
            .await
    }

    fn current(&self, hospital: &str) -> Result<HospitalState, ChangeError> {
        self.state(hospital)
            .ok_or_else(|| ChangeError::UnknownHospital(hospital.to_string()))
    }

    /// Validates `bytes` as `role` for `hospital` and makes it live on every instance.
    ///
    /// # Errors
    ///
    /// [`ChangeError`], with the failed check for a rejected upload.
    pub async fn deploy(
        &self,
        by: &str,
        hospital: &str,
        role: Role,
        bytes: Vec<u8>,
        label: Option<String>,
    ) -> Result<ChangeReport, ChangeError> {
        let started = Instant::now();
        let _guard = self.inner.changes.lock().await;
        let state = self.current(hospital)?;
        let (checked, bytes) = self.check_upload(&state, role, bytes).await?;
        let validate_ms = started.elapsed().as_millis() as u64;
        let sha256 = checked.component.info.sha256.clone();
        if state.active.get(role) == sha256 {
            return Err(ChangeError::Conflict(format!(
                "{role} component {sha256} is already active for {hospital}"
            )));
        }
        if state.quarantined.contains(&sha256) {
            return Err(ChangeError::Conflict(format!(
                "{role} component {sha256} was quarantined for {hospital} after repeated failures: upload a fixed build"
            )));
        }
        self.keep_component(role, &checked, &bytes).await?;
        let model = (role == Role::Score)
            .then(|| format!("{}@{}", checked.set.model.name, checked.set.model.version));
        let change = Change {
            id: random_id(),
            hospital: hospital.to_string(),
            revision: 0,
            at_ms: now_ms(),
            by: by.to_string(),
            action: Action::Deploy,
            role: Some(role),
            sha256: Some(sha256.clone()),
            previous_sha256: Some(state.active.get(role).to_string()),
            detail: label.clone().unwrap_or_default(),
        };
        let next = state.next(change, |next| {
            next.active.set(role, sha256.clone());
            if next.version(role, &sha256).is_none() {
                next.versions.push(Version {
                    role,
                    sha256: sha256.clone(),
                    size_bytes: bytes.len(),
                    label,
                    model,
                    deployed_at_ms: now_ms(),
                    deployed_by: by.to_string(),
                });
            }
        });
        self.commit(next, started, validate_ms).await
    }

    /// Makes an earlier version of `role` live again: `to`, or the previous good one.
    ///
    /// # Errors
    ///
    /// [`ChangeError`].
    pub async fn rollback(
        &self,
        by: &str,
        hospital: &str,
        role: Role,
        to: Option<&str>,
    ) -> Result<ChangeReport, ChangeError> {
        let started = Instant::now();
        let _guard = self.inner.changes.lock().await;
        let state = self.current(hospital)?;
        let target = match to {
            Some(sha256) => state.version(role, sha256).cloned().ok_or_else(|| {
                ChangeError::Invalid(format!(
                    "{hospital} has no {role} version {sha256}: list them with `cardiowatch versions {hospital}`"
                ))
            })?,
            None => state.previous_good(role).cloned().ok_or_else(|| {
                ChangeError::Conflict(format!("{hospital} has no earlier {role} version to roll back to"))
            })?,
        };
        if target.sha256 == state.active.get(role) {
            return Err(ChangeError::Conflict(format!(
                "{role} version {} is already active for {hospital}",
                target.sha256
            )));
        }
        if state.quarantined.contains(&target.sha256) {
            return Err(ChangeError::Conflict(format!(
                "{role} version {} is quarantined for {hospital}: choose another",
                target.sha256
            )));
        }
        self.compiled(role, &target.sha256)
            .map_err(|error| ChangeError::Unavailable(format!("{error:#}")))?;
        let change = Change {
            id: random_id(),
            hospital: hospital.to_string(),
            revision: 0,
            at_ms: now_ms(),
            by: by.to_string(),
            action: Action::Rollback,
            role: Some(role),
            sha256: Some(target.sha256.clone()),
            previous_sha256: Some(state.active.get(role).to_string()),
            detail: target.label.clone().unwrap_or_default(),
        };
        let next = state.next(change, |next| next.active.set(role, target.sha256.clone()));
        self.commit(next, started, 0).await
    }

    /// Merges `patch` (a JSON object of threshold fields) into the hospital's thresholds.
    ///
    /// # Errors
    ///
    /// [`ChangeError::Invalid`] naming the field and the allowed values.
    pub async fn set_thresholds(
        &self,
        by: &str,
        hospital: &str,
        patch: serde_json::Value,
    ) -> Result<ChangeReport, ChangeError> {
        let started = Instant::now();
        let _guard = self.inner.changes.lock().await;
        let state = self.current(hospital)?;
        let serde_json::Value::Object(fields) = patch else {
            return Err(ChangeError::Invalid(
                "thresholds must be a JSON object such as {\"model_probability\": 0.6}".into(),
            ));
        };
        let mut merged = serde_json::to_value(&state.thresholds).expect("thresholds serialise");
        let mut detail = Vec::new();
        for (name, value) in fields {
            let old = merged
                .get(&name)
                .cloned()
                .unwrap_or(serde_json::Value::Null);
            detail.push(format!("{name} {old} -> {value}"));
            merged[&name] = value;
        }
        let thresholds: Thresholds = serde_json::from_value(merged)
            .map_err(|error| ChangeError::Invalid(format!("invalid thresholds: {error}")))?;
        thresholds.validate().map_err(ChangeError::Invalid)?;
        let change = Change {
            id: random_id(),
            hospital: hospital.to_string(),
            revision: 0,
            at_ms: now_ms(),
            by: by.to_string(),
            action: Action::Thresholds,
            role: None,
            sha256: None,
            previous_sha256: None,
            detail: detail.join(", "),
        };
        let next = state.next(change, |next| next.thresholds = thresholds);
        self.commit(next, started, 0).await
    }

    /// Replaces the hospital's preprocess self-test samples.
    ///
    /// # Errors
    ///
    /// [`ChangeError`].
    pub async fn set_samples(
        &self,
        by: &str,
        hospital: &str,
        samples: Vec<Sample>,
    ) -> Result<ChangeReport, ChangeError> {
        let started = Instant::now();
        let _guard = self.inner.changes.lock().await;
        let state = self.current(hospital)?;
        let change = Change {
            id: random_id(),
            hospital: hospital.to_string(),
            revision: 0,
            at_ms: now_ms(),
            by: by.to_string(),
            action: Action::Samples,
            role: None,
            sha256: None,
            previous_sha256: None,
            detail: format!("{} samples", samples.len()),
        };
        let next = state.next(change, |next| next.samples = samples);
        self.commit(next, started, 0).await
    }

    /// Takes `sha256` out of `role` for `hospital` after repeated failures and restores
    /// the previous good version, on every instance.
    pub async fn quarantine(&self, hospital: &str, role: Role, sha256: &str, reason: &str) {
        let result = async {
            let _guard = self.inner.changes.lock().await;
            let state = self.current(hospital)?;
            if state.active.get(role) != sha256 {
                return Err(ChangeError::Conflict("already replaced".into()));
            }
            let fallback = state.fallback(role).cloned().ok_or_else(|| {
                ChangeError::Conflict(format!("no earlier good {role} version to fall back to"))
            })?;
            let change = Change {
                id: random_id(),
                hospital: hospital.to_string(),
                revision: 0,
                at_ms: now_ms(),
                by: "cardiowatch (automatic quarantine)".into(),
                action: Action::Quarantine,
                role: Some(role),
                sha256: Some(fallback.sha256.clone()),
                previous_sha256: Some(sha256.to_string()),
                detail: reason.to_string(),
            };
            let next = state.next(change, |next| {
                next.active.set(role, fallback.sha256.clone());
                next.quarantined.push(sha256.to_string());
            });
            self.commit(next, Instant::now(), 0).await
        }
        .await;
        match result {
            Ok(report) => tracing::error!(
                hospital,
                %role,
                quarantined = sha256,
                restored = report.change.sha256.as_deref().unwrap_or_default(),
                reason,
                "component quarantined after repeated failures; previous version restored"
            ),
            Err(error) => tracing::error!(
                hospital,
                %role,
                sha256,
                %error,
                "component keeps failing and could not be quarantined"
            ),
        }
    }

    /// Publishes `next`, waits until this instance runs it, and writes the audit log.
    async fn commit(
        &self,
        next: HospitalState,
        started: Instant,
        validate_ms: u64,
    ) -> Result<ChangeReport, ChangeError> {
        let change = next.history.last().cloned().expect("next() adds a change");
        self.publish_state(&next).await?;
        let hospital = next.hospital.clone();
        let mut applied = self.inner.applied.subscribe();
        let wait =
            applied.wait_for(|applied| applied.get(&hospital).is_some_and(|r| *r >= next.revision));
        let live = tokio::time::timeout(APPLY_TIMEOUT, wait).await;
        if !matches!(live, Ok(Ok(_))) {
            return Err(ChangeError::Unavailable(format!(
                "the change to {hospital} was written to the control topic but did not go live \
                 here within {} s: check the host log",
                APPLY_TIMEOUT.as_secs()
            )));
        }
        let live_ms = started.elapsed().as_millis() as u64;
        let state = self.current(&hospital)?;
        if state.history.iter().all(|c| c.id != change.id) {
            return Err(ChangeError::Conflict(format!(
                "another change to {hospital} was made at the same time and won; list the \
                 versions and retry"
            )));
        }
        self.audit(&change);
        Ok(ChangeReport {
            change,
            state,
            validate_ms,
            live_ms,
        })
    }

    fn audit(&self, change: &Change) {
        let _guard = self.inner.audit.lock().expect("audit");
        let path = self.inner.config.dir.join("audit.jsonl");
        let line = serde_json::to_string(change).expect("a change serialises");
        let result = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| {
                writeln!(file, "{line}")?;
                file.sync_data()
            });
        if let Err(error) = result {
            tracing::error!(%error, path = %path.display(), "failed to append to the audit log");
        }
    }
}

impl Follower {
    /// Applies every later control record; sends each newer hospital state, built, to
    /// the consume loop.
    pub async fn run(mut self, activations: mpsc::Sender<Activation>) {
        while let Some(event) = self.events.recv().await {
            let ProfileEvent::Record(record) = event else {
                continue;
            };
            let Some(state) = self
                .registry
                .apply_record(record.key.as_deref(), &record.payload)
            else {
                continue;
            };
            let registry = self.registry.clone();
            let revision = state.revision;
            let built = tokio::task::spawn_blocking(move || registry.build(&state)).await;
            match built {
                Ok(Ok(hospital)) => {
                    if activations
                        .send(Activation { hospital, revision })
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
                Ok(Err(error)) => {
                    tracing::error!(error = %format!("{error:#}"), revision, "failed to build a hospital from the control topic; keeping the running version")
                }
                Err(error) => tracing::error!(%error, "hospital build task failed"),
            }
        }
        self.reader.abort();
    }
}

/// Creates the control topic, compacted, with one partition; an existing one is kept.
async fn ensure_topic(kafka: &KafkaConfig, config: &RegistryConfig) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = crate::source::client_config(kafka)
        .create()
        .context("failed to create a Kafka admin client")?;
    // Listing every topic creates none, unlike asking for one by name on some brokers.
    let timeout = Duration::from_secs(10);
    let metadata = admin
        .inner()
        .fetch_metadata(None, timeout)
        .with_context(|| format!("failed to reach Kafka at {}", kafka.brokers))?;
    if metadata
        .topics()
        .iter()
        .any(|t| t.name() == config.control_topic)
    {
        return Ok(());
    }
    let max_bytes = (config.max_component_bytes + (1 << 20)).to_string();
    let topic = NewTopic::new(&config.control_topic, 1, TopicReplication::Fixed(-1))
        .set("cleanup.policy", "compact")
        .set("max.message.bytes", &max_bytes);
    let options = AdminOptions::new()
        .operation_timeout(Some(timeout))
        .request_timeout(Some(timeout));
    let results = admin
        .create_topics([&topic], &options)
        .await
        .with_context(|| {
            format!(
                "failed to create the control topic {}",
                config.control_topic
            )
        })?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => anyhow::bail!(
                "failed to create the control topic {topic}: {code}: create it compacted with \
                 one partition, or give the host the right to"
            ),
        }
    }
    Ok(())
}

fn random_id() -> String {
    hex::encode(rand::random::<[u8; 8]>())
}

/// Writes hospital files and component files for `states` into `dir`, as
/// `cardiowatch config export` does: `<id>.toml` and `components/<sha256>.wasm`.
///
/// # Errors
///
/// A file that cannot be written.
pub fn export(
    dir: &Path,
    states: &[HospitalState],
    bytes_of: impl Fn(&str) -> anyhow::Result<Vec<u8>>,
) -> anyhow::Result<Vec<PathBuf>> {
    let components = dir.join("components");
    std::fs::create_dir_all(&components)?;
    let mut written = Vec::new();
    for state in states {
        for role in Role::ALL {
            let sha256 = state.active.get(role);
            let path = components.join(format!("{sha256}.wasm"));
            if !path.exists() {
                std::fs::write(&path, bytes_of(sha256)?)?;
            }
        }
        let config = HospitalConfig {
            id: state.hospital.clone(),
            name: state.name.clone(),
            components: ComponentPaths {
                preprocess: PathBuf::from(format!("components/{}.wasm", state.active.preprocess)),
                score: PathBuf::from(format!("components/{}.wasm", state.active.score)),
                alert_rules: PathBuf::from(format!("components/{}.wasm", state.active.alert_rules)),
            },
            thresholds: state.thresholds.clone(),
            scoring: state.scoring.clone(),
        };
        let text = format!(
            "# Exported from the control topic at revision {} of {}.\n{}",
            state.revision,
            state.hospital,
            toml::to_string_pretty(&config)?
        );
        let path = dir.join(format!("{}.toml", state.hospital));
        std::fs::write(&path, text)?;
        written.push(path);
    }
    Ok(written)
}
