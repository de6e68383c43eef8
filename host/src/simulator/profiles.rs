//! Realistic patient profiles without the cardio CSV: correlated draws from the committed
//! summary statistics, joined with stress-test attributes from a vendored UCI row.
//!
//! Continuous fields come from a multivariate normal with the cleaned data's means,
//! standard deviations and Pearson correlations, clipped to its 1st and 99th
//! percentiles. Categorical fields follow the data's frequencies. The UCI row is the one
//! of the same sex whose age is closest, so both models see a plausible patient.

use std::collections::BTreeMap;

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::Deserialize;

/// Summary statistics of the cleaned cardio data, as `models/train.py` writes them.
const CARDIO_STATS: &str = include_str!("../../../models/cardio/stats.json");
/// UCI Heart Disease, Cleveland subset (CC BY 4.0, Janosi, Steinbrunn, Pfisterer,
/// Detrano, 1989, UCI ML Repository).
const UCI_ROWS: &str = include_str!("../../../models/data/uci-heart/processed.cleveland.data");

/// Names of the UCI columns after age and sex, as profile extras, in file order.
const UCI_EXTRAS: [&str; 11] = [
    "chest_pain_type",
    "resting_systolic_bp_mmhg",
    "serum_cholesterol_mg_dl",
    "fasting_glucose_over_120",
    "resting_ecg",
    "max_exercise_heart_rate_bpm",
    "exercise_angina",
    "st_depression_mm",
    "st_slope",
    "major_vessels",
    "thal",
];

#[derive(Deserialize)]
struct Stats {
    continuous: BTreeMap<String, Continuous>,
    correlation: Correlation,
    categorical: BTreeMap<String, BTreeMap<String, f64>>,
}

#[derive(Deserialize)]
struct Continuous {
    mean: f64,
    std: f64,
    p01: f64,
    p99: f64,
}

#[derive(Deserialize)]
struct Correlation {
    names: Vec<String>,
    matrix: Vec<Vec<f64>>,
}

/// One UCI row: age, sex (1 male) and the extras, `None` where the data has `?`.
#[derive(Debug, Clone)]
struct UciRow {
    age: f64,
    male: bool,
    extras: Vec<Option<f64>>,
    diseased: bool,
}

/// A drawn profile in canonical units.
#[derive(Debug, Clone, PartialEq)]
pub struct DrawnProfile {
    /// Age, years.
    pub age_years: f64,
    /// Male.
    pub male: bool,
    /// Height, cm.
    pub height_cm: f64,
    /// Weight, kg.
    pub weight_kg: f64,
    /// Usual systolic pressure, mmHg.
    pub systolic_bp_mmhg: f64,
    /// Usual diastolic pressure, mmHg.
    pub diastolic_bp_mmhg: f64,
    /// Cholesterol category 1..=3.
    pub cholesterol_category: u8,
    /// Glucose category 1..=3.
    pub glucose_category: u8,
    /// Smoker.
    pub smoker: bool,
    /// Alcohol.
    pub alcohol: bool,
    /// Physically active.
    pub physically_active: bool,
    /// UCI stress-test attributes by extra name.
    pub extras: Vec<(String, f64)>,
}

/// Draws profiles from the committed statistics.
pub struct ProfileSampler {
    stats: Stats,
    cholesky: Vec<Vec<f64>>,
    uci: Vec<UciRow>,
}

impl ProfileSampler {
    /// Parses the embedded statistics and UCI rows.
    pub fn new() -> Self {
        let stats: Stats = serde_json::from_str(CARDIO_STATS).expect("embedded stats.json parses");
        let cholesky = cholesky(&stats.correlation.matrix);
        let uci = UCI_ROWS.lines().filter_map(parse_uci_row).collect();
        ProfileSampler {
            stats,
            cholesky,
            uci,
        }
    }

    /// Draws one profile. `high_risk` forces an older patient with high cholesterol and
    /// a UCI row with angiographic disease, the profile the models rank highest.
    pub fn draw(&self, rng: &mut impl Rng, high_risk: bool) -> DrawnProfile {
        let values = self.draw_continuous(rng);
        let value = |name: &str| values[name];
        let male = self.draw_category(rng, "sex_male") == 1;
        let mut profile = DrawnProfile {
            age_years: value("age_years"),
            male,
            height_cm: value("height_cm"),
            weight_kg: value("weight_kg"),
            systolic_bp_mmhg: value("systolic_bp_mmhg"),
            diastolic_bp_mmhg: value("diastolic_bp_mmhg").min(value("systolic_bp_mmhg") - 20.0),
            cholesterol_category: self.draw_category(rng, "cholesterol_category"),
            glucose_category: self.draw_category(rng, "glucose_category"),
            smoker: self.draw_category(rng, "smoker") == 1,
            alcohol: self.draw_category(rng, "alcohol") == 1,
            physically_active: self.draw_category(rng, "physically_active") == 1,
            extras: Vec::new(),
        };
        if high_risk {
            profile.age_years = profile.age_years.max(58.0);
            profile.cholesterol_category = 3;
            profile.physically_active = false;
        }
        let row = self.closest_uci_row(profile.age_years, male, high_risk);
        profile.extras = UCI_EXTRAS
            .iter()
            .zip(&row.extras)
            .filter_map(|(name, value)| value.map(|v| (name.to_string(), v)))
            .filter(|(name, _)| name != "resting_systolic_bp_mmhg")
            .collect();
        profile
    }

    fn draw_continuous(&self, rng: &mut impl Rng) -> BTreeMap<String, f64> {
        let names = &self.stats.correlation.names;
        let normals: Vec<f64> = names.iter().map(|_| StandardNormal.sample(rng)).collect();
        names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let z: f64 = (0..=i).map(|j| self.cholesky[i][j] * normals[j]).sum();
                let stats = &self.stats.continuous[name];
                let value = (stats.mean + stats.std * z).clamp(stats.p01, stats.p99);
                (name.clone(), (value * 10.0).round() / 10.0)
            })
            .collect()
    }

    fn draw_category(&self, rng: &mut impl Rng, name: &str) -> u8 {
        let frequencies = &self.stats.categorical[name];
        let mut pick: f64 = rng.random();
        for (code, probability) in frequencies {
            pick -= probability;
            if pick <= 0.0 {
                return code.parse().unwrap_or(0);
            }
        }
        frequencies
            .keys()
            .last()
            .and_then(|code| code.parse().ok())
            .unwrap_or(0)
    }

    fn closest_uci_row(&self, age: f64, male: bool, diseased: bool) -> &UciRow {
        self.uci
            .iter()
            .filter(|row| row.male == male && (!diseased || row.diseased))
            .min_by(|a, b| (a.age - age).abs().total_cmp(&(b.age - age).abs()))
            .unwrap_or(&self.uci[0])
    }
}

impl Default for ProfileSampler {
    fn default() -> Self {
        Self::new()
    }
}

fn parse_uci_row(line: &str) -> Option<UciRow> {
    let fields: Vec<Option<f64>> = line.split(',').map(|f| f.trim().parse().ok()).collect();
    if fields.len() != 14 {
        return None;
    }
    Some(UciRow {
        age: fields[0]?,
        male: fields[1]? == 1.0,
        extras: fields[2..13].to_vec(),
        diseased: fields[13]? > 0.0,
    })
}

/// Lower-triangular Cholesky factor of a symmetric positive definite matrix.
fn cholesky(matrix: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let n = matrix.len();
    let mut lower = vec![vec![0.0; n]; n];
    for i in 0..n {
        for j in 0..=i {
            let sum: f64 = (0..j).map(|k| lower[i][k] * lower[j][k]).sum();
            lower[i][j] = if i == j {
                (matrix[i][i] - sum).max(1e-12).sqrt()
            } else {
                (matrix[i][j] - sum) / lower[j][j]
            };
        }
    }
    lower
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn draws_stay_in_percentile_range() {
        let sampler = ProfileSampler::new();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for _ in 0..500 {
            let profile = sampler.draw(&mut rng, false);
            assert!(
                (39.0..=65.0).contains(&profile.age_years),
                "age {}",
                profile.age_years
            );
            assert!(profile.diastolic_bp_mmhg < profile.systolic_bp_mmhg);
            assert!((1..=3).contains(&profile.cholesterol_category));
        }
    }

    #[test]
    fn draws_reproduce_mean_age() {
        let sampler = ProfileSampler::new();
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let n = 4000;
        let mean: f64 = (0..n)
            .map(|_| sampler.draw(&mut rng, false).age_years)
            .sum::<f64>()
            / n as f64;
        let expected = sampler.stats.continuous["age_years"].mean;
        assert!(
            (mean - expected).abs() < 0.6,
            "mean age {mean} vs {expected}"
        );
    }

    #[test]
    fn cholesky_reconstructs_matrix() {
        let matrix = vec![vec![1.0, 0.5], vec![0.5, 1.0]];
        let lower = cholesky(&matrix);
        let product = lower[1][0] * lower[0][0];
        assert!((product - 0.5).abs() < 1e-12);
        assert!((lower[1][0].powi(2) + lower[1][1].powi(2) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn uci_rows_all_parse() {
        let sampler = ProfileSampler::new();
        assert_eq!(sampler.uci.len(), 303);
    }
}
