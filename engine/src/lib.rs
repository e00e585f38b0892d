//! The RDP Doctor diagnosis engine: pure, deterministic Rust shared by the server and the
//! WebAssembly portal.
//!
//! Start with [`Model`] (the human-editable knowledge model), [`CompiledModel`] (the validated
//! model indexed for inference) and [`Session`] (one diagnosis). `docs/ENGINE.md` explains the
//! mathematics; `docs/MODEL-FORMAT.md` the model file.

pub mod articles;
pub mod cli;
mod codes;
mod compiled;
mod inference;
pub mod learning;
mod model;
mod next_step;
mod pacing;
pub mod repair;
pub mod rng;
pub mod session;
mod simulation;
mod validate;

pub use codes::parse_code;
pub use compiled::CompiledModel;
pub use learning::{LearnedCounts, RowPrior};
pub use model::{
    AnswerInput, AnswerValue, Article, Cause, Check, CheckLocation, CheckOutcome, Fix, FixTier,
    Group, LikelihoodRow, Model, OutcomeCounts, ParseError, Question, Settings, DEFAULT_ROW,
    DONT_KNOW, FORMAT_VERSION, LEAK_CAUSE,
};
pub use pacing::ChecksArrive;
pub use session::{
    CheckResult, NextStep, RankedArticle, RankedCause, RankedFix, Session, SessionError,
    SessionState, StepKind,
};
pub use validate::{validate, Problem};
