//! Packaging manifests and the code generator that bakes a model into a score component.
//!
//! A manifest (`manifest.toml` beside a saved model) names the model, its version, the
//! model and metrics files, and one `[[feature]]` per model feature with its canonical
//! source and unit. [`load`] validates all of it against the model; [`generate_rust`]
//! writes the model as `static` Rust data, so the component needs no parsing at start-up
//! and the model's bytes are part of the component's own sha256. [`bake_for_build_script`]
//! is the whole build script of every component that carries a model.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::xgb::features::FeatureSource;
use crate::xgb::json::{ModelError, OwnedModel, parse_model};

/// Why a manifest could not be packaged.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// A file could not be read.
    #[error("failed to read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The manifest is not valid TOML of the expected shape.
    #[error("invalid manifest {path}: {message}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The model file was rejected.
    #[error("{path}: {source}")]
    Model {
        /// The model file.
        path: PathBuf,
        /// The underlying error.
        source: ModelError,
    },
    /// The generated source could not be written.
    #[error("failed to write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Environment variable that names the manifest a component's build script bakes.
pub const MANIFEST_ENV: &str = "CARDIOWATCH_MODEL_MANIFEST";

/// Manifest baked when [`MANIFEST_ENV`] is unset, relative to the workspace root.
pub const DEFAULT_MANIFEST: &str = "models/cardio/manifest.toml";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestFile {
    name: String,
    version: String,
    model: PathBuf,
    #[serde(default)]
    metrics: Option<PathBuf>,
    feature: Vec<FeatureSpec>,
}

/// One model feature as the manifest declares it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureSpec {
    /// Feature name; must equal the name stored in the model, if any.
    pub name: String,
    /// Canonical source path, see [`FeatureSource::parse`].
    pub source: String,
    /// Unit the model was trained in.
    pub unit: String,
    /// Whether scoring fails when the value is missing, instead of letting the model
    /// route it down the default branch. Default false.
    #[serde(default)]
    pub required: bool,
}

/// A validated manifest together with its model.
#[derive(Debug, Clone)]
pub struct Package {
    /// Model name.
    pub name: String,
    /// Model version.
    pub version: String,
    /// Features in model order.
    pub features: Vec<FeatureSpec>,
    /// Numeric held-out metrics from the metrics file, sorted by name.
    pub metrics: Vec<(String, f64)>,
    /// Lowercase hex sha256 of the model file.
    pub model_sha256: String,
    /// The parsed model.
    pub model: OwnedModel,
    /// Files the package was read from, for build scripts to watch.
    pub inputs: Vec<PathBuf>,
}

/// Reads a manifest, its model and its metrics, and checks that they agree.
///
/// # Errors
///
/// [`PackageError`] naming the file and what is wrong: an unreadable file, an
/// unknown feature source, a feature count or name that differs from the model, or a
/// model the evaluator does not support.
pub fn load(manifest_path: &Path) -> Result<Package, PackageError> {
    let text = read_text(manifest_path)?;
    let manifest_error = |message: String| PackageError::Manifest {
        path: manifest_path.to_path_buf(),
        message,
    };
    let manifest: ManifestFile =
        toml::from_str(&text).map_err(|e| manifest_error(e.to_string()))?;
    let base = manifest_path.parent().unwrap_or(Path::new("."));

    let model_path = base.join(&manifest.model);
    let model_bytes = read_bytes(&model_path)?;
    let model = parse_model(&model_bytes).map_err(|source| PackageError::Model {
        path: model_path.clone(),
        source,
    })?;
    check_features(&manifest.feature, &model).map_err(manifest_error)?;

    let mut inputs = vec![manifest_path.to_path_buf(), model_path];
    let metrics = match &manifest.metrics {
        Some(relative) => {
            let path = base.join(relative);
            let metrics = read_metrics(&path)?;
            inputs.push(path);
            metrics
        }
        None => Vec::new(),
    };
    Ok(Package {
        name: manifest.name,
        version: manifest.version,
        features: manifest.feature,
        metrics,
        model_sha256: hex_sha256(&model_bytes),
        model,
        inputs,
    })
}

fn check_features(features: &[FeatureSpec], model: &OwnedModel) -> Result<(), String> {
    if features.len() != model.num_features as usize {
        return Err(format!(
            "{} [[feature]] entries for a model with {} features: declare one per model feature",
            features.len(),
            model.num_features
        ));
    }
    for (index, feature) in features.iter().enumerate() {
        FeatureSource::parse(&feature.source)
            .map_err(|e| format!("feature {:?}: {e}", feature.name))?;
        if let Some(names) = &model.feature_names
            && names[index] != feature.name
        {
            return Err(format!(
                "feature {index} is {:?} in the manifest but {:?} in the model: list features in model order",
                feature.name, names[index]
            ));
        }
    }
    Ok(())
}

fn read_bytes(path: &Path) -> Result<Vec<u8>, PackageError> {
    std::fs::read(path).map_err(|source| PackageError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn read_text(path: &Path) -> Result<String, PackageError> {
    std::fs::read_to_string(path).map_err(|source| PackageError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads the numeric top-level entries of a metrics JSON file.
fn read_metrics(path: &Path) -> Result<Vec<(String, f64)>, PackageError> {
    let text = read_text(path)?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| PackageError::Manifest {
            path: path.to_path_buf(),
            message: format!("not JSON: {e}"),
        })?;
    let mut metrics: Vec<(String, f64)> = value
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(name, value)| value.as_f64().map(|number| (name.clone(), number)))
        .collect();
    metrics.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(metrics)
}

/// Bakes the model named by [`MANIFEST_ENV`] into `$OUT_DIR/model.rs`, for `include!` in
/// a component. Call it from a build script only: it reads Cargo's `OUT_DIR` and prints
/// `cargo:rerun-if-*` lines for the variable and every file read.
///
/// A relative manifest path is resolved against `workspace_root`; without the variable
/// the manifest is [`DEFAULT_MANIFEST`]. Returns the manifest path that was baked.
///
/// # Errors
///
/// [`PackageError`] from [`load`], or [`PackageError::Write`] when `model.rs` cannot be
/// written.
pub fn bake_for_build_script(workspace_root: &Path) -> Result<PathBuf, PackageError> {
    println!("cargo:rerun-if-env-changed={MANIFEST_ENV}");
    let manifest = std::env::var_os(MANIFEST_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_MANIFEST));
    let manifest = if manifest.is_absolute() {
        manifest
    } else {
        workspace_root.join(manifest)
    };
    let package = load(&manifest)?;
    for input in &package.inputs {
        println!("cargo:rerun-if-changed={}", input.display());
    }
    let out_dir = std::env::var_os("OUT_DIR").expect("Cargo sets OUT_DIR for build scripts");
    let path = Path::new(&out_dir).join("model.rs");
    std::fs::write(&path, generate_rust(&package))
        .map_err(|source| PackageError::Write { path, source })?;
    Ok(manifest)
}

/// Returns the lowercase hex sha256 of `bytes`.
pub fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut out, byte| {
            let _ = write!(out, "{byte:02x}");
            out
        })
}

/// Writes the package as Rust source for `include!` in a component: `static` node and tree
/// tables, metadata constants and a `MODEL` static of type
/// [`BakedModel`](crate::xgb::baked::BakedModel) over them. The source names
/// `cardiowatch_core` by absolute path, so the including crate must depend on it.
pub fn generate_rust(package: &Package) -> String {
    let model = &package.model;
    let mut out =
        String::from("// Generated by cardiowatch-core's package::generate_rust. Do not edit.\n");
    out.push_str("use ::cardiowatch_core::xgb::baked::{BakedFeature, BakedModel, ModelInfo};\n");
    out.push_str("use ::cardiowatch_core::xgb::{Forest, Node, TreeSpan};\n");
    let _ = writeln!(out, "pub const NAME: &str = {:?};", package.name);
    let _ = writeln!(out, "pub const VERSION: &str = {:?};", package.version);
    let _ = writeln!(out, "pub const OBJECTIVE: &str = {:?};", model.objective);
    let _ = writeln!(
        out,
        "pub const MODEL_SHA256: &str = {:?};",
        package.model_sha256
    );
    let _ = writeln!(out, "pub const BASE_SCORE: f32 = {:?};", model.base_score);
    let _ = writeln!(out, "pub const BASE_MARGIN: f32 = {:?};", model.base_margin);
    let _ = writeln!(out, "pub const NUM_FEATURES: u32 = {};", model.num_features);

    let _ = writeln!(
        out,
        "pub static FEATURES: [BakedFeature; {}] = [",
        package.features.len()
    );
    for feature in &package.features {
        let _ = writeln!(
            out,
            "    BakedFeature {{ name: {:?}, source: {:?}, unit: {:?}, required: {} }},",
            feature.name, feature.source, feature.unit, feature.required
        );
    }
    out.push_str("];\n");

    let _ = writeln!(
        out,
        "pub static METRICS: [(&str, f64); {}] = [",
        package.metrics.len()
    );
    for (name, value) in &package.metrics {
        let _ = writeln!(out, "    ({name:?}, {value:?}),");
    }
    out.push_str("];\n");

    write_nodes(&mut out, model);
    out.push_str(MODEL_STATIC);
    out
}

/// The `MODEL` static over the generated constants and tables.
const MODEL_STATIC: &str = "pub static MODEL: BakedModel = BakedModel::new(
    ModelInfo {
        name: NAME,
        version: VERSION,
        objective: OBJECTIVE,
        model_sha256: MODEL_SHA256,
        base_score: BASE_SCORE,
        features: &FEATURES,
        metrics: &METRICS,
    },
    Forest { nodes: &NODES, trees: &TREES, num_features: NUM_FEATURES, base_margin: BASE_MARGIN },
);
";

fn write_nodes(out: &mut String, model: &OwnedModel) {
    let _ = writeln!(
        out,
        "pub static TREES: [TreeSpan; {}] = [",
        model.trees.len()
    );
    for tree in &model.trees {
        let _ = writeln!(
            out,
            "    TreeSpan {{ start: {}, len: {}, max_depth: {}, mean_value: {:?} }},",
            tree.start, tree.len, tree.max_depth, tree.mean_value
        );
    }
    out.push_str("];\n");
    let _ = writeln!(out, "pub static NODES: [Node; {}] = [", model.nodes.len());
    for node in &model.nodes {
        let _ = writeln!(
            out,
            "    Node {{ left: {}, right: {}, feature: {}, value: {:?}, cover: {:?}, default_left: {}, is_leaf: {} }},",
            node.left,
            node.right,
            node.feature,
            node.value,
            node.cover,
            node.default_left,
            node.is_leaf
        );
    }
    out.push_str("];\n");
}
