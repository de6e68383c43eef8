"""Write golden.json for each model: XGBoost's own margin, probability and TreeSHAP
contributions for a set of feature vectors, so the Rust scorer can check parity.

Cases, in this order in the file:

1. Held-out test rows, found again with train.py's split (--train-seed must match
   the --seed train.py used). Every held-out row when there are at most
   --max-held-out-cases of them, otherwise a seeded sample.
2. Split cases: for each distinct (feature, threshold) pair among the model's
   splits, one node that uses it is chosen, and the features that its ancestors
   test are set so that the row reaches it. The tested feature then takes the
   threshold itself, the next float32 below it, the next float32 above it, and
   NaN (the node's default direction).
3. Missing-value cases: one all-NaN row, rows with a single present feature, and
   rows with random NaNs, added until the file has at least --min-cases cases.

Every feature value is float32 and written as the Python float of that float32, or
null for NaN. The script checks that contributions sum to the margin within 1e-4,
that a plain tree walk of model.json gives the same margin, and that the held-out
ROC AUC matches metrics.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
from pathlib import Path

import numpy as np
import xgboost as xgb
from sklearn.metrics import roc_auc_score

import train

CONTRIBUTION_TOLERANCE = 1e-4
# XGBoost sums leaf values in float32 and the tree walk below in float64, so the two
# margins differ by rounding.
TREE_WALK_TOLERANCE = 1e-5
AUC_TOLERANCE = 1e-9
SINGLE_FEATURE_VALUES = 10
RANDOM_MISSING_BLOCK = 200

log = logging.getLogger("golden")


# ---------------------------------------------------------------- model structure


class Tree:
    """Arrays of one tree from model.json. Leaves have left child -1 and store the
    leaf value in split_conditions."""

    def __init__(self, tree_json: dict):
        self.left = tree_json["left_children"]
        self.right = tree_json["right_children"]
        self.parent = tree_json["parents"]
        self.feature = tree_json["split_indices"]
        self.threshold = [np.float32(value) for value in tree_json["split_conditions"]]
        self.default_left = tree_json["default_left"]
        if any(tree_json["split_type"]):
            raise ValueError("model.json contains categorical splits; cardiowatch models use numeric splits only")

    def is_leaf(self, node: int) -> bool:
        return self.left[node] == -1

    def next_node(self, node: int, value: np.float32) -> int:
        if math.isnan(value):
            return self.left[node] if self.default_left[node] else self.right[node]
        return self.left[node] if value < self.threshold[node] else self.right[node]

    def walk(self, row: np.ndarray) -> tuple[float, list[int]]:
        """Return the leaf value for a float32 row and the nodes visited."""
        node = 0
        path = [node]
        while not self.is_leaf(node):
            node = self.next_node(node, row[self.feature[node]])
            path.append(node)
        return float(self.threshold[node]), path

    def ancestors(self, node: int) -> list[tuple[int, bool]]:
        """Return (ancestor, went_left) pairs from the root down to the node."""
        chain = []
        while node != 0:
            parent = self.parent[node]
            chain.append((parent, self.left[parent] == node))
            node = parent
        return chain[::-1]


def load_model_json(path: Path) -> tuple[list[Tree], float]:
    """Parse the trees and the bias margin (logit of base_score) out of model.json."""
    learner = json.loads(path.read_text())["learner"]
    # xgboost 3.x writes base_score as a bracketed vector string such as "[4.95E-1]".
    base_score = float(learner["learner_model_param"]["base_score"].strip("[]"))
    bias_margin = math.log(base_score / (1.0 - base_score))
    trees = [Tree(tree) for tree in learner["gradient_booster"]["model"]["trees"]]
    return trees, bias_margin


def walk_margin(trees: list[Tree], bias_margin: float, row: np.ndarray) -> float:
    return bias_margin + sum(tree.walk(row)[0] for tree in trees)


# ---------------------------------------------------------------- case generation


def next_below(value: np.float32) -> np.float32:
    return np.nextafter(np.float32(value), np.float32(-np.inf))


def next_above(value: np.float32) -> np.float32:
    return np.nextafter(np.float32(value), np.float32(np.inf))


def route_to_node(tree: Tree, node: int, base_row: np.ndarray) -> tuple[np.ndarray, dict]:
    """Copy base_row and change the features the node's ancestors test so the row reaches it.

    Returns the row and, per constrained feature, the interval [low, high) that keeps it
    on the path.
    """
    intervals: dict[int, list[np.float32]] = {}
    for ancestor, went_left in tree.ancestors(node):
        feature = tree.feature[ancestor]
        low, high = intervals.setdefault(feature, [np.float32(-np.inf), np.float32(np.inf)])
        threshold = tree.threshold[ancestor]
        if went_left:
            intervals[feature][1] = min(high, threshold)
        else:
            intervals[feature][0] = max(low, threshold)

    row = base_row.copy()
    for feature, (low, high) in intervals.items():
        value = row[feature]
        if not math.isnan(value) and low <= value < high:
            continue
        row[feature] = low if np.isfinite(low) else next_below(high)
    return row, intervals


def split_cases(trees: list[Tree], base_rows: np.ndarray, rng: np.random.Generator) -> tuple[list[np.ndarray], int]:
    """Build four rows per distinct (feature, threshold) pair: equal, below, above and NaN.

    Returns the rows and how many rows with a value (not NaN) missed the chosen node. A NaN
    row misses it when an ancestor tests the same feature, and then exercises that
    ancestor's default direction instead.
    """
    chosen: dict[tuple[int, np.float32], tuple[Tree, int]] = {}
    for tree in trees:
        for node in range(len(tree.left)):
            if not tree.is_leaf(node):
                chosen.setdefault((tree.feature[node], tree.threshold[node]), (tree, node))

    rows = []
    missed = 0
    for (feature, threshold), (tree, node) in sorted(chosen.items(), key=lambda item: item[0]):
        base_row = base_rows[rng.integers(len(base_rows))]
        routed, _ = route_to_node(tree, node, base_row)
        for value in (threshold, next_below(threshold), next_above(threshold), np.float32(np.nan)):
            row = routed.copy()
            row[feature] = value
            if not math.isnan(value) and node not in tree.walk(row)[1]:
                missed += 1
            rows.append(row)
    return rows, missed


def single_feature_cases(trees: list[Tree], held_out: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Build rows with one present feature: half held-out values, half at or next to thresholds."""
    n_features = held_out.shape[1]
    thresholds = [set() for _ in range(n_features)]
    for tree in trees:
        for node in range(len(tree.left)):
            if not tree.is_leaf(node):
                thresholds[tree.feature[node]].add(tree.threshold[node])

    rows = []
    for feature in range(n_features):
        observed = held_out[:, feature]
        observed = observed[~np.isnan(observed)]
        values = list(rng.choice(observed, SINGLE_FEATURE_VALUES // 2))
        feature_thresholds = np.array(sorted(thresholds[feature]), dtype=np.float32)
        if len(feature_thresholds):
            for threshold in rng.choice(feature_thresholds, SINGLE_FEATURE_VALUES - len(values)):
                values.append(rng.choice([threshold, next_below(threshold), next_above(threshold)]))
        for value in values:
            row = np.full(n_features, np.nan, dtype=np.float32)
            row[feature] = value
            rows.append(row)
    return rows


def random_missing_cases(base_rows: np.ndarray, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Copy random base rows and blank each feature with a per-row probability of 0.1 to 0.7."""
    rows = []
    for _ in range(count):
        row = base_rows[rng.integers(len(base_rows))].copy()
        missing_probability = rng.uniform(0.1, 0.7)
        row[rng.random(len(row)) < missing_probability] = np.nan
        rows.append(row)
    return rows


# ---------------------------------------------------------------- prediction and output


def predict_cases(booster: xgb.Booster, names: list[str], rows: np.ndarray) -> list[dict]:
    """Predict margin, probability and contributions, and check that they agree."""
    matrix = xgb.DMatrix(rows.astype(np.float32), missing=np.nan, feature_names=names)
    margins = booster.predict(matrix, output_margin=True)
    probabilities = booster.predict(matrix)
    contributions = booster.predict(matrix, pred_contribs=True)
    if contributions.shape != (len(rows), len(names) + 1):
        raise RuntimeError(f"pred_contribs returned shape {contributions.shape}, expected {(len(rows), len(names) + 1)}")

    cases = []
    for i, row in enumerate(rows):
        contribution_sum = float(np.sum(contributions[i], dtype=np.float64))
        if abs(contribution_sum - float(margins[i])) > CONTRIBUTION_TOLERANCE:
            raise AssertionError(
                f"case {i}: contributions sum to {contribution_sum}, margin is {float(margins[i])}"
            )
        cases.append(
            {
                "features": [None if math.isnan(value) else float(value) for value in row],
                "margin": float(margins[i]),
                "probability": float(probabilities[i]),
                "contributions": [float(value) for value in contributions[i]],
            }
        )
    return cases


def check_tree_walk(trees: list[Tree], bias_margin: float, rows: np.ndarray, cases: list[dict]) -> None:
    """Check that walking the trees of model.json reproduces XGBoost's margin."""
    for i, row in enumerate(rows):
        walked = walk_margin(trees, bias_margin, row)
        if abs(walked - cases[i]["margin"]) > TREE_WALK_TOLERANCE:
            raise AssertionError(f"case {i}: tree walk gives margin {walked}, XGBoost {cases[i]['margin']}")


def write_golden(path: Path, model_sha256: str, names: list[str], cases: list[dict]) -> None:
    """Write compact JSON with one case per line, so diffs stay readable."""
    header = {"xgboost_version": xgb.__version__, "model_sha256": model_sha256, "feature_names": names}
    head = json.dumps(header, separators=(",", ":"))[:-1]
    lines = [json.dumps(case, separators=(",", ":"), allow_nan=False) for case in cases]
    path.write_text(head + ',"cases":[\n' + ",\n".join(lines) + "\n]}\n")


def held_out_rows(key: str, args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    """Re-derive the held-out rows and labels of a model exactly as train.py split them."""
    dataset = train.load_cardio(args.cardio) if key == "cardio" else train.load_uci(args.uci)
    _, test_index = train.split_held_out(dataset.target, args.train_seed)
    features = dataset.features.to_numpy(dtype=np.float32)
    return features[test_index], dataset.target[test_index]


def build_golden(key: str, args: argparse.Namespace, rng: np.random.Generator) -> None:
    spec = train.SPECS[key]
    names = spec.feature_names
    model_dir = args.models / key
    model_path = model_dir / "model.json"
    model_sha256 = hashlib.sha256(model_path.read_bytes()).hexdigest()
    booster = xgb.Booster(model_file=str(model_path))
    if booster.feature_names != names:
        raise ValueError(f"{model_path}: feature names {booster.feature_names}, expected {names}")
    trees, bias_margin = load_model_json(model_path)

    held_out, labels = held_out_rows(key, args)
    held_out_probability = booster.predict(xgb.DMatrix(held_out, missing=np.nan, feature_names=names))
    recorded_auc = json.loads((model_dir / "metrics.json").read_text())["roc_auc"]
    auc = roc_auc_score(labels, held_out_probability.astype(np.float64))
    if abs(auc - recorded_auc) > AUC_TOLERANCE:
        raise ValueError(
            f"{key}: held-out ROC AUC is {auc}, metrics.json records {recorded_auc}; "
            "the data file or --train-seed differs from the training run"
        )

    sample = held_out
    if len(held_out) > args.max_held_out_cases:
        sample = held_out[np.sort(rng.choice(len(held_out), args.max_held_out_cases, replace=False))]
    split_rows, missed = split_cases(trees, held_out, rng)
    if missed:
        log.warning("%s: %d split-case rows with a value do not reach their node", key, missed)

    n_features = len(names)
    missing_rows = [np.full(n_features, np.nan, dtype=np.float32)]
    missing_rows += single_feature_cases(trees, held_out, rng)
    missing_rows += random_missing_cases(held_out, RANDOM_MISSING_BLOCK, rng)
    n_cases = len(sample) + len(split_rows) + len(missing_rows)
    if n_cases < args.min_cases:
        missing_rows += random_missing_cases(held_out, args.min_cases - n_cases, rng)

    rows = np.vstack([sample, np.array(split_rows), np.array(missing_rows)]).astype(np.float32)
    cases = predict_cases(booster, names, rows)
    check_tree_walk(trees, bias_margin, rows, cases)
    write_golden(model_dir / "golden.json", model_sha256, names, cases)
    log.info(
        "%s: %d cases (%d held-out, %d split, %d missing-value), held-out ROC AUC %.4f matches metrics.json",
        key,
        len(cases),
        len(sample),
        len(split_rows),
        len(missing_rows),
        auc,
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=Path, default=train.MODELS_DIR, help="folder with cardio/ and uci/")
    parser.add_argument("--seed", type=int, default=7, help="seed of the synthetic cases (default: 7)")
    parser.add_argument(
        "--train-seed", type=int, default=42, help="seed that train.py used for its splits (default: 42)"
    )
    parser.add_argument("--model", choices=["cardio", "uci", "all"], default="all", help="models to write")
    parser.add_argument("--cardio", type=Path, help="path of cardio_train.csv, required for the cardio model")
    parser.add_argument("--uci", type=Path, default=train.DEFAULT_UCI_PATH, help="path of processed.cleveland.data")
    parser.add_argument("--min-cases", type=int, default=1200, help="minimum cases per model (default: 1200)")
    parser.add_argument(
        "--max-held-out-cases",
        type=int,
        default=1000,
        help="held-out rows per model, sampled when there are more; keeps the cardio golden.json under 2 MB (default: 1000)",
    )
    args = parser.parse_args()
    if args.model in ("cardio", "all") and args.cardio is None:
        parser.error("--cardio PATH is required to write the cardio golden cases (or pass --model uci)")
    return args


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    args = parse_args()
    all_keys = ["cardio", "uci"]
    keys = all_keys if args.model == "all" else [args.model]
    for key in keys:
        # Each model has its own stream, so writing one model alone gives the same cases.
        build_golden(key, args, np.random.default_rng([args.seed, all_keys.index(key)]))


if __name__ == "__main__":
    main()
