//! `model`: inspect a model or a score component, run a component on a CSV of feature
//! rows, and package a saved XGBoost model into a score component.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command as Process;

use anyhow::{Context as _, bail};
use cardiowatch_core::package;
use cardiowatch_core::xgb::json::{OwnedModel, parse_model};
use clap::Subcommand;
use treeline::Tree;

use crate::runtime::{ComponentSet, Instances, Limits, Role, Runtime};

/// `model` subcommands.
#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Print metadata and, for a model file or manifest, feature importances and a tree.
    Inspect {
        /// A score component (`.wasm`), a manifest (`.toml`) or a saved model (`.json`).
        path: PathBuf,
        /// Index of the tree to draw.
        #[arg(long, default_value_t = 0)]
        tree: usize,
    },
    /// Score every row of a CSV of features (model order, empty cell = missing).
    Predict {
        /// Score component (`.wasm`).
        component: PathBuf,
        /// CSV file with a header row of feature names.
        csv: PathBuf,
        /// Also print exact TreeSHAP contributions, one column per feature plus bias.
        #[arg(long)]
        explain: bool,
    },
    /// Build a score component with the model of a manifest baked in.
    Package {
        /// Manifest (`manifest.toml`) naming the model, its features and their sources.
        #[arg(long)]
        manifest: PathBuf,
        /// Output component file.
        #[arg(long)]
        out: PathBuf,
        /// Root of the cardiowatch source tree to build in (the folder with the workspace
        /// `Cargo.toml`). Default: the tree this binary was built from.
        #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/.."), hide_default_value = true)]
        workspace: PathBuf,
    },
}

/// Runs a `model` subcommand.
pub fn run(command: ModelCommand) -> anyhow::Result<()> {
    match command {
        ModelCommand::Inspect { path, tree } => inspect(&path, tree),
        ModelCommand::Predict {
            component,
            csv,
            explain,
        } => predict(&component, &csv, explain),
        ModelCommand::Package {
            manifest,
            out,
            workspace,
        } => package_component(&manifest, &out, &workspace),
    }
}

fn inspect(path: &Path, tree: usize) -> anyhow::Result<()> {
    match path.extension().and_then(|ext| ext.to_str()) {
        Some("wasm") => inspect_component(path),
        Some("toml") => {
            let package = package::load(path)?;
            println!(
                "model {}@{}  sha256 {}",
                package.name, package.version, package.model_sha256
            );
            let names: Vec<String> = package.features.iter().map(|f| f.name.clone()).collect();
            for feature in &package.features {
                println!(
                    "  feature {:<28} from {:<40} unit {}",
                    feature.name, feature.source, feature.unit
                );
            }
            describe_model(&package.model, &names, tree)
        }
        _ => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("failed to read {}", path.display()))?;
            let model = parse_model(&bytes)?;
            let names = model
                .feature_names
                .clone()
                .unwrap_or_else(|| (0..model.num_features).map(|i| format!("f{i}")).collect());
            println!(
                "model {}  sha256 {}",
                path.display(),
                package::hex_sha256(&bytes)
            );
            describe_model(&model, &names, tree)
        }
    }
}

fn inspect_component(path: &Path) -> anyhow::Result<()> {
    let runtime = Runtime::new(Limits::default())?;
    let component = runtime.load(Role::Score, path)?;
    let sha256 = component.info.sha256.clone();
    let set = score_only_set(&runtime, component)?;
    let model = &set.model;
    println!("component {}  sha256 {sha256}", path.display());
    println!(
        "model {}@{}  objective {}  trees {}",
        model.name, model.version, model.objective, model.num_trees
    );
    println!(
        "model file sha256 {}  base_score {}",
        model.model_sha256, model.base_score
    );
    for feature in &model.features {
        println!(
            "  feature {:<28} from {:<40} unit {}",
            feature.name, feature.source, feature.unit
        );
    }
    for metric in &model.metrics {
        println!("  metric {:<20} {:.4}", metric.name, metric.value);
    }
    Ok(())
}

/// Builds a set around one score component, with the default preprocess and alert rules
/// stand-ins taken from the same file: only score calls are made on it.
fn score_only_set(
    runtime: &Runtime,
    component: crate::runtime::LoadedComponent,
) -> anyhow::Result<std::sync::Arc<ComponentSet>> {
    let path = component.info.path.clone();
    let preprocess = find_sibling(runtime, &path, Role::Preprocess, "preprocess.wasm")?;
    let alert_rules = find_sibling(runtime, &path, Role::AlertRules, "alert-rules.wasm")?;
    Ok(ComponentSet::new(
        runtime,
        [preprocess, component, alert_rules],
    )?)
}

fn find_sibling(
    runtime: &Runtime,
    score: &Path,
    role: Role,
    name: &str,
) -> anyhow::Result<crate::runtime::LoadedComponent> {
    let beside = score.with_file_name(name);
    let fallback = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/components")
        .join(name);
    let path = if beside.exists() { beside } else { fallback };
    runtime.load(role, &path).with_context(|| {
        format!("the {role} component is needed beside the score component: run `./dev components`")
    })
}

/// Counts splits and cover per feature, then draws one tree.
fn describe_model(model: &OwnedModel, names: &[String], tree: usize) -> anyhow::Result<()> {
    println!(
        "trees {}  features {}  base_score {}",
        model.trees.len(),
        model.num_features,
        model.base_score
    );
    let mut splits = vec![0usize; names.len()];
    let mut cover = vec![0f64; names.len()];
    for node in model.nodes.iter().filter(|node| !node.is_leaf) {
        splits[node.feature as usize] += 1;
        cover[node.feature as usize] += f64::from(node.cover);
    }
    let total_cover: f64 = cover.iter().sum::<f64>().max(f64::MIN_POSITIVE);
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_by(|&a, &b| cover[b].total_cmp(&cover[a]));
    println!("\nfeature importance (share of split cover, number of splits):");
    for index in order {
        println!(
            "  {:<28} {:>6.1} %  {:>5}",
            names[index],
            100.0 * cover[index] / total_cover,
            splits[index]
        );
    }
    if tree >= model.trees.len() {
        bail!(
            "invalid --tree {tree}: the model has trees 0..={}",
            model.trees.len() - 1
        );
    }
    let forest = model.forest();
    println!(
        "\ntree {tree}:\n{}",
        draw_tree(forest.tree_nodes(tree), 0, names)
    );
    Ok(())
}

fn draw_tree(nodes: &[cardiowatch_core::xgb::Node], index: u32, names: &[String]) -> Tree<String> {
    let node = nodes[index as usize];
    if node.is_leaf {
        return Tree::root(format!(
            "leaf {:+.4}  (cover {:.1})",
            node.value, node.cover
        ));
    }
    let name = &names[node.feature as usize];
    let missing = if node.default_left { "yes" } else { "no" };
    let label = format!(
        "{name} < {}  (missing: {missing}, cover {:.1})",
        node.value, node.cover
    );
    let yes = draw_tree(nodes, node.left, names);
    let no = draw_tree(nodes, node.right, names);
    Tree::new(label, vec![yes, no])
}

fn predict(component: &Path, csv_path: &Path, explain: bool) -> anyhow::Result<()> {
    let runtime = Runtime::new(Limits::default())?;
    let loaded = runtime.load(Role::Score, component)?;
    let set = score_only_set(&runtime, loaded)?;
    let names: Vec<String> = set.model.features.iter().map(|f| f.name.clone()).collect();
    let mut instances = Instances::new(&runtime, set)?;
    let mut reader = csv::Reader::from_path(csv_path)
        .with_context(|| format!("failed to read {}", csv_path.display()))?;
    check_header(reader.headers()?, &names)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut header = vec!["probability".to_string(), "margin".to_string()];
    if explain {
        header.extend(names.iter().map(|name| format!("contribution_{name}")));
        header.push("bias".into());
    }
    writeln!(out, "{}", header.join(","))?;
    for (line, row) in reader.records().enumerate() {
        let row = row?;
        let features = parse_row(&row, line + 2)?;
        let prediction = instances
            .predict_features(&features, explain)?
            .map_err(|error| anyhow::anyhow!("row {}: {error:?}", line + 2))?;
        let mut cells = vec![
            prediction.probability.to_string(),
            prediction.margin.to_string(),
        ];
        if let Some(contributions) = &prediction.contributions {
            cells.extend(contributions.iter().map(|c| c.contribution.to_string()));
            cells.push(prediction.bias.unwrap_or_default().to_string());
        }
        writeln!(out, "{}", cells.join(","))?;
    }
    Ok(())
}

fn check_header(header: &csv::StringRecord, names: &[String]) -> anyhow::Result<()> {
    let found: Vec<&str> = header.iter().map(str::trim).collect();
    if found != names.iter().map(String::as_str).collect::<Vec<_>>() {
        bail!(
            "the CSV header is {}: expected the model's features in order: {}",
            found.join(","),
            names.join(",")
        );
    }
    Ok(())
}

fn parse_row(row: &csv::StringRecord, line: usize) -> anyhow::Result<Vec<Option<f64>>> {
    row.iter()
        .enumerate()
        .map(|(column, cell)| {
            let cell = cell.trim();
            if cell.is_empty() || cell.eq_ignore_ascii_case("nan") {
                return Ok(None);
            }
            cell.parse::<f64>().map(Some).with_context(|| {
                format!(
                    "invalid number {cell:?} at line {line}, column {}",
                    column + 1
                )
            })
        })
        .collect()
}

fn package_component(manifest: &Path, out: &Path, workspace: &Path) -> anyhow::Result<()> {
    let manifest = std::fs::canonicalize(manifest)
        .with_context(|| format!("manifest {} not found", manifest.display()))?;
    let package = package::load(&manifest)?;
    println!(
        "packaging {}@{} ({} trees, {} features)",
        package.name,
        package.version,
        package.model.trees.len(),
        package.features.len()
    );
    if !workspace.join("functions/score/Cargo.toml").exists() {
        bail!(
            "{} is not a cardiowatch source tree (no functions/score/Cargo.toml): pass its root with --workspace",
            workspace.display()
        );
    }
    let status = Process::new("cargo")
        .current_dir(workspace)
        .args([
            "build",
            "--quiet",
            "--release",
            "--target",
            "wasm32-wasip2",
            "-p",
            "cardiowatch-score",
        ])
        .env("CARDIOWATCH_MODEL_MANIFEST", &manifest)
        .status()
        .context("failed to run cargo: is the Rust toolchain installed?")?;
    if !status.success() {
        bail!(
            "cargo build of the score component failed ({status}); add the target with `rustup target add wasm32-wasip2` if it is missing"
        );
    }
    let built = target_dir(workspace).join("wasm32-wasip2/release/cardiowatch_score.wasm");
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::copy(&built, out)
        .with_context(|| format!("failed to copy {} to {}", built.display(), out.display()))?;
    let bytes = std::fs::read(out)?;
    println!(
        "wrote {} ({} bytes, sha256 {})",
        out.display(),
        bytes.len(),
        package::hex_sha256(&bytes)
    );
    Ok(())
}

fn target_dir(workspace: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"))
}
