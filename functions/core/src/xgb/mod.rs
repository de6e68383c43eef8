//! XGBoost tree ensembles: loading a saved JSON model, scoring and exact TreeSHAP.
//!
//! Scoring and contributions follow XGBoost's CPU predictor step for step in `f32`, the
//! precision XGBoost itself uses, so that results match `Booster.predict` to within
//! rounding. Only numeric splits and the `binary:logistic` objective are supported;
//! [`json::parse_model`] rejects anything else with an error that names it.

pub mod baked;
pub mod features;
pub mod forest;
pub mod json;
pub mod shap;

pub use forest::{Forest, Node, TreeSpan};
