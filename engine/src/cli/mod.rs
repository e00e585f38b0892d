//! The `rdp-doctor model check|replay|simulate` commands as library functions: the server's
//! CLI parses arguments into these option structs and passes its stdin and stdout.

mod check;
mod replay;
mod simulate;

use std::path::{Path, PathBuf};

pub use check::{check_model, CheckOptions};
pub use replay::{replay, ReplayOptions};
pub use simulate::{simulate, SimulateOptions};

use crate::compiled::CompiledModel;
use crate::model::Model;

/// Why a command failed, in one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError(pub String);

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CliError {}

impl From<std::io::Error> for CliError {
    fn from(error: std::io::Error) -> Self {
        CliError(format!("cannot write the output: {error}"))
    }
}

/// How a command names its model in messages.
fn model_name(path: Option<&Path>) -> String {
    path.map_or_else(
        || "the shipped model".to_owned(),
        |p| p.display().to_string(),
    )
}

/// Reads and parses the model at `path`, or the shipped one.
fn load_model(path: Option<&PathBuf>) -> Result<Model, CliError> {
    let name = model_name(path.map(PathBuf::as_path));
    let text = match path {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| CliError(format!("cannot read {name}: {e}")))?,
        None => Model::shipped_toml().to_owned(),
    };
    Model::from_toml(&text).map_err(|e| CliError(format!("{name} does not parse: {e}")))
}

/// Compiles a model, or says why not in one line.
fn compile(model: Model, name: &str) -> Result<CompiledModel, CliError> {
    CompiledModel::new(model).map_err(|problems| {
        CliError(format!(
            "{name} has {} problem(s), first {}; run `rdp-doctor model check` for all",
            problems.len(),
            problems[0]
        ))
    })
}
