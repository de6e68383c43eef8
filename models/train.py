"""Train the two demonstration XGBoost classifiers that cardiowatch packages.

cardio
    Presence of cardiovascular disease at a health examination, from the Kaggle
    "Cardiovascular Disease dataset" (cardio_train.csv, 70,000 rows, licence not
    stated, so the file is read from --cardio and never copied into the repository).
uci
    Angiographic coronary artery disease (`num > 0`) from the UCI Heart Disease
    Cleveland subset, vendored under data/uci-heart (CC BY 4.0).

Cleaning rules for cardio_train.csv, applied in this order before training. The
model card reports, per rule, how many raw rows fail it and how many rows it drops
after the earlier rules:

1. systolic `ap_hi` outside 60..=250 mmHg
2. diastolic `ap_lo` outside 30..=160 mmHg
3. diastolic `ap_lo` >= systolic `ap_hi`
4. `height` outside 120..=220 cm
5. `weight` outside 30..=200 kg
6. exact duplicate of an earlier row in every column except `id` (the first copy stays)

A code outside its documented set (gender 1/2, cholesterol and gluc 1..=3, the 0/1
flags and the target) raises ValueError instead of being dropped, because it means
the file is not the expected one. The UCI file needs no cleaning: `?` is read as a
missing value and left to XGBoost's missing-value handling.

Training: a stratified 20 % held-out test split (seeded by --seed), then a stratified
20 % validation split of the remaining rows for early stopping on log loss. The final
model is refitted on the whole training part (validation rows included) with the
number of trees that early stopping chose, so it is the model the held-out metrics
describe.

Outputs, per model under --out/<model>/: model.json (Booster.save_model, with the
feature names), metrics.json, manifest.toml and CARD.md. For cardio also stats.json,
summary statistics of the cleaned rows for the profile simulator.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
import xgboost as xgb
from sklearn.metrics import accuracy_score, brier_score_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold, train_test_split

import model_card

MODELS_DIR = Path(__file__).resolve().parent
DEFAULT_UCI_PATH = MODELS_DIR / "data" / "uci-heart" / "processed.cleveland.data"

TEST_FRACTION = 0.2
VALIDATION_FRACTION = 0.2
EARLY_STOPPING_ROUNDS = 30
ACCURACY_THRESHOLD = 0.5
CALIBRATION_BINS = 10
BOOTSTRAP_RESAMPLES = 1000
CV_FOLDS = 5


@dataclasses.dataclass(frozen=True)
class Feature:
    """One model input: its name in the model, the canonical field and the unit."""

    name: str
    source: str
    unit: str
    description: str


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Fixed settings of one model: identity, inputs and XGBoost parameters."""

    key: str
    name: str
    version: str
    features: tuple[Feature, ...]
    params: dict
    max_trees: int

    @property
    def feature_names(self) -> list[str]:
        return [feature.name for feature in self.features]


CARDIO_FEATURES = (
    Feature("age_years", "profile.age_years", "years", "age, source days / 365.25"),
    Feature("sex_male", "profile.sex_male", "1=male 0=female", "source gender 2 = male, 1 = female"),
    Feature("height_cm", "profile.height_cm", "cm", "height"),
    Feature("weight_kg", "profile.weight_kg", "kg", "weight"),
    Feature("bmi", "profile.bmi", "kg/m2", "weight / (height / 100)^2"),
    Feature("systolic_bp_mmhg", "vitals.systolic_bp_mmhg", "mmHg", "systolic blood pressure (ap_hi)"),
    Feature("diastolic_bp_mmhg", "vitals.diastolic_bp_mmhg", "mmHg", "diastolic blood pressure (ap_lo)"),
    Feature(
        "cholesterol_category",
        "profile.cholesterol_category",
        "category 1-3",
        "total cholesterol: 1 normal, 2 above normal, 3 well above normal",
    ),
    Feature(
        "glucose_category",
        "profile.glucose_category",
        "category 1-3",
        "glucose: 1 normal, 2 above normal, 3 well above normal",
    ),
    Feature("smoker", "profile.smoker", "0/1", "smokes (self-reported)"),
    Feature("alcohol", "profile.alcohol", "0/1", "drinks alcohol (self-reported)"),
    Feature("physically_active", "profile.physically_active", "0/1", "physically active (self-reported)"),
)

# Source column of the Cleveland file for each UCI feature, in model order.
UCI_SOURCE_COLUMNS = {
    "age_years": "age",
    "sex_male": "sex",
    "chest_pain_type": "cp",
    "resting_systolic_bp_mmhg": "trestbps",
    "serum_cholesterol_mg_dl": "chol",
    "fasting_glucose_over_120": "fbs",
    "resting_ecg": "restecg",
    "max_exercise_heart_rate_bpm": "thalach",
    "exercise_angina": "exang",
    "st_depression_mm": "oldpeak",
    "st_slope": "slope",
    "major_vessels": "ca",
    "thal": "thal",
}
UCI_COLUMNS = list(UCI_SOURCE_COLUMNS.values()) + ["num"]

UCI_FEATURES = (
    Feature("age_years", "profile.age_years", "years", "age"),
    Feature("sex_male", "profile.sex_male", "1=male 0=female", "sex"),
    Feature(
        "chest_pain_type",
        "profile.extra.chest_pain_type",
        "code",
        "1 typical angina, 2 atypical angina, 3 non-anginal pain, 4 asymptomatic",
    ),
    Feature(
        "resting_systolic_bp_mmhg",
        "vitals.systolic_bp_mmhg",
        "mmHg",
        "resting systolic blood pressure on admission",
    ),
    Feature("serum_cholesterol_mg_dl", "profile.extra.serum_cholesterol_mg_dl", "mg/dl", "serum cholesterol"),
    Feature(
        "fasting_glucose_over_120",
        "profile.extra.fasting_glucose_over_120",
        "0/1",
        "fasting blood sugar > 120 mg/dl",
    ),
    Feature(
        "resting_ecg",
        "profile.extra.resting_ecg",
        "code",
        "0 normal, 1 ST-T wave abnormality, 2 probable or definite left ventricular hypertrophy",
    ),
    Feature(
        "max_exercise_heart_rate_bpm",
        "profile.extra.max_exercise_heart_rate_bpm",
        "beats/min",
        "maximum heart rate reached in the exercise test",
    ),
    Feature("exercise_angina", "profile.extra.exercise_angina", "0/1", "angina induced by exercise"),
    Feature(
        "st_depression_mm",
        "profile.extra.st_depression_mm",
        "mm",
        "ST depression induced by exercise relative to rest",
    ),
    Feature(
        "st_slope",
        "profile.extra.st_slope",
        "code",
        "slope of the peak exercise ST segment: 1 upsloping, 2 flat, 3 downsloping",
    ),
    Feature(
        "major_vessels",
        "profile.extra.major_vessels",
        "count",
        "major vessels (0-3) coloured by fluoroscopy",
    ),
    Feature(
        "thal",
        "profile.extra.thal",
        "code",
        "thallium scan: 3 normal, 6 fixed defect, 7 reversible defect",
    ),
)

# Shared by both models. nthread stays at 2 so that training is cheap on a shared
# build machine, and the hist method with a fixed seed and thread count repeats
# the same trees on the same machine.
COMMON_PARAMS = {
    "objective": "binary:logistic",
    "eval_metric": "logloss",
    "tree_method": "hist",
    "max_bin": 256,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "reg_lambda": 1.0,
    "nthread": 2,
}

# Depth and learning rate were compared once by validation AUC: depth 3 to 5 for
# cardio and 2 or 3 for uci, each with eta 0.05 and 0.1. The cardio settings all came
# within 0.001 of each other, so depth 4 with eta 0.05 is a middle choice. For uci,
# depth 2 with eta 0.05 had the best validation AUC.
SPECS = {
    "cardio": ModelSpec(
        key="cardio",
        name="cardio-xgb",
        version="1.0.0",
        features=CARDIO_FEATURES,
        params={**COMMON_PARAMS, "max_depth": 4, "eta": 0.05, "min_child_weight": 5.0},
        max_trees=400,
    ),
    "uci": ModelSpec(
        key="uci",
        name="uci-cleveland-xgb",
        version="1.0.0",
        features=UCI_FEATURES,
        params={**COMMON_PARAMS, "max_depth": 2, "eta": 0.05, "min_child_weight": 1.0},
        max_trees=200,
    ),
}

CARDIO_CODE_SETS = {
    "gender": {1, 2},
    "cholesterol": {1, 2, 3},
    "gluc": {1, 2, 3},
    "smoke": {0, 1},
    "alco": {0, 1},
    "active": {0, 1},
    "cardio": {0, 1},
}

STATS_CONTINUOUS = ["age_years", "height_cm", "weight_kg", "systolic_bp_mmhg", "diastolic_bp_mmhg"]
STATS_CATEGORICAL = {
    "sex_male": [0, 1],
    "cholesterol_category": [1, 2, 3],
    "glucose_category": [1, 2, 3],
    "smoker": [0, 1],
    "alcohol": [0, 1],
    "physically_active": [0, 1],
}
STATS_PERCENTILES = [1, 5, 25, 50, 75, 95, 99]

# Fixed profile for the cardio card's table of score against blood pressure: a
# 55-year-old man, 170 cm, 80 kg, normal cholesterol and glucose, non-smoker,
# no alcohol, physically active.
PRESSURE_SWEEP_PROFILE = {
    "age_years": 55.0,
    "sex_male": 1.0,
    "height_cm": 170.0,
    "weight_kg": 80.0,
    "bmi": 80.0 / 1.7**2,
    "cholesterol_category": 1.0,
    "glucose_category": 1.0,
    "smoker": 0.0,
    "alcohol": 0.0,
    "physically_active": 1.0,
}
PRESSURE_SWEEP_MMHG = [(180, 110), (160, 100), (140, 90), (120, 80), (110, 70), (100, 65), (90, 60), (80, 50), (70, 40)]

log = logging.getLogger("train")


@dataclasses.dataclass
class Dataset:
    """Feature matrix in model order, 0/1 target and how the rows were cleaned."""

    features: pd.DataFrame
    target: np.ndarray
    raw_rows: int
    cleaning: list[dict]


# ---------------------------------------------------------------- loading


def read_cardio_csv(path: Path) -> pd.DataFrame:
    """Read cardio_train.csv and strip the spaces around its header names."""
    frame = pd.read_csv(path, sep=";")
    frame.columns = [column.strip() for column in frame.columns]
    expected = ["id", "age", "gender", "height", "weight", "ap_hi", "ap_lo"]
    expected += ["cholesterol", "gluc", "smoke", "alco", "active", "cardio"]
    if list(frame.columns) != expected:
        raise ValueError(f"{path}: header is {list(frame.columns)}, expected {expected}")
    for column, codes in CARDIO_CODE_SETS.items():
        invalid = frame.loc[~frame[column].isin(codes), column]
        if len(invalid):
            raise ValueError(
                f"{path}: column {column} has {len(invalid)} values outside {sorted(codes)}, "
                f"for example {invalid.iloc[0]!r}; check that this is the Kaggle cardio_train.csv"
            )
    return frame


def clean_cardio(raw: pd.DataFrame) -> tuple[pd.DataFrame, list[dict]]:
    """Drop rows with impossible values, in the order of the module docstring.

    Returns the kept rows and one entry per rule with `rows_failing` (raw rows
    that fail the rule) and `rows_dropped` (rows it removed after the earlier rules).
    """
    range_rules = [
        ("systolic ap_hi outside 60..=250 mmHg", ~raw["ap_hi"].between(60, 250)),
        ("diastolic ap_lo outside 30..=160 mmHg", ~raw["ap_lo"].between(30, 160)),
        ("diastolic ap_lo >= systolic ap_hi", raw["ap_lo"] >= raw["ap_hi"]),
        ("height outside 120..=220 cm", ~raw["height"].between(120, 220)),
        ("weight outside 30..=200 kg", ~raw["weight"].between(30, 200)),
    ]
    keep = pd.Series(True, index=raw.index)
    report = []
    for rule, failing in range_rules:
        report.append(
            {"rule": rule, "rows_failing": int(failing.sum()), "rows_dropped": int((failing & keep).sum())}
        )
        keep &= ~failing

    all_but_id = [column for column in raw.columns if column != "id"]
    raw_duplicates = raw.duplicated(subset=all_but_id)
    kept = raw[keep]
    kept_duplicates = kept.duplicated(subset=all_but_id)
    report.append(
        {
            "rule": "exact duplicate of an earlier row except id",
            "rows_failing": int(raw_duplicates.sum()),
            "rows_dropped": int(kept_duplicates.sum()),
        }
    )
    return kept[~kept_duplicates], report


def load_cardio(path: Path) -> Dataset:
    """Read, clean and convert cardio_train.csv to the model's features and units."""
    raw = read_cardio_csv(path)
    clean, report = clean_cardio(raw)
    height_m = clean["height"] / 100.0
    features = pd.DataFrame(
        {
            "age_years": clean["age"] / 365.25,
            "sex_male": (clean["gender"] == 2).astype(float),
            "height_cm": clean["height"].astype(float),
            "weight_kg": clean["weight"].astype(float),
            "bmi": clean["weight"] / (height_m * height_m),
            "systolic_bp_mmhg": clean["ap_hi"].astype(float),
            "diastolic_bp_mmhg": clean["ap_lo"].astype(float),
            "cholesterol_category": clean["cholesterol"].astype(float),
            "glucose_category": clean["gluc"].astype(float),
            "smoker": clean["smoke"].astype(float),
            "alcohol": clean["alco"].astype(float),
            "physically_active": clean["active"].astype(float),
        }
    ).reset_index(drop=True)
    assert list(features.columns) == SPECS["cardio"].feature_names
    target = clean["cardio"].to_numpy(dtype=np.int64)
    return Dataset(features=features, target=target, raw_rows=len(raw), cleaning=report)


def load_uci(path: Path) -> Dataset:
    """Read the Cleveland file: `?` becomes NaN and the target is `num > 0`."""
    raw = pd.read_csv(path, header=None, names=UCI_COLUMNS, na_values="?")
    if len(raw.columns) != len(UCI_COLUMNS) or raw["num"].isna().any():
        raise ValueError(f"{path}: expected 14 comma-separated columns with `num` always present")
    features = raw[list(UCI_SOURCE_COLUMNS.values())].astype(float)
    features.columns = list(UCI_SOURCE_COLUMNS.keys())
    target = (raw["num"] > 0).to_numpy(dtype=np.int64)
    return Dataset(features=features, target=target, raw_rows=len(raw), cleaning=[])


def split_held_out(target: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return row indices of the training part and of the stratified held-out test split.

    golden.py calls this with the training seed to find the same held-out rows.
    """
    indices = np.arange(len(target))
    train_index, test_index = train_test_split(
        indices, test_size=TEST_FRACTION, stratify=target, random_state=seed
    )
    return train_index, test_index


def to_dmatrix(features: pd.DataFrame | np.ndarray, names: list[str], label=None) -> xgb.DMatrix:
    """Build a float32 DMatrix with NaN as missing and the model's feature names."""
    values = np.asarray(features, dtype=np.float32)
    return xgb.DMatrix(values, label=label, missing=np.nan, feature_names=names)


# ---------------------------------------------------------------- training


def fit(spec: ModelSpec, features: pd.DataFrame, target: np.ndarray, seed: int) -> tuple[xgb.Booster, dict]:
    """Choose the number of trees by early stopping, then refit on all given rows."""
    params = {**spec.params, "seed": seed}
    names = spec.feature_names
    fit_index, validation_index = train_test_split(
        np.arange(len(target)), test_size=VALIDATION_FRACTION, stratify=target, random_state=seed
    )
    fit_matrix = to_dmatrix(features.iloc[fit_index], names, target[fit_index])
    validation_matrix = to_dmatrix(features.iloc[validation_index], names, target[validation_index])
    early = xgb.train(
        params,
        fit_matrix,
        num_boost_round=spec.max_trees,
        evals=[(validation_matrix, "validation")],
        early_stopping_rounds=EARLY_STOPPING_ROUNDS,
        verbose_eval=False,
    )
    n_trees = early.best_iteration + 1
    validation_probability = early.predict(validation_matrix, iteration_range=(0, n_trees))
    validation_auc = roc_auc_score(target[validation_index], validation_probability)
    log.info("%s: early stopping chose %d trees, validation AUC %.4f", spec.key, n_trees, validation_auc)

    booster = xgb.train(params, to_dmatrix(features, names, target), num_boost_round=n_trees)
    cv_auc = cross_validated_auc(params, features, target, names, n_trees, seed)
    details = {
        "n_trees": n_trees,
        "n_fit": len(fit_index),
        "n_validation": len(validation_index),
        "validation_auc": validation_auc,
        "cv_auc_mean": float(np.mean(cv_auc)),
        "cv_auc_std": float(np.std(cv_auc, ddof=1)),
        "params": params,
    }
    return booster, details


def cross_validated_auc(params, features, target, names, n_trees, seed) -> list[float]:
    """Return the ROC AUC of each stratified fold of the training part, with fixed trees."""
    folds = StratifiedKFold(n_splits=CV_FOLDS, shuffle=True, random_state=seed)
    scores = []
    for fold_train, fold_test in folds.split(features, target):
        booster = xgb.train(
            params, to_dmatrix(features.iloc[fold_train], names, target[fold_train]), num_boost_round=n_trees
        )
        probability = booster.predict(to_dmatrix(features.iloc[fold_test], names))
        scores.append(float(roc_auc_score(target[fold_test], probability)))
    return scores


# ---------------------------------------------------------------- evaluation


def calibration_table(target: np.ndarray, probability: np.ndarray) -> list[dict]:
    """Bin predictions into 10 equal-width bins on [0, 1], the last bin including 1.0.

    An empty bin gets n = 0 and null mean_predicted and observed_rate.
    """
    bin_index = np.clip(np.floor(probability * CALIBRATION_BINS).astype(int), 0, CALIBRATION_BINS - 1)
    table = []
    for i in range(CALIBRATION_BINS):
        in_bin = bin_index == i
        count = int(in_bin.sum())
        table.append(
            {
                "bin_low": i / CALIBRATION_BINS,
                "bin_high": (i + 1) / CALIBRATION_BINS,
                "n": count,
                "mean_predicted": float(probability[in_bin].mean()) if count else None,
                "observed_rate": float(target[in_bin].mean()) if count else None,
            }
        )
    return table


def bootstrap_auc_interval(target: np.ndarray, probability: np.ndarray, seed: int) -> tuple[float, float]:
    """Return the 2.5 and 97.5 percentiles of ROC AUC over bootstrap resamples of the test rows."""
    rng = np.random.default_rng(seed)
    scores = []
    for _ in range(BOOTSTRAP_RESAMPLES):
        sample = rng.integers(0, len(target), len(target))
        if target[sample].min() == target[sample].max():
            continue
        scores.append(roc_auc_score(target[sample], probability[sample]))
    low, high = np.percentile(scores, [2.5, 97.5])
    return float(low), float(high)


def evaluate(booster: xgb.Booster, features: pd.DataFrame, target: np.ndarray, names, n_train: int, seed):
    """Compute metrics.json content on the held-out rows, and the AUC interval for the card."""
    probability = booster.predict(to_dmatrix(features, names)).astype(np.float64)
    predicted_class = (probability >= ACCURACY_THRESHOLD).astype(int)
    metrics = {
        "roc_auc": float(roc_auc_score(target, probability)),
        "accuracy": float(accuracy_score(target, predicted_class)),
        "brier": float(brier_score_loss(target, probability)),
        "n_train": int(n_train),
        "n_test": int(len(target)),
        "threshold_for_accuracy": ACCURACY_THRESHOLD,
        "calibration": calibration_table(target, probability),
    }
    interval = bootstrap_auc_interval(target, probability, seed)
    return metrics, interval


def pressure_sweep(booster: xgb.Booster, names: list[str]) -> list[dict]:
    """Predict the cardio probability of PRESSURE_SWEEP_PROFILE at each blood pressure pair."""
    rows = []
    for systolic, diastolic in PRESSURE_SWEEP_MMHG:
        row = {**PRESSURE_SWEEP_PROFILE, "systolic_bp_mmhg": systolic, "diastolic_bp_mmhg": diastolic}
        rows.append([row[name] for name in names])
    probability = booster.predict(to_dmatrix(np.array(rows), names))
    return [
        {"systolic": systolic, "diastolic": diastolic, "probability": float(p)}
        for (systolic, diastolic), p in zip(PRESSURE_SWEEP_MMHG, probability)
    ]


# ---------------------------------------------------------------- outputs


def cardio_stats(features: pd.DataFrame) -> dict:
    """Summarise the cleaned cardio rows for a simulator that cannot read the CSV."""
    continuous = {}
    for name in STATS_CONTINUOUS:
        column = features[name].to_numpy(dtype=np.float64)
        summary = {
            "mean": float(column.mean()),
            "std": float(column.std(ddof=1)),
            "min": float(column.min()),
            "max": float(column.max()),
        }
        for q, value in zip(STATS_PERCENTILES, np.percentile(column, STATS_PERCENTILES)):
            summary[f"p{q:02d}"] = float(value)
        continuous[name] = summary

    correlation = features[STATS_CONTINUOUS].corr(method="pearson").to_numpy()
    categorical = {}
    for name, codes in STATS_CATEGORICAL.items():
        counts = features[name].value_counts()
        if set(counts.index) - set(codes):
            raise ValueError(f"{name} has codes {sorted(counts.index)}, expected a subset of {codes}")
        categorical[name] = {str(code): float(counts.get(code, 0) / len(features)) for code in codes}
    return {
        "rows": int(len(features)),
        "continuous": continuous,
        "correlation": {"names": STATS_CONTINUOUS, "matrix": correlation.tolist()},
        "categorical": categorical,
    }


def manifest_text(spec: ModelSpec) -> str:
    """Render manifest.toml, which the Rust packager parses."""
    lines = [
        "# Packaging manifest: how cardiowatch bakes this model into a score component.",
        f'name = "{spec.name}"',
        f'version = "{spec.version}"',
        'model = "model.json"         # relative to this file',
        'metrics = "metrics.json"     # relative to this file',
        "",
        "# One entry per model feature, in model order. `source` is the canonical field that",
        "# feeds it; `unit` is the unit the model was trained in.",
    ]
    for feature in spec.features:
        lines += [
            "[[feature]]",
            f'name = "{feature.name}"',
            f'source = "{feature.source}"',
            f'unit = "{feature.unit}"',
            "",
        ]
    return "\n".join(lines)


def write_json(path: Path, content) -> None:
    path.write_text(json.dumps(content, indent=2) + "\n")


def train_model(spec: ModelSpec, dataset: Dataset, out_dir: Path, seed: int) -> dict:
    """Train, evaluate and write every artefact of one model, and return its metrics."""
    model_dir = out_dir / spec.key
    model_dir.mkdir(parents=True, exist_ok=True)
    names = spec.feature_names
    train_index, test_index = split_held_out(dataset.target, seed)
    train_features = dataset.features.iloc[train_index].reset_index(drop=True)
    test_features = dataset.features.iloc[test_index].reset_index(drop=True)

    booster, details = fit(spec, train_features, dataset.target[train_index], seed)
    if booster.feature_names != names:
        raise RuntimeError(f"{spec.key}: booster feature names {booster.feature_names} differ from {names}")
    booster.save_model(str(model_dir / "model.json"))

    metrics, auc_interval = evaluate(
        booster, test_features, dataset.target[test_index], names, len(train_index), seed
    )
    write_json(model_dir / "metrics.json", metrics)
    (model_dir / "manifest.toml").write_text(manifest_text(spec))
    card = model_card.render(
        spec=spec,
        metrics=metrics,
        auc_interval=auc_interval,
        details=details,
        dataset=dataset,
        positive_rate=float(dataset.target.mean()),
        xgboost_version=xgb.__version__,
        sklearn_version=sklearn.__version__,
        seed=seed,
        sweep=pressure_sweep(booster, names) if spec.key == "cardio" else None,
    )
    (model_dir / "CARD.md").write_text(card)
    log.info(
        "%s: held-out ROC AUC %.4f (95%% bootstrap %.3f-%.3f), accuracy %.4f, Brier %.4f, n_test %d",
        spec.key,
        metrics["roc_auc"],
        *auc_interval,
        metrics["accuracy"],
        metrics["brier"],
        metrics["n_test"],
    )
    return metrics


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cardio", type=Path, required=True, help="path of cardio_train.csv (`;`-separated)")
    parser.add_argument(
        "--uci", type=Path, default=DEFAULT_UCI_PATH, help="path of processed.cleveland.data (default: vendored copy)"
    )
    parser.add_argument("--out", type=Path, default=MODELS_DIR, help="output folder (default: this script's folder)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the data splits and of XGBoost (default: 42)")
    return parser.parse_args()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    args = parse_args()

    cardio = load_cardio(args.cardio)
    log.info("cardio: %d raw rows, %d after cleaning", cardio.raw_rows, len(cardio.target))
    train_model(SPECS["cardio"], cardio, args.out, args.seed)
    write_json(args.out / "cardio" / "stats.json", cardio_stats(cardio.features))

    uci = load_uci(args.uci)
    train_model(SPECS["uci"], uci, args.out, args.seed)


if __name__ == "__main__":
    main()
