//! When check results reach a diagnosis that is replayed or simulated: as the deployment runs
//! them (every check starts with the case and its result is in `cost` seconds later, while
//! the employee answers questions), or only when the engine asks for one.

use std::str::FromStr;

use crate::compiled::CompiledModel;
use crate::inference::Belief;

/// When the results of checks reach the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChecksArrive {
    /// As the deployment runs them: the server queues every check when the case opens, the
    /// portal records each result once it is in, and a check's `cost` (seconds) is how long
    /// its result takes. A question takes the employee its `cost`; when the engine wants a
    /// check that is not in yet, the employee waits for it.
    #[default]
    Parallel,
    /// Only when the engine asks for a check, one after the other, each taking its `cost`
    /// (how the portal used to record checks; kept for comparison).
    OnRequest,
}

impl ChecksArrive {
    /// The option's value as the command line spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ChecksArrive::Parallel => "parallel",
            ChecksArrive::OnRequest => "on-request",
        }
    }
}

impl FromStr for ChecksArrive {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "parallel" => Ok(ChecksArrive::Parallel),
            "on-request" => Ok(ChecksArrive::OnRequest),
            other => Err(format!(
                "--checks takes `parallel` or `on-request`, got `{other}`"
            )),
        }
    }
}

/// The clock of one case: seconds since it opened.
#[derive(Debug, Clone)]
pub(crate) struct CaseClock {
    arrive: ChecksArrive,
    elapsed: f64,
}

impl CaseClock {
    pub(crate) fn new(arrive: ChecksArrive) -> Self {
        CaseClock {
            arrive,
            elapsed: 0.0,
        }
    }

    /// Seconds since the case opened.
    pub(crate) fn elapsed(&self) -> f64 {
        self.elapsed
    }

    /// The checks not yet recorded in `belief` whose results are in by now, in model order.
    pub(crate) fn arrived(&self, model: &CompiledModel, belief: &Belief) -> Vec<usize> {
        if self.arrive == ChecksArrive::OnRequest {
            return Vec::new();
        }
        (0..model.observations.len())
            .filter(|&o| belief.observed[o].is_none())
            .filter(|&o| {
                model.observations[o].is_check() && model.observations[o].cost <= self.elapsed
            })
            .collect()
    }

    /// Moves the clock past `observation`, which the engine asked for: a question takes its
    /// cost; a check takes its cost when asked for on request, and otherwise is waited for
    /// until its result is in.
    pub(crate) fn take(&mut self, model: &CompiledModel, observation: usize) {
        let spec = &model.observations[observation];
        if spec.is_check() && self.arrive == ChecksArrive::Parallel {
            self.elapsed = self.elapsed.max(spec.cost);
        } else {
            self.elapsed += spec.cost;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inference::Reading;
    use crate::model::Model;

    fn shipped() -> CompiledModel {
        CompiledModel::new(Model::shipped()).unwrap()
    }

    #[test]
    fn in_parallel_checks_come_in_by_their_cost_while_questions_take_time() {
        let model = shipped();
        let mut belief = Belief::new(&model);
        let mut clock = CaseClock::new(ChecksArrive::Parallel);
        assert!(
            clock.arrived(&model, &belief).is_empty(),
            "nothing is in at the start"
        );
        let question = model.question_by_id("error_code").unwrap().0;
        clock.take(&model, question);
        let after_question = model.observations[question].cost;
        assert_eq!(clock.elapsed(), after_question);
        let arrived = clock.arrived(&model, &belief);
        assert!(!arrived.is_empty());
        for o in 0..model.observations.len() {
            let due =
                model.observations[o].is_check() && model.observations[o].cost <= after_question;
            assert_eq!(arrived.contains(&o), due, "{}", model.observation_id(o));
        }
        // A check asked for before it is in is waited for, not added on top.
        let slow = (0..model.observations.len())
            .filter(|&o| model.observations[o].is_check())
            .max_by(|a, b| {
                model.observations[*a]
                    .cost
                    .total_cmp(&model.observations[*b].cost)
            })
            .unwrap();
        clock.take(&model, slow);
        assert_eq!(clock.elapsed(), model.observations[slow].cost);
        // What is recorded no longer arrives.
        for o in clock.arrived(&model, &belief) {
            belief.observe(&model, o, Reading::NoResult);
        }
        assert!(clock.arrived(&model, &belief).is_empty());
    }

    #[test]
    fn on_request_nothing_comes_in_by_itself_and_every_step_adds_its_cost() {
        let model = shipped();
        let belief = Belief::new(&model);
        let mut clock = CaseClock::new(ChecksArrive::OnRequest);
        let check = model.check_position("tcp-connect").unwrap();
        let question = model.question_by_id("error_code").unwrap().0;
        clock.take(&model, question);
        clock.take(&model, check);
        clock.take(&model, check);
        let expected = model.observations[question].cost + 2.0 * model.observations[check].cost;
        assert_eq!(clock.elapsed(), expected);
        assert!(clock.arrived(&model, &belief).is_empty());
    }

    #[test]
    fn the_option_reads_its_two_spellings_and_refuses_others() {
        for arrive in [ChecksArrive::Parallel, ChecksArrive::OnRequest] {
            assert_eq!(arrive.as_str().parse::<ChecksArrive>(), Ok(arrive));
        }
        assert_eq!(
            "sometimes".parse::<ChecksArrive>(),
            Err("--checks takes `parallel` or `on-request`, got `sometimes`".to_owned())
        );
    }
}
