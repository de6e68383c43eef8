//! The in-memory form of a tree ensemble and its evaluation.
//!
//! Nodes of all trees live in one slice; each tree is a span of it with node indices
//! relative to the span start. The slices may be `'static` (baked into a component by
//! generated code) or borrowed from an owned model loaded at run time.

/// One tree node. For a leaf, `value` is the leaf value and the children are unused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Node {
    /// Index of the left child within its tree.
    pub left: u32,
    /// Index of the right child within its tree.
    pub right: u32,
    /// Index of the split feature.
    pub feature: u32,
    /// Split threshold (go left when `value < threshold`) or, for a leaf, the leaf value.
    pub value: f32,
    /// Cover: the sum of Hessians of the training rows that reached this node.
    pub cover: f32,
    /// Whether a missing value goes to the left child.
    pub default_left: bool,
    /// Whether this node is a leaf.
    pub is_leaf: bool,
}

/// Where one tree's nodes are in the node slice, with values precomputed at load time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TreeSpan {
    /// Index of the root node in the shared node slice.
    pub start: u32,
    /// Number of nodes of this tree.
    pub len: u32,
    /// Depth of the deepest leaf (a lone root leaf has depth 0).
    pub max_depth: u32,
    /// Cover-weighted mean of the leaf values: the tree's expected output.
    pub mean_value: f32,
}

/// A binary logistic tree ensemble.
#[derive(Debug, Clone, Copy)]
pub struct Forest<'a> {
    /// Nodes of every tree, tree after tree.
    pub nodes: &'a [Node],
    /// One span per tree, in boosting order.
    pub trees: &'a [TreeSpan],
    /// Number of input features.
    pub num_features: u32,
    /// Global bias in margin space (log-odds), from XGBoost's `base_score`.
    pub base_margin: f32,
}

impl<'a> Forest<'a> {
    /// Returns the nodes of tree `index`.
    pub fn tree_nodes(&self, index: usize) -> &'a [Node] {
        let span = self.trees[index];
        &self.nodes[span.start as usize..(span.start + span.len) as usize]
    }

    /// Computes the margin (log-odds) for one row. `features` contains `f32::NAN` for a
    /// missing value and must have `num_features` entries.
    pub fn predict_margin(&self, features: &[f32]) -> f32 {
        let mut margin = self.base_margin;
        for index in 0..self.trees.len() {
            margin += leaf_value(self.tree_nodes(index), features);
        }
        margin
    }
}

/// Returns the child a row follows at `node`: the default child for a missing value,
/// else left when the value is below the threshold.
pub fn next_node(node: &Node, value: f32) -> u32 {
    if value.is_nan() {
        if node.default_left {
            node.left
        } else {
            node.right
        }
    } else if value < node.value {
        node.left
    } else {
        node.right
    }
}

/// Walks one tree to its leaf and returns the leaf value.
pub fn leaf_value(nodes: &[Node], features: &[f32]) -> f32 {
    let mut node = &nodes[0];
    while !node.is_leaf {
        let next = next_node(node, features[node.feature as usize]);
        node = &nodes[next as usize];
    }
    node.value
}

/// The logistic function in `f32`, as XGBoost applies it for `binary:logistic`.
pub fn sigmoid(margin: f32) -> f32 {
    1.0 / (1.0 + (-margin).exp())
}
