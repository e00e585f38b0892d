//! `model check`: every problem of a model, with its location.

use std::io::Write;
use std::path::PathBuf;

use super::{load_model, model_name, CliError};
use crate::model::Model;
use crate::validate::validate;

/// Options of `rdp-doctor model check [FILE]`.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// The model file; the shipped model when None.
    pub model: Option<PathBuf>,
}

/// Prints each problem as `location: message`, or a one-line summary of a valid model; fails
/// when the model does not parse or has any problem.
pub fn check_model(options: &CheckOptions, out: &mut impl Write) -> Result<(), CliError> {
    let name = model_name(options.model.as_deref());
    let model = load_model(options.model.as_ref())?;
    let problems = validate(&model);
    for problem in &problems {
        writeln!(out, "{problem}")?;
    }
    if !problems.is_empty() {
        return Err(CliError(format!(
            "{name} has {} problem(s)",
            problems.len()
        )));
    }
    writeln!(out, "{name}: ok, {}", summary(&model))?;
    Ok(())
}

fn summary(model: &Model) -> String {
    format!(
        "model version {}: {} causes, {} questions, {} checks, {} fixes, {} articles",
        model.model_version,
        model.causes.len(),
        model.questions.len(),
        model.checks.len(),
        model.fixes.len(),
        model.articles.len()
    )
}
