//! Compares the baseline and candidate outcome of each replayed record and renders the
//! differences per hospital, as text or JSON.
//!
//! Vitals are never part of the report. Patients appear as pseudonyms numbered in order
//! of first appearance unless the caller asks for their ids.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::pipeline::output::Status;
use crate::pipeline::{InputRecord, Outcome};

/// Hospital label of records that no hospital could be found for.
const UNROUTED: &str = "(unrouted)";

/// Differences of one hospital.
#[derive(Debug, Default, Serialize)]
pub struct HospitalDiff {
    /// Records routed to the hospital (by either pipeline).
    pub records: u64,
    /// Records that got a prediction from both pipelines.
    pub predictions_compared: u64,
    /// Records whose outcome differs in status, alerts or probability.
    pub records_changed: u64,
    /// Alerts only the candidate raised, by `kind/severity`.
    pub alerts_added: BTreeMap<String, u64>,
    /// Alerts only the baseline raised, by `kind/severity`.
    pub alerts_removed: BTreeMap<String, u64>,
    /// Absolute probability differences where both ran the model.
    pub probability: ProbabilityDiff,
    /// Outcome changes, by `baseline -> candidate` (a status or `dead_letter:<kind>`).
    pub status_changes: BTreeMap<String, u64>,
    /// Dead letters of the baseline, by kind.
    pub baseline_dead_letters: BTreeMap<String, u64>,
    /// Dead letters of the candidate, by kind.
    pub candidate_dead_letters: BTreeMap<String, u64>,
    /// A few changed records.
    pub examples: Vec<Example>,
    #[serde(skip)]
    differences: Vec<f64>,
}

/// Summary of absolute probability differences.
#[derive(Debug, Default, Serialize)]
pub struct ProbabilityDiff {
    /// Number of predictions where both pipelines ran the model.
    pub compared: u64,
    /// Of those, the number whose probability differs at all.
    pub changed: u64,
    /// Median absolute difference.
    pub median: f64,
    /// 95th percentile (nearest rank) of the absolute difference.
    pub p95: f64,
    /// Maximum absolute difference.
    pub max: f64,
}

/// One changed record, without vitals.
#[derive(Debug, Serialize)]
pub struct Example {
    /// Pseudonym such as `patient-3`, or the patient id with `--show-patients`.
    pub patient: String,
    /// Partition of the record.
    pub partition: i32,
    /// Offset of the record.
    pub offset: i64,
    /// Baseline outcome.
    pub baseline: OutcomeSummary,
    /// Candidate outcome.
    pub candidate: OutcomeSummary,
}

/// An outcome reduced to what the report compares.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutcomeSummary {
    /// Status of the prediction, or `dead_letter:<kind>`.
    pub status: String,
    /// Model probability, when the model ran.
    pub probability: Option<f64>,
    /// Alerts as `kind/severity`, sorted.
    pub alerts: Vec<String>,
    #[serde(skip)]
    hospital: Option<String>,
    #[serde(skip)]
    patient_id: Option<String>,
}

fn status_name(status: Status) -> &'static str {
    match status {
        Status::Scored => "scored",
        Status::News2Only => "news2_only",
        Status::Late => "late",
    }
}

impl OutcomeSummary {
    fn of(outcome: &Outcome) -> Self {
        match outcome {
            Outcome::Scored {
                patient_id,
                prediction,
                alerts,
                ..
            } => {
                let mut alerts: Vec<String> = alerts
                    .iter()
                    .map(|alert| format!("{}/{}", alert.kind, alert.severity))
                    .collect();
                alerts.sort();
                OutcomeSummary {
                    status: status_name(prediction.status).to_string(),
                    probability: prediction.model.as_ref().map(|model| model.probability),
                    alerts,
                    hospital: Some(prediction.hospital.clone()),
                    patient_id: Some(patient_id.clone()),
                }
            }
            Outcome::DeadLetter(dead) => OutcomeSummary {
                status: format!("dead_letter:{}", dead.kind.as_str()),
                probability: None,
                alerts: Vec::new(),
                hospital: dead.hospital.clone(),
                patient_id: None,
            },
        }
    }

    fn dead_letter_kind(&self) -> Option<&str> {
        self.status.strip_prefix("dead_letter:")
    }
}

/// The whole report.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// Topic replayed.
    pub topic: String,
    /// Offsets read per partition.
    pub ranges: Vec<super::read::PartitionRange>,
    /// Profiles loaded from the patients topic before the replay.
    pub profiles_read: u64,
    /// Vitals records read.
    pub records_read: u64,
    /// Wall-clock time of the read and both pipelines, in milliseconds.
    pub elapsed_ms: u64,
    /// Records read per second of `elapsed_ms`.
    pub records_per_s: f64,
    /// Differences per hospital.
    pub hospitals: BTreeMap<String, HospitalDiff>,
    #[serde(skip)]
    pseudonyms: HashMap<String, usize>,
    #[serde(skip)]
    show_patients: bool,
    #[serde(skip)]
    max_examples: usize,
}

impl Report {
    /// Creates an empty report.
    pub fn new(topic: &str, show_patients: bool, max_examples: usize) -> Self {
        Report {
            topic: topic.to_string(),
            show_patients,
            max_examples,
            ..Report::default()
        }
    }

    /// Adds one record's baseline and candidate outcome.
    pub fn add(&mut self, record: &InputRecord, baseline: &Outcome, candidate: &Outcome) {
        self.records_read += 1;
        let before = OutcomeSummary::of(baseline);
        let after = OutcomeSummary::of(candidate);
        let hospital = before
            .hospital
            .clone()
            .or_else(|| after.hospital.clone())
            .unwrap_or_else(|| UNROUTED.to_string());
        let patient = self.patient_label(before.patient_id.as_ref().or(after.patient_id.as_ref()));
        let max_examples = self.max_examples;
        let diff = self.hospitals.entry(hospital).or_default();
        diff.records += 1;
        let changed = diff.compare(&before, &after);
        if changed {
            diff.records_changed += 1;
            if diff.examples.len() < max_examples {
                if let Some(id) = before.patient_id.as_ref() {
                    tracing::debug!(patient_id = %id, %patient, "replay example");
                }
                diff.examples.push(Example {
                    patient,
                    partition: record.partition,
                    offset: record.offset,
                    baseline: before,
                    candidate: after,
                });
            }
        }
    }

    fn patient_label(&mut self, id: Option<&String>) -> String {
        let Some(id) = id else {
            return "(none)".to_string();
        };
        if self.show_patients {
            return id.clone();
        }
        let next = self.pseudonyms.len() + 1;
        let number = *self.pseudonyms.entry(id.clone()).or_insert(next);
        format!("patient-{number}")
    }

    /// Computes the probability statistics; call once after the last record.
    pub fn finish(&mut self, elapsed: std::time::Duration) {
        self.elapsed_ms = elapsed.as_millis() as u64;
        let seconds = elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.records_per_s = self.records_read as f64 / seconds;
        }
        for diff in self.hospitals.values_mut() {
            let values = &mut diff.differences;
            values.sort_by(f64::total_cmp);
            let probability = &mut diff.probability;
            probability.compared = values.len() as u64;
            probability.changed = values.iter().filter(|value| **value > 0.0).count() as u64;
            probability.median = nearest_rank(values, 0.5);
            probability.p95 = nearest_rank(values, 0.95);
            probability.max = values.last().copied().unwrap_or(0.0);
        }
    }

    /// Whether any hospital has a difference.
    pub fn has_differences(&self) -> bool {
        self.hospitals.values().any(|diff| diff.records_changed > 0)
    }
}

impl HospitalDiff {
    /// Counts the differences of one record; returns whether there were any.
    fn compare(&mut self, before: &OutcomeSummary, after: &OutcomeSummary) -> bool {
        if let Some(kind) = before.dead_letter_kind() {
            *self
                .baseline_dead_letters
                .entry(kind.to_string())
                .or_default() += 1;
        }
        if let Some(kind) = after.dead_letter_kind() {
            *self
                .candidate_dead_letters
                .entry(kind.to_string())
                .or_default() += 1;
        }
        if before.dead_letter_kind().is_none() && after.dead_letter_kind().is_none() {
            self.predictions_compared += 1;
        }
        if before.status != after.status {
            let change = format!("{} -> {}", before.status, after.status);
            *self.status_changes.entry(change).or_default() += 1;
        }
        if let (Some(old), Some(new)) = (before.probability, after.probability) {
            self.differences.push((new - old).abs());
        }
        let (added, removed) = multiset_difference(&before.alerts, &after.alerts);
        for alert in &added {
            *self.alerts_added.entry(alert.clone()).or_default() += 1;
        }
        for alert in &removed {
            *self.alerts_removed.entry(alert.clone()).or_default() += 1;
        }
        before != after
    }
}

/// Returns the alerts only in `after` and those only in `before`, counting repeats.
fn multiset_difference(before: &[String], after: &[String]) -> (Vec<String>, Vec<String>) {
    let mut counts: BTreeMap<&String, i64> = BTreeMap::new();
    for alert in after {
        *counts.entry(alert).or_default() += 1;
    }
    for alert in before {
        *counts.entry(alert).or_default() -= 1;
    }
    let mut added = Vec::new();
    let mut removed = Vec::new();
    for (alert, count) in counts {
        for _ in 0..count.max(0) {
            added.push(alert.clone());
        }
        for _ in 0..(-count).max(0) {
            removed.push(alert.clone());
        }
    }
    (added, removed)
}

/// Nearest-rank percentile of sorted values; 0 when there are none.
fn nearest_rank(sorted: &[f64], quantile: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (quantile * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Renders the report for a terminal.
pub fn render_text(report: &Report) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "replayed {} records of {} ({} profiles loaded) in {:.1} s, {:.0} records/s",
        report.records_read,
        report.topic,
        report.profiles_read,
        report.elapsed_ms as f64 / 1000.0,
        report.records_per_s
    );
    for (hospital, diff) in &report.hospitals {
        let _ = writeln!(out, "\n{hospital}: {} records", diff.records);
        render_hospital(&mut out, diff);
    }
    if !report.has_differences() {
        let _ = writeln!(out, "\nno differences");
    }
    out
}

fn render_hospital(out: &mut String, diff: &HospitalDiff) {
    use std::fmt::Write as _;
    let p = &diff.probability;
    let _ = writeln!(
        out,
        "  predictions compared {}, records changed {}",
        diff.predictions_compared, diff.records_changed
    );
    let _ = writeln!(
        out,
        "  probability |difference| over {} model outputs ({} changed): median {:.4}, \
         p95 {:.4}, max {:.4}",
        p.compared, p.changed, p.median, p.p95, p.max
    );
    let _ = writeln!(out, "  alerts added: {}", render_counts(&diff.alerts_added));
    let _ = writeln!(
        out,
        "  alerts removed: {}",
        render_counts(&diff.alerts_removed)
    );
    let _ = writeln!(
        out,
        "  status changes: {}",
        render_counts(&diff.status_changes)
    );
    let _ = writeln!(
        out,
        "  dead letters: baseline {}, candidate {}",
        render_counts(&diff.baseline_dead_letters),
        render_counts(&diff.candidate_dead_letters)
    );
    for example in &diff.examples {
        let _ = writeln!(
            out,
            "  e.g. {} at {}@{}: {} -> {}",
            example.patient,
            example.partition,
            example.offset,
            render_outcome(&example.baseline),
            render_outcome(&example.candidate)
        );
    }
}

fn render_counts(counts: &BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return "none".to_string();
    }
    let parts: Vec<String> = counts
        .iter()
        .map(|(name, count)| format!("{name} {count}"))
        .collect();
    parts.join(", ")
}

fn render_outcome(outcome: &OutcomeSummary) -> String {
    let mut text = outcome.status.clone();
    if let Some(probability) = outcome.probability {
        text.push_str(&format!(" p={probability:.3}"));
    }
    if !outcome.alerts.is_empty() {
        text.push_str(&format!(" [{}]", outcome.alerts.join(" ")));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_picks_sorted_values() {
        let values = [0.1, 0.2, 0.3, 0.4];
        assert_eq!(nearest_rank(&values, 0.5), 0.2);
        assert_eq!(nearest_rank(&values, 0.95), 0.4);
        assert_eq!(nearest_rank(&[], 0.5), 0.0);
    }

    #[test]
    fn multiset_difference_counts_repeats() {
        let before = vec!["model/urgent".to_string(), "news2/urgent".to_string()];
        let after = vec![
            "model/urgent".to_string(),
            "model/urgent".to_string(),
            "news2/emergency".to_string(),
        ];
        let (added, removed) = multiset_difference(&before, &after);
        assert_eq!(added, vec!["model/urgent", "news2/emergency"]);
        assert_eq!(removed, vec!["news2/urgent"]);
    }
}
