"""Render CARD.md for a model that train.py has just trained and evaluated.

The fixed text of each card (what the model predicts and what it does not, intended
use, data source) lives here, and every number comes from the training run, so a
retrain rewrites the card together with the model.
"""

from __future__ import annotations

DEMONSTRATION_NOTICE = """\
**NOT clinically validated. Do not use it for patient care.** This model exists to
demonstrate the cardiowatch platform: packaging, scoring, TreeSHAP explanations and
alerting. A hospital that deploys cardiowatch plugs in its own validated model by
writing a `manifest.toml` like the one next to this card."""

PURPOSE = {
    "cardio": """\
## What it predicts

The probability that the person has cardiovascular disease, as recorded by the
`cardio` label of the Kaggle "Cardiovascular Disease dataset" for the health
examination at which the inputs were measured. The copy used here comes without
documentation of how that diagnosis was made. The label is cross-sectional: it describes the examination
and is not an event within a time horizon.

## What it does NOT predict

- It is not a heart failure model and not a 10-year risk score.
- It does not detect acute deterioration. Its only inputs that a bedside monitor
  updates are systolic and diastolic blood pressure, and in the training data
  higher pressure goes with disease. A falling blood pressure, as in shock,
  bleeding or sepsis, therefore **lowers** the score over the usual range. Below
  about 90 mmHg systolic, where training rows are scarce, the score stays low
  instead of rising (see the table below). Acute deterioration is what NEWS2
  measures, and cardiowatch computes NEWS2 separately.
- Heart rate, respiratory rate, SpO2 and temperature do not enter the model.
- Cholesterol and glucose enter only as categories 1 to 3 (normal, above normal,
  well above normal), and smoking, alcohol and activity are self-reported 0/1 flags.""",
    "uci": """\
## What it predicts

The probability of angiographic coronary artery disease: `num > 0` in the UCI
Cleveland data, which means more than 50 % diameter narrowing in at least one major
coronary vessel at angiography. The 303 patients come from the Cleveland Clinic
Foundation, and the data was donated to the UCI repository in 1988.

## What it does NOT predict

- It is not a heart failure model and does not detect acute deterioration. Acute
  deterioration is what NEWS2 measures, and cardiowatch computes NEWS2 separately.
- Most inputs do not come from a bedside monitor. The maximum heart rate, exercise
  angina, ST depression and ST slope come from an exercise stress test. The major
  vessel count comes from fluoroscopy and `thal` from a thallium scan. A bedside
  heart rate is not `max_exercise_heart_rate_bpm`, and feeding one into it gives a
  meaningless score.
- Its only input that a bedside monitor updates is `resting_systolic_bp_mmhg`, and
  the model was trained on one resting pressure measured on admission, not on a
  continuous reading.
- When the stress test inputs are missing, XGBoost still returns a score by
  following each split's default branch. The held-out metrics below do not describe
  such scores, because only 6 of the 303 source values are missing.""",
}

DATA = {
    "cardio": """\
## Data

Kaggle "Cardiovascular Disease dataset", file `cardio_train.csv`: 70,000 rows,
`;`-separated. Its licence is not stated, so the file is **not** in this repository.
`train.py` and `golden.py` read it from the path given with `--cardio`. The
trained model, its metrics and the summary statistics in `stats.json` are derived
data. Which population was examined, and how, is not documented with that copy.""",
    "uci": """\
## Data

UCI Machine Learning Repository, "Heart Disease", Cleveland subset
(`processed.cleveland.data`, 303 rows), vendored byte for byte in
`models/data/uci-heart/`. Credit: Janosi, Steinbrunn, Pfisterer, Detrano, 1989,
UCI ML Repository. Licence: CC BY 4.0. See `models/data/uci-heart/README.md` for
the column meanings.

No row is dropped. The file marks 6 values as `?` (4 in `ca`, 2 in `thal`).
`train.py` reads them as NaN and leaves them to XGBoost's missing-value handling.
Every code keeps its source value (`cp` 1 to 4, `thal` 3/6/7, `slope` 1 to 3).""",
}


def format_number(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}"


def cleaning_section(dataset) -> str | None:
    if not dataset.cleaning:
        return None
    lines = [
        "## Cleaning",
        "",
        "Rules applied in this order before the split (see the docstring of `train.py`).",
        "*Raw rows failing* counts rows of the raw file that fail the rule alone;",
        "*rows dropped* counts the rows the rule removed after the earlier rules.",
        "",
        "| rule | raw rows failing | rows dropped |",
        "| --- | ---: | ---: |",
    ]
    for entry in dataset.cleaning:
        lines.append(f"| {entry['rule']} | {entry['rows_failing']:,} | {entry['rows_dropped']:,} |")
    dropped = sum(entry["rows_dropped"] for entry in dataset.cleaning)
    lines.append(f"| **total** | | **{dropped:,}** |")
    lines += [
        "",
        f"{dataset.raw_rows:,} raw rows, {len(dataset.target):,} kept. Codes outside their",
        "documented sets raise an error instead of being dropped, and none occur.",
        "Age is converted from days to years (days / 365.25), sex from gender",
        "2 = male, 1 = female to `sex_male` 1 = male, 0 = female, and bmi is",
        "weight / (height / 100)^2.",
        "",
    ]
    return "\n".join(lines)


def features_section(spec) -> str:
    lines = [
        "## Features",
        "",
        "In model order. `source` is the canonical cardiowatch field that feeds the",
        "feature (see `manifest.toml`); values are in the unit given.",
        "",
        "| # | name | unit | source | meaning |",
        "| ---: | --- | --- | --- | --- |",
    ]
    for index, feature in enumerate(spec.features):
        lines.append(
            f"| {index} | `{feature.name}` | {feature.unit} | `{feature.source}` | {feature.description} |"
        )
    lines.append("")
    return "\n".join(lines)


def training_section(spec, details, metrics, xgboost_version, sklearn_version, seed) -> str:
    params = details["params"]
    listed_params = ["objective", "tree_method", "max_depth", "eta", "min_child_weight", "subsample"]
    listed_params += ["colsample_bytree", "reg_lambda", "max_bin", "seed"]
    lines = [
        "## Training",
        "",
        f"- Split: stratified, {metrics['n_test']:,} held-out test rows (20 %) and",
        f"  {metrics['n_train']:,} training rows, seed {seed}.",
        f"- Early stopping: {details['n_validation']:,} of the training rows (20 %, stratified)",
        f"  served as validation set, log loss, patience 30, at most {spec.max_trees} trees.",
        f"  It chose **{details['n_trees']} trees**. The saved model is a refit on all",
        f"  {metrics['n_train']:,} training rows with that number of trees.",
        f"- xgboost {xgboost_version}, scikit-learn {sklearn_version}. Numeric splits only,",
        "  no categorical feature types.",
        "",
        "| hyperparameter | value |",
        "| --- | --- |",
    ]
    for key in listed_params:
        lines.append(f"| `{key}` | {params[key]} |")
    lines.append(f"| trees | {details['n_trees']} |")
    lines.append("")
    return "\n".join(lines)


def results_section(metrics, auc_interval, details, positive_rate) -> str:
    low, high = auc_interval
    lines = [
        "## Held-out results",
        "",
        "| metric | value |",
        "| --- | --- |",
        f"| ROC AUC | **{metrics['roc_auc']:.4f}** (95 % bootstrap interval {low:.3f} to {high:.3f}) |",
        f"| accuracy at probability >= {metrics['threshold_for_accuracy']} | {metrics['accuracy']:.4f} |",
        f"| Brier score | {metrics['brier']:.4f} |",
        f"| test rows | {metrics['n_test']:,} |",
        f"| positive rate, all rows | {positive_rate:.4f} |",
        "",
        "The interval comes from 1,000 bootstrap resamples of the test rows. For comparison,",
        f"the validation AUC at early stopping was {details['validation_auc']:.4f}, and 5-fold",
        f"stratified cross-validation on the training rows gave {details['cv_auc_mean']:.4f}",
        f"(standard deviation {details['cv_auc_std']:.4f} across folds).",
        "",
        "### Calibration",
        "",
        "Ten equal-width bins of the predicted probability on the test rows.",
        "",
        "| bin | n | mean predicted | observed rate |",
        "| --- | ---: | ---: | ---: |",
    ]
    for row in metrics["calibration"]:
        bin_label = f"{row['bin_low']:.1f} to {row['bin_high']:.1f}"
        lines.append(
            f"| {bin_label} | {row['n']:,} | {format_number(row['mean_predicted'], 3)} "
            f"| {format_number(row['observed_rate'], 3)} |"
        )
    lines.append("")
    return "\n".join(lines)


FILES = {
    "cardio": """\
## Files

- `model.json`: XGBoost model saved with `Booster.save_model`, feature names included.
- `metrics.json`: the held-out metrics above.
- `manifest.toml`: name, version and feature sources for the Rust packager.
- `golden.json`: reference predictions and contributions made by `golden.py`.
- `stats.json`: summary statistics of the cleaned rows for the profile simulator.
""",
    "uci": """\
## Files

- `model.json`: XGBoost model saved with `Booster.save_model`, feature names included.
- `metrics.json`: the held-out metrics above.
- `manifest.toml`: name, version and feature sources for the Rust packager.
- `golden.json`: reference predictions and contributions made by `golden.py`.
""",
}

# Below this many test rows the card adds SMALL_SAMPLE_NOTE, because the 95 % AUC
# interval of so small a test set is several hundredths wide or more.
SMALL_TEST_SET_ROWS = 200
SMALL_SAMPLE_NOTE = """\
With only {n_test} test rows the held-out AUC of {auc:.3f} is uncertain, as the
interval shows, and another seed would give a noticeably different split. The
cross-validated {cv_auc:.3f} on the training rows is the better estimate of how
the model ranks new patients from the same population.
"""


def sweep_section(sweep, dataset) -> str:
    systolic = dataset.features["systolic_bp_mmhg"]
    n_low = int((systolic < 90).sum())
    lines = [
        "## Blood pressure and the score",
        "",
        "Predicted probability for one fixed profile (55-year-old man, 170 cm, 80 kg,",
        "normal cholesterol and glucose, non-smoker, no alcohol, physically active) as",
        "only the blood pressure changes. Only {:,} of the {:,} cleaned rows have a".format(n_low, len(systolic)),
        "systolic pressure below 90 mmHg, so the model has little to go on there.",
        "",
        "| blood pressure (mmHg) | probability |",
        "| --- | ---: |",
    ]
    for point in sweep:
        lines.append(f"| {point['systolic']}/{point['diastolic']} | {point['probability']:.3f} |")
    lines.append("")
    return "\n".join(lines)


def render(
    spec, metrics, auc_interval, details, dataset, positive_rate, xgboost_version, sklearn_version, seed, sweep
):
    """Return the text of CARD.md. `sweep` is the cardio blood pressure table, None for uci."""
    sections = [
        f"# Model card: {spec.name} {spec.version}",
        "",
        DEMONSTRATION_NOTICE,
        "",
        PURPOSE[spec.key],
        "",
        sweep_section(sweep, dataset) if sweep else None,
        DATA[spec.key],
        "",
        cleaning_section(dataset),
        features_section(spec),
        training_section(spec, details, metrics, xgboost_version, sklearn_version, seed),
        results_section(metrics, auc_interval, details, positive_rate),
    ]
    if metrics["n_test"] < SMALL_TEST_SET_ROWS:
        note = SMALL_SAMPLE_NOTE.format(n_test=metrics["n_test"], auc=metrics["roc_auc"], cv_auc=details["cv_auc_mean"])
        sections.append(note)
    sections.append(FILES[spec.key])
    return "\n".join(section for section in sections if section is not None)
