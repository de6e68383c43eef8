//! Exact TreeSHAP contributions (Lundberg, Erion and Lee, "Consistent Individualized
//! Feature Attribution for Tree Ensembles", 2018, Algorithm 2).
//!
//! The recursion, the `f32` arithmetic and the order of operations follow XGBoost's
//! `pred_contribs=True` so that the results agree with it to within rounding. Cost per
//! row is O(trees x leaves x depth²), far more than scoring, so callers request it only
//! when they need it.

use super::forest::{Forest, Node, next_node};

/// One element of the path of unique features from the root to the current node.
#[derive(Debug, Clone, Copy, Default)]
struct PathElement {
    /// Feature split on, or -1 for the root element.
    feature: i64,
    /// Fraction of training rows that follow this path when the feature is unknown.
    zero_fraction: f32,
    /// 1 when the row follows this path with the feature known, else 0.
    one_fraction: f32,
    /// Weight of the permutations that reach this element.
    weight: f32,
}

/// Computes the contributions of one row. Returns `num_features + 1` values in model
/// feature order, the last being the bias (expected margin); they sum to the margin.
pub fn contributions(forest: &Forest<'_>, features: &[f32]) -> Vec<f32> {
    let width = forest.num_features as usize + 1;
    let mut total = vec![0.0f32; width];
    let mut per_tree = vec![0.0f32; width];
    let mut path = Vec::new();

    for index in 0..forest.trees.len() {
        per_tree.iter_mut().for_each(|value| *value = 0.0);
        tree_contributions(forest, index, features, &mut per_tree, &mut path);
        for (sum, value) in total.iter_mut().zip(&per_tree) {
            *sum += *value;
        }
    }
    total[width - 1] += forest.base_margin;
    total
}

fn tree_contributions(
    forest: &Forest<'_>,
    index: usize,
    features: &[f32],
    phi: &mut [f32],
    path: &mut Vec<PathElement>,
) {
    let span = forest.trees[index];
    let bias = phi.len() - 1;
    phi[bias] += span.mean_value;
    let nodes = forest.tree_nodes(index);
    if nodes[0].is_leaf {
        return;
    }
    let max_depth = span.max_depth as usize + 2;
    path.clear();
    path.resize(max_depth * (max_depth + 1) / 2, PathElement::default());
    let walk = Walk { nodes, features };
    walk.recurse(phi, path, 0, 0, 0, [1.0, 1.0], -1);
}

struct Walk<'a> {
    nodes: &'a [Node],
    features: &'a [f32],
}

impl Walk<'_> {
    /// Visits `node_index`. The parent's path occupies `path[parent_offset..]` with
    /// `unique_depth + 1` elements; this call's copy goes right after it.
    #[allow(clippy::too_many_arguments)]
    fn recurse(
        &self,
        phi: &mut [f32],
        path: &mut [PathElement],
        parent_offset: usize,
        node_index: u32,
        mut unique_depth: usize,
        [parent_zero, parent_one]: [f32; 2],
        parent_feature: i64,
    ) {
        let offset = parent_offset + unique_depth + 1;
        path.copy_within(parent_offset..parent_offset + unique_depth + 1, offset);
        let unique = &mut path[offset..];
        extend_path(
            unique,
            unique_depth,
            parent_zero,
            parent_one,
            parent_feature,
        );

        let node = &self.nodes[node_index as usize];
        if node.is_leaf {
            for i in 1..=unique_depth {
                let weight = unwound_path_sum(unique, unique_depth, i);
                let element = unique[i];
                phi[element.feature as usize] +=
                    weight * (element.one_fraction - element.zero_fraction) * node.value;
            }
            return;
        }

        let hot = next_node(node, self.features[node.feature as usize]);
        let cold = if hot == node.left {
            node.right
        } else {
            node.left
        };
        let cover = node.cover;
        let hot_zero = self.nodes[hot as usize].cover / cover;
        let cold_zero = self.nodes[cold as usize].cover / cover;

        // A feature already on the path is unwound so that this split replaces it.
        let mut incoming_zero = 1.0f32;
        let mut incoming_one = 1.0f32;
        let split = i64::from(node.feature);
        if let Some(found) = (0..=unique_depth).find(|&i| unique[i].feature == split) {
            incoming_zero = unique[found].zero_fraction;
            incoming_one = unique[found].one_fraction;
            unwind_path(unique, unique_depth, found);
            unique_depth -= 1;
        }

        let hot_fractions = [hot_zero * incoming_zero, incoming_one];
        let cold_fractions = [cold_zero * incoming_zero, 0.0];
        self.recurse(
            phi,
            path,
            offset,
            hot,
            unique_depth + 1,
            hot_fractions,
            split,
        );
        self.recurse(
            phi,
            path,
            offset,
            cold,
            unique_depth + 1,
            cold_fractions,
            split,
        );
    }
}

fn extend_path(path: &mut [PathElement], depth: usize, zero: f32, one: f32, feature: i64) {
    path[depth] = PathElement {
        feature,
        zero_fraction: zero,
        one_fraction: one,
        weight: if depth == 0 { 1.0 } else { 0.0 },
    };
    let denominator = (depth + 1) as f32;
    for i in (0..depth).rev() {
        path[i + 1].weight += one * path[i].weight * (i + 1) as f32 / denominator;
        path[i].weight = zero * path[i].weight * (depth - i) as f32 / denominator;
    }
}

fn unwind_path(path: &mut [PathElement], depth: usize, path_index: usize) {
    let one = path[path_index].one_fraction;
    let zero = path[path_index].zero_fraction;
    let mut next_one_portion = path[depth].weight;
    let scale = (depth + 1) as f32;
    for i in (0..depth).rev() {
        if one != 0.0 {
            let previous = path[i].weight;
            path[i].weight = next_one_portion * scale / ((i + 1) as f32 * one);
            next_one_portion = previous - path[i].weight * zero * (depth - i) as f32 / scale;
        } else {
            path[i].weight = (path[i].weight * scale) / (zero * (depth - i) as f32);
        }
    }
    for i in path_index..depth {
        path[i].feature = path[i + 1].feature;
        path[i].zero_fraction = path[i + 1].zero_fraction;
        path[i].one_fraction = path[i + 1].one_fraction;
    }
}

fn unwound_path_sum(path: &[PathElement], depth: usize, path_index: usize) -> f32 {
    let one = path[path_index].one_fraction;
    let zero = path[path_index].zero_fraction;
    let mut next_one_portion = path[depth].weight;
    let scale = (depth + 1) as f32;
    let mut total = 0.0f32;
    for i in (0..depth).rev() {
        if one != 0.0 {
            let share = next_one_portion * scale / ((i + 1) as f32 * one);
            total += share;
            next_one_portion = path[i].weight - share * zero * ((depth - i) as f32 / scale);
        } else if zero != 0.0 {
            total += (path[i].weight / zero) / ((depth - i) as f32 / scale);
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xgb::forest::TreeSpan;

    fn split(feature: u32, threshold: f32, left: u32, right: u32, cover: f32) -> Node {
        Node {
            left,
            right,
            feature,
            value: threshold,
            cover,
            default_left: true,
            is_leaf: false,
        }
    }

    fn leaf(value: f32, cover: f32) -> Node {
        Node {
            left: 0,
            right: 0,
            feature: 0,
            value,
            cover,
            default_left: false,
            is_leaf: true,
        }
    }

    /// x0 < 0.5 ? (x1 < 0.5 ? 1 : 2) : 4, covers 10 / 6 / 3 / 3 / 4.
    fn two_feature_forest() -> (Vec<Node>, Vec<TreeSpan>) {
        let nodes = vec![
            split(0, 0.5, 1, 2, 10.0),
            split(1, 0.5, 3, 4, 6.0),
            leaf(4.0, 4.0),
            leaf(1.0, 3.0),
            leaf(2.0, 3.0),
        ];
        let mean = (1.0 * 3.0 + 2.0 * 3.0 + 4.0 * 4.0) / 10.0;
        let spans = vec![TreeSpan {
            start: 0,
            len: 5,
            max_depth: 2,
            mean_value: mean,
        }];
        (nodes, spans)
    }

    #[test]
    fn contributions_sum_to_margin() {
        let (nodes, trees) = two_feature_forest();
        let forest = Forest {
            nodes: &nodes,
            trees: &trees,
            num_features: 2,
            base_margin: 0.25,
        };
        for row in [
            [0.0, 0.0],
            [0.0, 1.0],
            [1.0, 0.0],
            [f32::NAN, 1.0],
            [1.0, f32::NAN],
        ] {
            let phi = contributions(&forest, &row);
            let sum: f32 = phi.iter().sum();
            let margin = forest.predict_margin(&row);
            assert!(
                (sum - margin).abs() < 1e-5,
                "row {row:?}: sum {sum} margin {margin}"
            );
        }
    }

    #[test]
    fn unused_feature_gets_zero() {
        let (nodes, trees) = two_feature_forest();
        let forest = Forest {
            nodes: &nodes,
            trees: &trees,
            num_features: 3,
            base_margin: 0.0,
        };
        let phi = contributions(&forest, &[0.0, 0.0, 7.0]);
        assert_eq!(phi[2], 0.0);
    }

    #[test]
    fn bias_is_expected_value() {
        let (nodes, trees) = two_feature_forest();
        let forest = Forest {
            nodes: &nodes,
            trees: &trees,
            num_features: 2,
            base_margin: 0.5,
        };
        let phi = contributions(&forest, &[1.0, 1.0]);
        assert!((phi[2] - (2.5 + 0.5)).abs() < 1e-6, "bias {}", phi[2]);
    }

    #[test]
    fn single_split_matches_closed_form() {
        // x0 < 0.5 ? -1 : 3 with covers 1 / 3: phi0 = f(x) - E[f] exactly.
        let nodes = vec![split(0, 0.5, 1, 2, 4.0), leaf(-1.0, 1.0), leaf(3.0, 3.0)];
        let trees = vec![TreeSpan {
            start: 0,
            len: 3,
            max_depth: 1,
            mean_value: 2.0,
        }];
        let forest = Forest {
            nodes: &nodes,
            trees: &trees,
            num_features: 1,
            base_margin: 0.0,
        };
        let phi = contributions(&forest, &[0.0]);
        assert!((phi[0] - (-3.0)).abs() < 1e-6, "phi0 {}", phi[0]);
        assert!((phi[1] - 2.0).abs() < 1e-6, "bias {}", phi[1]);
    }
}
