//! Reads a model saved by XGBoost's `Booster.save_model("model.json")`.
//!
//! The JSON schema is XGBoost's own. `learner` contains the objective,
//! `learner_model_param.base_score` and the `gradient_booster` with its `trees`, each tree
//! a set of parallel arrays. NOTE: only models saved by XGBoost 3.2 are tested here;
//! files of older versions are expected to parse (optional fields default) but are not
//! covered by a golden file. Anything the evaluator cannot reproduce
//! exactly is rejected with [`ModelError::Unsupported`] naming what it found.

use serde::Deserialize;
use serde_json::Value;

use super::forest::{Node, TreeSpan};

/// Why a saved model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The bytes are not an XGBoost JSON model.
    #[error("invalid XGBoost JSON model: {0}")]
    Invalid(String),
    /// The model uses something the evaluator does not implement.
    #[error("unsupported XGBoost model: {0}")]
    Unsupported(String),
}

/// A model loaded at run time, owning its nodes.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedModel {
    /// Nodes of all trees, tree after tree.
    pub nodes: Vec<Node>,
    /// One span per tree.
    pub trees: Vec<TreeSpan>,
    /// Number of input features.
    pub num_features: u32,
    /// `base_score` as XGBoost stores it, in probability space.
    pub base_score: f32,
    /// `base_score` in margin space, the value added to the sum of leaf values.
    pub base_margin: f32,
    /// Feature names stored in the model, if it was trained with names.
    pub feature_names: Option<Vec<String>>,
    /// Objective name, always `binary:logistic` once loaded.
    pub objective: String,
}

impl OwnedModel {
    /// Borrows the model as a [`super::Forest`].
    pub fn forest(&self) -> super::Forest<'_> {
        super::Forest {
            nodes: &self.nodes,
            trees: &self.trees,
            num_features: self.num_features,
            base_margin: self.base_margin,
        }
    }
}

#[derive(Deserialize)]
struct JsonTree {
    left_children: Vec<i64>,
    right_children: Vec<i64>,
    split_indices: Vec<i64>,
    split_conditions: Vec<f64>,
    default_left: Vec<Value>,
    sum_hessian: Vec<f64>,
    #[serde(default)]
    split_type: Vec<i64>,
    #[serde(default)]
    tree_param: Option<Value>,
}

/// Parses and validates a saved XGBoost JSON model.
///
/// # Errors
///
/// [`ModelError::Invalid`] for bytes that are not such a model, and
/// [`ModelError::Unsupported`] for another objective, several classes or targets, a
/// booster other than `gbtree`, or categorical splits.
pub fn parse_model(bytes: &[u8]) -> Result<OwnedModel, ModelError> {
    let root: Value = serde_json::from_slice(bytes)
        .map_err(|error| ModelError::Invalid(format!("not JSON: {error}")))?;
    let learner = root
        .get("learner")
        .ok_or_else(|| invalid("missing `learner`: is this a model saved with save_model?"))?;

    let objective = check_objective(learner)?;
    let params = learner
        .get("learner_model_param")
        .ok_or_else(|| invalid("missing `learner_model_param`"))?;
    check_single_output(params)?;
    let num_features = param_number(params, "num_feature")? as u32;
    let base_score = parse_base_score(params)?;
    let feature_names = parse_feature_names(learner, num_features)?;
    reject_categorical_types(learner)?;

    let booster = learner
        .get("gradient_booster")
        .ok_or_else(|| invalid("missing `gradient_booster`"))?;
    let booster_name = booster.get("name").and_then(Value::as_str).unwrap_or("");
    if booster_name != "gbtree" {
        return Err(ModelError::Unsupported(format!(
            "booster `{booster_name}`: only `gbtree` is supported (retrain with booster='gbtree')"
        )));
    }
    let trees = booster
        .pointer("/model/trees")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("missing `gradient_booster.model.trees`"))?;

    let mut model = OwnedModel {
        nodes: Vec::new(),
        trees: Vec::with_capacity(trees.len()),
        num_features,
        base_score,
        base_margin: probability_to_margin(base_score),
        feature_names,
        objective,
    };
    for (index, tree) in trees.iter().enumerate() {
        let tree: JsonTree = serde_json::from_value(tree.clone())
            .map_err(|error| invalid(&format!("tree {index}: {error}")))?;
        append_tree(&mut model, index, &tree)?;
    }
    if model.trees.is_empty() {
        return Err(invalid("the model has no trees"));
    }
    Ok(model)
}

fn invalid(message: &str) -> ModelError {
    ModelError::Invalid(message.to_string())
}

fn check_objective(learner: &Value) -> Result<String, ModelError> {
    let name = learner
        .pointer("/objective/name")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("missing `learner.objective.name`"))?;
    if name != "binary:logistic" {
        return Err(ModelError::Unsupported(format!(
            "objective `{name}`: only `binary:logistic` is supported"
        )));
    }
    Ok(name.to_string())
}

fn check_single_output(params: &Value) -> Result<(), ModelError> {
    let classes = param_number(params, "num_class").unwrap_or(0.0);
    if classes > 1.0 {
        return Err(ModelError::Unsupported(format!(
            "multi-class model with num_class {classes}: only binary classifiers are supported"
        )));
    }
    let targets = param_number(params, "num_target").unwrap_or(1.0);
    if targets > 1.0 {
        return Err(ModelError::Unsupported(format!(
            "multi-target model with num_target {targets}: only one target is supported"
        )));
    }
    Ok(())
}

/// Reads a numeric parameter that XGBoost stores as a string, such as `"13"` or
/// `"[5E-1]"` (XGBoost 3.1 and later write `base_score` as a one-element vector).
fn param_number(params: &Value, name: &str) -> Result<f64, ModelError> {
    let raw = params
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(&format!("missing `learner_model_param.{name}`")))?;
    let trimmed = raw.trim().trim_start_matches('[').trim_end_matches(']');
    if trimmed.contains(',') {
        return Err(ModelError::Unsupported(format!(
            "`{name}` has several values ({raw}): only one output is supported"
        )));
    }
    trimmed.trim().parse::<f64>().map_err(|_| {
        invalid(&format!(
            "`learner_model_param.{name}` is {raw:?}, not a number"
        ))
    })
}

fn parse_base_score(params: &Value) -> Result<f32, ModelError> {
    let base_score = param_number(params, "base_score")? as f32;
    if !(base_score > 0.0 && base_score < 1.0) {
        return Err(invalid(&format!(
            "base_score {base_score} is not a probability strictly between 0 and 1"
        )));
    }
    Ok(base_score)
}

/// Converts a probability to log-odds as XGBoost's logistic objective does.
pub fn probability_to_margin(probability: f32) -> f32 {
    -(1.0 / probability - 1.0).ln()
}

fn parse_feature_names(
    learner: &Value,
    num_features: u32,
) -> Result<Option<Vec<String>>, ModelError> {
    let Some(names) = learner.get("feature_names").and_then(Value::as_array) else {
        return Ok(None);
    };
    if names.is_empty() {
        return Ok(None);
    }
    let names: Vec<String> = names
        .iter()
        .map(|name| name.as_str().unwrap_or_default().to_string())
        .collect();
    if names.len() != num_features as usize {
        return Err(invalid(&format!(
            "{} feature names for {num_features} features",
            names.len()
        )));
    }
    Ok(Some(names))
}

fn reject_categorical_types(learner: &Value) -> Result<(), ModelError> {
    let Some(types) = learner.get("feature_types").and_then(Value::as_array) else {
        return Ok(());
    };
    if let Some(position) = types.iter().position(|kind| kind.as_str() == Some("c")) {
        return Err(ModelError::Unsupported(format!(
            "feature {position} is categorical: only numeric splits are supported \
             (one-hot encode it or retrain without enable_categorical)"
        )));
    }
    Ok(())
}

fn append_tree(model: &mut OwnedModel, index: usize, tree: &JsonTree) -> Result<(), ModelError> {
    check_tree_shape(index, tree)?;
    let len = tree.left_children.len();
    let start = model.nodes.len() as u32;
    for node in 0..len {
        model
            .nodes
            .push(read_node(model.num_features, index, tree, node)?);
    }
    let nodes = &model.nodes[start as usize..];
    let mut means = vec![0.0f32; len];
    fill_mean_values(nodes, 0, &mut means);
    let span = TreeSpan {
        start,
        len: len as u32,
        max_depth: depth_of(nodes, 0),
        mean_value: means[0],
    };
    model.trees.push(span);
    Ok(())
}

fn check_tree_shape(index: usize, tree: &JsonTree) -> Result<(), ModelError> {
    let len = tree.left_children.len();
    let lengths = [
        tree.right_children.len(),
        tree.split_indices.len(),
        tree.split_conditions.len(),
        tree.default_left.len(),
        tree.sum_hessian.len(),
    ];
    if len == 0 || lengths.iter().any(|&other| other != len) {
        return Err(invalid(&format!(
            "tree {index}: node arrays have different lengths"
        )));
    }
    if tree.split_type.iter().any(|&kind| kind != 0) {
        return Err(ModelError::Unsupported(format!(
            "tree {index} has categorical splits: only numeric splits are supported"
        )));
    }
    let leaf_vector = tree
        .tree_param
        .as_ref()
        .and_then(|param| param.get("size_leaf_vector"))
        .and_then(Value::as_str)
        .and_then(|size| size.parse::<u32>().ok())
        .unwrap_or(1);
    if leaf_vector > 1 {
        return Err(ModelError::Unsupported(format!(
            "tree {index} has vector leaves of size {leaf_vector}: only scalar leaves are supported"
        )));
    }
    Ok(())
}

fn read_node(
    num_features: u32,
    tree_index: usize,
    tree: &JsonTree,
    node: usize,
) -> Result<Node, ModelError> {
    let len = tree.left_children.len() as i64;
    let left = tree.left_children[node];
    let right = tree.right_children[node];
    let is_leaf = left == -1;
    let where_ = || format!("tree {tree_index} node {node}");
    let children_in_range = (1..len).contains(&left) && (1..len).contains(&right);
    if !is_leaf && !children_in_range {
        return Err(invalid(&format!("{}: child index out of range", where_())));
    }
    let feature = tree.split_indices[node];
    if !is_leaf && !(0..i64::from(num_features)).contains(&feature) {
        return Err(invalid(&format!(
            "{}: split feature {feature} out of range",
            where_()
        )));
    }
    let value = tree.split_conditions[node] as f32;
    if !value.is_finite() {
        return Err(invalid(&format!(
            "{}: value {value} is not finite",
            where_()
        )));
    }
    let default_left = match &tree.default_left[node] {
        Value::Bool(flag) => *flag,
        Value::Number(number) => number.as_i64() == Some(1),
        other => return Err(invalid(&format!("{}: default_left {other}", where_()))),
    };
    Ok(Node {
        left: if is_leaf { 0 } else { left as u32 },
        right: if is_leaf { 0 } else { right as u32 },
        feature: if is_leaf { 0 } else { feature as u32 },
        value,
        cover: tree.sum_hessian[node] as f32,
        default_left,
        is_leaf,
    })
}

/// Fills the cover-weighted mean leaf value of every node below `index`, in `f32` as
/// XGBoost's `FillNodeMeanValues` does.
fn fill_mean_values(nodes: &[Node], index: u32, means: &mut [f32]) -> f32 {
    let node = nodes[index as usize];
    let mean = if node.is_leaf {
        node.value
    } else {
        let mut sum = fill_mean_values(nodes, node.left, means) * nodes[node.left as usize].cover;
        sum += fill_mean_values(nodes, node.right, means) * nodes[node.right as usize].cover;
        sum / node.cover
    };
    means[index as usize] = mean;
    mean
}

fn depth_of(nodes: &[Node], index: u32) -> u32 {
    let node = nodes[index as usize];
    if node.is_leaf {
        0
    } else {
        1 + depth_of(nodes, node.left).max(depth_of(nodes, node.right))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model_json(objective: &str, base_score: &str, extra_tree_fields: &str) -> String {
        format!(
            r#"{{"learner": {{
                "objective": {{"name": "{objective}"}},
                "learner_model_param": {{"base_score": "{base_score}", "num_class": "0", "num_feature": "2"}},
                "feature_names": ["a", "b"],
                "gradient_booster": {{"name": "gbtree", "model": {{"trees": [{{
                    "left_children": [1, -1, -1], "right_children": [2, -1, -1],
                    "split_indices": [1, 0, 0], "split_conditions": [0.5, -0.25, 0.75],
                    "default_left": [1, 0, 0], "sum_hessian": [4.0, 1.0, 3.0]
                    {extra_tree_fields}
                }}]}}}}
            }}}}"#
        )
    }

    #[test]
    fn parses_vector_base_score() {
        let model = parse_model(model_json("binary:logistic", "[5E-1]", "").as_bytes()).unwrap();
        assert_eq!(model.base_score, 0.5);
        assert_eq!(model.base_margin, 0.0);
        assert_eq!(model.trees.len(), 1);
        assert_eq!(model.trees[0].max_depth, 1);
        assert_eq!(
            model.feature_names.as_deref(),
            Some(&["a".to_string(), "b".to_string()][..])
        );
    }

    #[test]
    fn mean_value_is_cover_weighted() {
        let model = parse_model(model_json("binary:logistic", "0.5", "").as_bytes()).unwrap();
        let expected = (-0.25 * 1.0 + 0.75 * 3.0) / 4.0;
        assert!((model.trees[0].mean_value - expected).abs() < 1e-7);
    }

    #[test]
    fn missing_goes_to_default_child() {
        let model = parse_model(model_json("binary:logistic", "0.5", "").as_bytes()).unwrap();
        let forest = model.forest();
        assert_eq!(forest.predict_margin(&[0.0, f32::NAN]), -0.25);
        assert_eq!(forest.predict_margin(&[0.0, 0.5]), 0.75);
        assert_eq!(forest.predict_margin(&[0.0, 0.4999]), -0.25);
    }

    #[test]
    fn rejects_other_objective() {
        let error = parse_model(model_json("reg:squarederror", "0.5", "").as_bytes()).unwrap_err();
        assert!(
            error.to_string().contains("objective `reg:squarederror`"),
            "{error}"
        );
    }

    #[test]
    fn rejects_categorical_split() {
        let json = model_json("binary:logistic", "0.5", r#", "split_type": [1, 0, 0]"#);
        let error = parse_model(json.as_bytes()).unwrap_err();
        assert!(error.to_string().contains("categorical splits"), "{error}");
    }

    #[test]
    fn rejects_multiclass() {
        let json = model_json("binary:logistic", "0.5", "")
            .replace(r#""num_class": "0""#, r#""num_class": "3""#);
        let error = parse_model(json.as_bytes()).unwrap_err();
        assert!(error.to_string().contains("multi-class"), "{error}");
    }

    #[test]
    fn rejects_non_json() {
        let error = parse_model(b"\x00binary ubj").unwrap_err();
        assert!(matches!(error, ModelError::Invalid(_)), "{error}");
    }
}
