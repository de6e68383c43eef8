//! The wasmtime side: one engine, components compiled once, an instance set per hospital.
//!
//! Components get the WASI interfaces a Rust guest's standard library imports and nothing
//! behind them: no preopened directories, no sockets, empty environment and arguments,
//! clocks frozen at the Unix epoch, stdout and stderr captured into small buffers. Each
//! call runs under an epoch deadline and each store under a memory limit.

pub mod bindings;
mod guest;
pub mod http;
mod output_size;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Store};

use bindings::alerter::{Alerter, AlerterPre};
use bindings::preprocessor::{Preprocessor, PreprocessorPre};
use bindings::score::ModelMetadata;
use bindings::scorer::{Scorer, ScorerPre};
pub use guest::GuestState;

/// How often the epoch ticker advances; the unit of the per-call CPU deadline.
const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Errors of the wasmtime boundary. A guest's own typed error is not one of these: it is
/// returned inside `Ok` by each call.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A component file could not be read.
    #[error("failed to read component {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The bytes are not a component of the expected world.
    #[error("invalid {role} component {path}: {stage}: {message}")]
    Invalid {
        /// The role it was loaded for.
        role: Role,
        /// Which check failed.
        stage: LoadStage,
        /// The file.
        path: PathBuf,
        /// What wasmtime reported.
        message: String,
    },
    /// The guest trapped, ran past its deadline or exceeded its memory limit.
    #[error("{role} component trapped: {message}")]
    Trap {
        /// The role of the component that failed.
        role: Role,
        /// The trap and its backtrace summary.
        message: String,
    },
    /// The guest returned far more than any honest output.
    #[error("{role} component returned about {bytes} bytes, over the limit of {limit} bytes")]
    OutputTooLarge {
        /// The role of the component that failed.
        role: Role,
        /// Approximate size of the output.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
}

/// The check a component failed while loading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadStage {
    /// The bytes are not a valid component.
    Compile,
    /// It imports something the host does not provide.
    Link,
    /// It does not export its role's interface.
    World,
}

impl std::fmt::Display for LoadStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LoadStage::Compile => "not a valid WebAssembly component",
            LoadStage::Link => "imports something the host does not provide",
            LoadStage::World => "does not export the interface of its role's world",
        })
    }
}

/// The three component roles.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Raw message to canonical reading.
    Preprocess,
    /// Reading to probability and contributions.
    Score,
    /// NEWS2, thresholds and alert fatigue controls.
    AlertRules,
}

impl Role {
    /// Every role, in pipeline order.
    pub const ALL: [Role; 3] = [Role::Preprocess, Role::Score, Role::AlertRules];
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "preprocess" => Ok(Role::Preprocess),
            "score" => Ok(Role::Score),
            "alert-rules" | "alert_rules" => Ok(Role::AlertRules),
            other => Err(format!(
                "unknown role {other:?}: expected preprocess, score or alert-rules"
            )),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Preprocess => "preprocess",
            Role::Score => "score",
            Role::AlertRules => "alert-rules",
        })
    }
}

/// Sandbox limits applied to every component call.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// CPU time one call may take before it is interrupted, in milliseconds.
    pub max_call_ms: u64,
    /// Linear memory one store may grow to, in bytes.
    pub max_memory_bytes: usize,
    /// Bytes of stdout and of stderr kept per store; writes beyond fail in the guest.
    pub max_log_bytes: usize,
    /// Approximate bytes one call may return (strings plus 8 per number).
    pub max_output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_call_ms: 250,
            max_memory_bytes: 64 << 20,
            max_log_bytes: 16 << 10,
            max_output_bytes: 256 << 10,
        }
    }
}

/// Identity of one loaded component file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ComponentInfo {
    /// Role it serves.
    pub role: Role,
    /// File it was loaded from.
    pub path: PathBuf,
    /// Lowercase hex sha256 of the file.
    pub sha256: String,
    /// File size in bytes.
    pub size_bytes: usize,
}

/// The engine and linker shared by every hospital.
#[derive(Clone)]
pub struct Runtime {
    engine: Engine,
    linker: Arc<Linker<GuestState>>,
    limits: Limits,
    metrics: Option<crate::telemetry::metrics::Metrics>,
}

impl Runtime {
    /// Creates the engine, links WASI with nothing granted, and starts the epoch ticker.
    ///
    /// # Errors
    ///
    /// Fails only if wasmtime rejects its configuration.
    pub fn new(limits: Limits) -> anyhow::Result<Self> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        let engine = Engine::new(&config).map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| anyhow::anyhow!("{e:#}"))?;
        start_epoch_ticker(&engine);
        Ok(Runtime {
            engine,
            linker: Arc::new(linker),
            limits,
            metrics: None,
        })
    }

    /// Records every component call's latency and failures in `metrics`.
    pub fn with_metrics(mut self, metrics: crate::telemetry::metrics::Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Compiles a component file for `role` and checks it against the role's world.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::Read`] or [`RuntimeError::Invalid`], naming the file.
    pub fn load(&self, role: Role, path: &Path) -> Result<LoadedComponent, RuntimeError> {
        let bytes = std::fs::read(path).map_err(|source| RuntimeError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        self.load_bytes(role, path, &bytes)
    }

    /// Compiles component bytes for `role`; `path` only names them in errors.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::Invalid`] when the bytes are not a component, import more than WASI,
    /// or do not export the role's interface.
    pub fn load_bytes(
        &self,
        role: Role,
        path: &Path,
        bytes: &[u8],
    ) -> Result<LoadedComponent, RuntimeError> {
        let invalid = |stage: LoadStage, message: String| RuntimeError::Invalid {
            role,
            stage,
            path: path.to_path_buf(),
            message,
        };
        let component = Component::new(&self.engine, bytes)
            .map_err(|e| invalid(LoadStage::Compile, format!("{e:#}")))?;
        let imports = component
            .component_type()
            .imports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|error| invalid(LoadStage::Link, format!("{error:#}")))?;
        let wrong_world = |error: wasmtime::Error| invalid(LoadStage::World, format!("{error:#}"));
        let typed = match role {
            Role::Preprocess => {
                TypedPre::Preprocess(PreprocessorPre::new(pre).map_err(wrong_world)?)
            }
            Role::Score => TypedPre::Score(ScorerPre::new(pre).map_err(wrong_world)?),
            Role::AlertRules => TypedPre::AlertRules(AlerterPre::new(pre).map_err(wrong_world)?),
        };
        let info = ComponentInfo {
            role,
            path: path.to_path_buf(),
            sha256: hex::encode(Sha256::digest(bytes)),
            size_bytes: bytes.len(),
        };
        Ok(LoadedComponent {
            info,
            imports,
            pre: typed,
        })
    }

    /// The sandbox limits of every call.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Names of the interfaces compiled component bytes import.
    ///
    /// # Errors
    ///
    /// When wasmtime cannot compile the bytes.
    pub fn imports_of(&self, bytes: &[u8]) -> wasmtime::Result<Vec<String>> {
        let component = Component::new(&self.engine, bytes)?;
        Ok(component
            .component_type()
            .imports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect())
    }

    pub(crate) fn new_store(&self) -> Store<GuestState> {
        let mut store = Store::new(&self.engine, GuestState::new(&self.limits));
        store.limiter(|state| &mut state.limits);
        store.set_epoch_deadline(self.deadline_ticks());
        store
    }

    fn deadline_ticks(&self) -> u64 {
        (self.limits.max_call_ms / EPOCH_TICK.as_millis() as u64).max(1)
    }
}

/// Runs `calls` (component calls) so that a guest's blocking WASI call cannot panic the
/// async runtime.
///
/// The synchronous WASI bindings run a blocking host call, such as a guest's write to
/// stderr when it panics, with `block_on` on the ambient tokio runtime, which panics
/// on a thread that drives async tasks. On a multi-threaded runtime this hands the
/// thread's other tasks to another worker for the duration; elsewhere it calls
/// directly.
pub fn guest_calls<R>(calls: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(calls)
        }
        _ => calls(),
    }
}

fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("epoch-ticker".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("failed to spawn the epoch ticker thread");
}

#[derive(Clone)]
enum TypedPre {
    Preprocess(PreprocessorPre<GuestState>),
    Score(ScorerPre<GuestState>),
    AlertRules(AlerterPre<GuestState>),
}

/// A compiled component, checked against its world, ready to instantiate.
#[derive(Clone)]
pub struct LoadedComponent {
    /// Its identity.
    pub info: ComponentInfo,
    /// Names of the interfaces it imports, such as `wasi:cli/stdout@0.2.3`.
    pub imports: Vec<String>,
    pre: TypedPre,
}

/// The three components of one hospital, compiled and checked.
pub struct ComponentSet {
    preprocess: PreprocessorPre<GuestState>,
    score: ScorerPre<GuestState>,
    alert_rules: AlerterPre<GuestState>,
    /// Identity of each component, in role order.
    pub infos: [ComponentInfo; 3],
    /// Metadata the score component reported at load time.
    pub model: ModelMetadata,
    members: [LoadedComponent; 3],
}

impl ComponentSet {
    /// Assembles a set from one component per role and reads the model's metadata.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::Invalid`] if a component was loaded for another role, or a trap
    /// while reading the metadata.
    pub fn new(
        runtime: &Runtime,
        components: [LoadedComponent; 3],
    ) -> Result<Arc<Self>, RuntimeError> {
        let members = components.clone();
        let [preprocess, score, alert_rules] = components;
        let infos = [
            preprocess.info.clone(),
            score.info.clone(),
            alert_rules.info.clone(),
        ];
        let (
            TypedPre::Preprocess(preprocess),
            TypedPre::Score(score),
            TypedPre::AlertRules(alert_rules),
        ) = (preprocess.pre, score.pre, alert_rules.pre)
        else {
            return Err(RuntimeError::Invalid {
                role: Role::Preprocess,
                stage: LoadStage::World,
                path: infos[0].path.clone(),
                message: "components passed in the wrong role order".into(),
            });
        };
        let mut store = runtime.new_store();
        let scorer = score
            .instantiate(&mut store)
            .map_err(|error| trap(Role::Score, &error))?;
        let model = scorer
            .cardiowatch_pipeline_score()
            .call_metadata(&mut store)
            .map_err(|error| trap(Role::Score, &error))?;
        Ok(Arc::new(ComponentSet {
            preprocess,
            score,
            alert_rules,
            infos,
            model,
            members,
        }))
    }

    /// The compiled component serving `role`, for assembling a set that replaces one role.
    pub fn loaded(&self, role: Role) -> &LoadedComponent {
        match role {
            Role::Preprocess => &self.members[0],
            Role::Score => &self.members[1],
            Role::AlertRules => &self.members[2],
        }
    }

    /// Identity of the component serving `role`.
    pub fn info(&self, role: Role) -> &ComponentInfo {
        match role {
            Role::Preprocess => &self.infos[0],
            Role::Score => &self.infos[1],
            Role::AlertRules => &self.infos[2],
        }
    }
}

/// Live instances of one hospital's components in one store, reused across messages.
pub struct Instances {
    runtime: Runtime,
    /// Hospital id, the label of call metrics.
    hospital: String,
    set: Arc<ComponentSet>,
    store: Store<GuestState>,
    preprocessor: Preprocessor,
    scorer: Scorer,
    alerter: Alerter,
}

/// A trap as one line: the trap's kind without the wasm backtrace, which names only
/// function indices and would fill dead letters and logs.
fn trap(role: Role, error: &wasmtime::Error) -> RuntimeError {
    let message = match error.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => {
            "ran past its per-call CPU deadline (wasm trap: interrupt)".to_string()
        }
        Some(kind) => format!("wasm trap: {kind}"),
        None => format!("{error:#}"),
    };
    RuntimeError::Trap { role, message }
}

impl Instances {
    /// Instantiates all three components of `set` in a fresh store.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::Trap`] if a component's start-up traps.
    pub fn new(runtime: &Runtime, set: Arc<ComponentSet>) -> Result<Self, RuntimeError> {
        let mut store = runtime.new_store();
        let preprocessor = set
            .preprocess
            .instantiate(&mut store)
            .map_err(|e| trap(Role::Preprocess, &e))?;
        let scorer = set
            .score
            .instantiate(&mut store)
            .map_err(|e| trap(Role::Score, &e))?;
        let alerter = set
            .alert_rules
            .instantiate(&mut store)
            .map_err(|e| trap(Role::AlertRules, &e))?;
        Ok(Instances {
            runtime: runtime.clone(),
            hospital: String::new(),
            set,
            store,
            preprocessor,
            scorer,
            alerter,
        })
    }

    /// Labels call metrics of these instances with `hospital`.
    pub fn with_hospital(mut self, hospital: &str) -> Self {
        self.hospital = hospital.to_string();
        self
    }

    /// The component set these instances run.
    pub fn set(&self) -> &Arc<ComponentSet> {
        &self.set
    }

    /// Replaces the store and instances after a trap, since a trapped instance's memory
    /// may be left inconsistent.
    fn reset(&mut self) -> Result<(), RuntimeError> {
        let hospital = std::mem::take(&mut self.hospital);
        *self = Instances::new(&self.runtime, self.set.clone())?.with_hospital(&hospital);
        Ok(())
    }

    fn check_size(&self, role: Role, bytes: usize) -> Result<(), RuntimeError> {
        let limit = self.runtime.limits.max_output_bytes;
        if bytes > limit {
            return Err(RuntimeError::OutputTooLarge { role, bytes, limit });
        }
        Ok(())
    }

    fn arm_deadline(&mut self) {
        let ticks = self.runtime.deadline_ticks();
        self.store.set_epoch_deadline(ticks);
    }

    /// Runs `call` under the deadline; on a trap resets the instances and reports it.
    fn guarded<R>(
        &mut self,
        role: Role,
        call: impl FnOnce(&mut Self) -> wasmtime::Result<R>,
    ) -> Result<R, RuntimeError> {
        self.arm_deadline();
        let started = std::time::Instant::now();
        let result = call(self);
        if let Some(metrics) = &self.runtime.metrics {
            let role = role.to_string();
            metrics.observe_call(&self.hospital, &role, started.elapsed(), result.is_err());
        }
        match result {
            Ok(value) => Ok(value),
            Err(error) => {
                let failure = trap(role, &error);
                if let Err(reset_error) = self.reset() {
                    tracing::error!(%reset_error, "failed to re-instantiate after a trap");
                }
                Err(failure)
            }
        }
    }

    /// Calls preprocess `parse`.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::Trap`]; the guest's own input error is the inner `Err`.
    pub fn parse(
        &mut self,
        message: &bindings::preprocess::RawMessage,
    ) -> Result<Result<bindings::types::Reading, bindings::preprocess::InputError>, RuntimeError>
    {
        let result = self.guarded(Role::Preprocess, |this| {
            this.preprocessor
                .cardiowatch_pipeline_preprocess()
                .call_parse(&mut this.store, message)
        })?;
        self.check_size(Role::Preprocess, output_size::parse(&result))?;
        Ok(result)
    }

    /// Calls score `score`.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::Trap`]; the guest's own score error is the inner `Err`.
    pub fn score(
        &mut self,
        input: &bindings::score::ScoreInput,
        explain: bool,
    ) -> Result<Result<bindings::score::Prediction, bindings::score::ScoreError>, RuntimeError>
    {
        let result = self.guarded(Role::Score, |this| {
            this.scorer
                .cardiowatch_pipeline_score()
                .call_score(&mut this.store, input, explain)
        })?;
        self.check_size(Role::Score, output_size::score(&result))?;
        Ok(result)
    }

    /// Calls score `predict-features`.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::Trap`]; the guest's own score error is the inner `Err`.
    pub fn predict_features(
        &mut self,
        features: &[Option<f64>],
        explain: bool,
    ) -> Result<Result<bindings::score::Prediction, bindings::score::ScoreError>, RuntimeError>
    {
        self.guarded(Role::Score, |this| {
            this.scorer
                .cardiowatch_pipeline_score()
                .call_predict_features(&mut this.store, features, explain)
        })
    }

    /// Calls alert rules `evaluate`.
    ///
    /// # Errors
    ///
    /// [`RuntimeError::Trap`]; the guest's own rule error is the inner `Err`.
    pub fn evaluate(
        &mut self,
        input: &bindings::alert_rules::AlertInput,
    ) -> Result<
        Result<bindings::alert_rules::AlertOutcome, bindings::alert_rules::RuleError>,
        RuntimeError,
    > {
        let result = self.guarded(Role::AlertRules, |this| {
            this.alerter
                .cardiowatch_pipeline_alert_rules()
                .call_evaluate(&mut this.store, input)
        })?;
        self.check_size(Role::AlertRules, output_size::evaluate(&result))?;
        Ok(result)
    }
}
