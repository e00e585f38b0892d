//! Simulated cases drawn from a model's own parameters, for the benchmark.

use crate::compiled::CompiledModel;
use crate::inference::Reading;
use crate::rng::Rng;

/// One simulated case: its true cause and what every question and check would yield.
#[derive(Debug, Clone)]
pub(crate) struct SimulatedCase {
    pub(crate) cause: usize,
    /// Per observation of the model that drew it.
    pub(crate) readings: Vec<Reading>,
}

/// Draws a cause from the priors, then every reading from that cause's likelihoods. The
/// compiled likelihoods already carry the slip rate, so drawing from them is the same
/// distribution as drawing the intended answer and then slipping with probability ε to one of
/// the other answers at random. "I don't know" and checks that fail to run come first, at
/// their own rates.
pub(crate) fn sample_case(truth: &CompiledModel, rng: &mut Rng) -> SimulatedCase {
    let cause = rng.pick_weighted(&truth.prior);
    let readings = truth
        .observations
        .iter()
        .map(|observation| {
            if rng.uniform() < observation.no_result {
                Reading::NoResult
            } else {
                let weights: Vec<f64> = observation
                    .likelihood
                    .iter()
                    .map(|row| row[cause])
                    .collect();
                Reading::Value(rng.pick_weighted(&weights))
            }
        })
        .collect();
    SimulatedCase { cause, readings }
}

/// The id of what `truth` yielded for an observation, if anything.
pub(crate) fn reading_id(
    truth: &CompiledModel,
    observation: usize,
    reading: Reading,
) -> Option<&str> {
    match reading {
        Reading::Value(value) => Some(&truth.observations[observation].value_ids[value]),
        Reading::NoResult => None,
    }
}

/// The same reading as another model with the same questions and checks sees it (a learned
/// model may treat "I don't know" differently).
pub(crate) fn translate(
    engine: &CompiledModel,
    truth: &CompiledModel,
    observation: usize,
    reading: Reading,
) -> Reading {
    reading_id(truth, observation, reading)
        .and_then(|id| {
            engine.observations[observation]
                .value_ids
                .iter()
                .position(|v| v == id)
        })
        .map_or(Reading::NoResult, Reading::Value)
}
