//! `model simulate`: the benchmark. Cases are drawn from the model's own parameters (or the
//! engine first learns its parameters from simulated resolved cases), and the engine is
//! measured against the lower bound on questions, fixed checklists, the exact repair optimum,
//! simpler repair orders, and for calibration.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

use super::{compile, load_model, model_name, CliError};
use crate::compiled::{CompiledModel, ObservationSource};
use crate::inference::{entropy_bits, normalize, without_slip, Belief, Reading};
use crate::learning::{LearnedCounts, RowPrior};
use crate::model::{LikelihoodRow, Model, DEFAULT_ROW, DONT_KNOW};
use crate::next_step::{advise, information_gains, Advice};
use crate::pacing::{CaseClock, ChecksArrive};
use crate::repair::{
    cheapest_first, expected_cost_of_repair, most_likely_first, most_likely_first_until,
    optimal_order, updating_p_over_c,
};
use crate::rng::Rng;
use crate::session::{CheckResult, Session, SessionError};
use crate::simulation::{reading_id, sample_case, translate, SimulatedCase};

/// Options of `rdp-doctor model simulate [--model FILE] --n N --seed S [--slip E] [--dont-know D]
/// [--learn-from M] [--never-run CHECK,...] [--checks parallel|on-request] [--json]`.
#[derive(Debug, Clone)]
pub struct SimulateOptions {
    /// The model file; the shipped model when None.
    pub model: Option<PathBuf>,
    /// Simulated cases to measure.
    pub n: usize,
    /// Seed of every random draw.
    pub seed: u64,
    /// Slip rate of simulated answers (and of the engine), overriding the model's.
    pub slip: Option<f64>,
    /// "I don't know" rate of simulated answers (and of the engine), overriding the model's.
    pub dont_know: Option<f64>,
    /// Learn the engine's parameters from this many simulated resolved cases first, starting
    /// from equal priors and pooled answer frequencies, instead of handing it the true ones.
    pub learn_from: Option<usize>,
    /// Checks of the model that never run: nothing in the deployment performs them yet, so
    /// every case (the training cases too) takes them as not run. The same cases are drawn
    /// as without, so the two runs compare case for case.
    pub never_run: Vec<String>,
    /// When check results reach the engine: as the deployment runs them (in parallel from the
    /// case's start), or only when the engine asks for one.
    pub checks: ChecksArrive,
    /// One JSON object instead of the table.
    pub json: bool,
}

impl Default for SimulateOptions {
    fn default() -> Self {
        SimulateOptions {
            model: None,
            n: 1000,
            seed: 1,
            slip: None,
            dont_know: None,
            learn_from: None,
            never_run: Vec::new(),
            checks: ChecksArrive::Parallel,
            json: false,
        }
    }
}

/// Fixes less likely than this to resolve the case are left out of the instance on which the
/// proposed order is compared with the exact optimum.
const RELEVANT_FIX: f64 = 0.01;
/// The largest instance (relevant fixes plus escalation) compared with the exact optimum.
const OPTIMUM_LIMIT: usize = 12;
/// The cutoffs tried for most-likely-first deciding by itself when to escalate: it tries the
/// next most likely fix while that fix has at least this chance of resolving the case, given
/// that the earlier ones failed. The benchmark compares with the cutoff that suits it best.
const MOST_LIKELY_CUTOFFS: [f64; 10] = [0.0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5];
/// Calibration bins, as in the design brief.
const CALIBRATION_BINS: usize = 15;

/// The benchmark's figures; the field names are the `--json` keys.
#[derive(Debug, Serialize)]
struct Report {
    model_version: String,
    cases: usize,
    /// The checks taken as never run (`--never-run`), in model order.
    never_run: Vec<String>,
    /// When check results reached the engine: `parallel` or `on-request` (`--checks`).
    checks: &'static str,
    seed: u64,
    slip: f64,
    dont_know: f64,
    learned_from: Option<usize>,
    stop_threshold: f64,
    top1: f64,
    top3: f64,
    reached_stop: f64,
    /// Top-1 accuracy among the cases that reached the stop threshold.
    top1_at_stop: f64,
    /// The model's own ceiling: top-1 and top-3 accuracy, and the share of cases reaching the
    /// stop threshold, had every question and check of the case been answered. No order of
    /// asking can do better on the same cases; the gap to it is what the engine's choice of
    /// questions and its stop cost.
    top1_all_asked: f64,
    top3_all_asked: f64,
    reached_stop_all_asked: f64,
    /// Questions and checks the engine asked for: every step counts, as the bound assumes. A
    /// check that came in by itself (`--checks parallel`) is not a step; one the employee
    /// waited for is.
    mean_questions: f64,
    /// The same over the cases that reached the stop threshold: the steps it took to reach it.
    mean_questions_reaching_stop: f64,
    mean_employee_questions: f64,
    mean_checks: f64,
    /// Checks recorded as their results came in, without the engine asking (parallel only).
    mean_checks_in: f64,
    /// `(H0 - H_stop)/(1 - h2(ε))`: a lower bound on the steps when every bit comes from an
    /// answer the engine asked for. Checks that come in by themselves supply bits unasked.
    questions_lower_bound: f64,
    prior_entropy_bits: f64,
    stop_entropy_bits: f64,
    checklist_questions: f64,
    arbitrary_questions: f64,
    ecr_mean_seconds: f64,
    /// Seconds from the case's start until the engine stopped asking: the questions' `cost`,
    /// and the checks' as `--checks` says (waited for in parallel, added up on request).
    asking_seconds: f64,
    /// Asking plus the ECR of the proposed fix order: the expected time of the whole case, the
    /// quantity ECO weighs against ECR.
    total_expected_seconds: f64,
    ecr_gap_to_optimum: f64,
    optimum_coverage: f64,
    /// Against most-likely-first over the fixes the engine proposes: only the order differs
    /// (most-likely-first is handed the engine's cost-based choice of when to escalate).
    ecr_saving_vs_most_likely: f64,
    /// Against most-likely-first deciding by itself when to escalate, without costs: the next
    /// most likely fix while it has at least `most_likely_cutoff` chance of resolving the case,
    /// then escalation; the cutoff (of `MOST_LIKELY_CUTOFFS`) with the lowest mean ECR on these
    /// very cases, so the baseline gets its best setting in hindsight.
    ecr_saving_vs_most_likely_cutoff: f64,
    most_likely_cutoff: f64,
    /// The same, most-likely-first leaving out every fix that costs at least as much as
    /// escalation (which resolves everything), again with its best cutoff.
    ecr_saving_vs_most_likely_undominated: f64,
    most_likely_cutoff_undominated: f64,
    /// Against most-likely-first trying every fix before escalating.
    ecr_saving_vs_most_likely_every_fix: f64,
    ecr_saving_vs_cheapest: f64,
    ece: f64,
    brier: f64,
    log_loss: f64,
    step_p50_us: Option<f64>,
    step_p99_us: Option<f64>,
    /// Mean entropy of the causes removed per question or check asked, in bits, the checks that
    /// came in by themselves included (the bound assumes 1 - h2(ε) per answer).
    bits_per_step: f64,
    /// The part of the mean ECR spent on escalation after every proposed fix failed: the same
    /// for every order of the same fixes.
    ecr_escalation_seconds: f64,
    /// Against most-likely-first over the same fixes, counting only the fix attempts: the
    /// escalation after every fix failed costs both orders the same.
    fix_attempt_saving_vs_most_likely: f64,
    /// In the learned mode, the row prior fitted by empirical Bayes.
    learned_row_prior: Option<RowPrior>,
    /// The same figures per true cause, worst top-1 first: where a knowledge engineer should
    /// look when the model's accuracy falls short.
    by_cause: Vec<CauseFigures>,
}

/// The benchmark's figures for the cases of one true cause.
#[derive(Debug, Serialize)]
struct CauseFigures {
    cause: String,
    /// Share of the simulated cases drawn with this cause.
    share: f64,
    top1: f64,
    top1_all_asked: f64,
    reached_stop: f64,
    mean_questions: f64,
    /// The cause most often ranked first instead, with its share of this cause's cases.
    mistaken_for: Option<(String, f64)>,
    /// The same had every question and check been answered: a confusion the model itself
    /// cannot resolve, which only a more discriminating question or check can.
    mistaken_for_all_asked: Option<(String, f64)>,
}

/// Counts for the cases of one true cause.
#[derive(Debug, Default, Clone)]
struct CauseTally {
    cases: usize,
    top1: usize,
    top1_all_asked: usize,
    reached_stop: usize,
    steps: usize,
    /// Per wrongly top-ranked cause, how many times.
    mistaken_for: BTreeMap<usize, usize>,
    mistaken_for_all_asked: BTreeMap<usize, usize>,
}

/// Runs the benchmark and prints one table (or one JSON object with `json`).
pub fn simulate(options: &SimulateOptions, out: &mut impl Write) -> Result<(), CliError> {
    if options.n == 0 {
        return Err(CliError("--n must be at least 1".to_owned()));
    }
    let name = model_name(options.model.as_deref());
    let mut document = load_model(options.model.as_ref())?;
    if let Some(slip) = options.slip {
        document.settings.slip = slip;
    }
    if let Some(dont_know) = options.dont_know {
        document.settings.dont_know_rate = dont_know;
    }
    let truth = compile(document.clone(), &name)?;
    let never_run = never_run_positions(&truth, &options.never_run)?;
    let mut rng = Rng::seeded(options.seed);
    let (engine, row_prior) = match options.learn_from {
        Some(cases) => learned_engine(&document, &truth, &never_run, cases, &mut rng)?,
        None => (truth.clone(), None),
    };
    let mut report = measure(&truth, &engine, &never_run, options, &mut rng);
    report.learned_row_prior = row_prior;
    if options.json {
        serde_json::to_writer(&mut *out, &report)
            .map_err(|e| CliError(format!("cannot write the report: {e}")))?;
        writeln!(out)?;
    } else {
        write_table(&report, out)?;
    }
    Ok(())
}

/// The engine after learning from `cases` simulated resolved cases in which every question was
/// answered and every check attempted. It never sees the true parameters: it starts from equal
/// priors and pooled answer frequencies, and learns every likelihood row under a [`RowPrior`]
/// fitted to the same counts by empirical Bayes (with no expert behind the pooled rows, the
/// expert's `likelihood_strength` says nothing about how far to trust them); fix
/// probabilities and `fails_to_run` weigh `settings.likelihood_strength` as usual.
fn learned_engine(
    document: &Model,
    truth: &CompiledModel,
    never_run: &[usize],
    cases: usize,
    rng: &mut Rng,
) -> Result<(CompiledModel, Option<RowPrior>), CliError> {
    let mut counts = LearnedCounts::default();
    for _ in 0..cases {
        let case = draw_case(truth, never_run, rng);
        let session = resolved_session(truth, &case)
            .map_err(|e| CliError(format!("cannot record a simulated case: {e}")))?;
        counts
            .add_case(truth, &session)
            .map_err(|e| CliError(format!("cannot learn from a simulated case: {e}")))?;
    }
    let start = flattened(document, &counts);
    let row_prior = counts.fit_row_prior(&start);
    let learned = match &row_prior {
        Some(prior) => start.with_learned_rows(&counts, prior),
        None => start.with_learned(&counts),
    };
    let engine = compile(learned, "the learned model")
        .map_err(|e| CliError(format!("{e} (learn from more cases)")))?;
    Ok((engine, row_prior))
}

fn resolved_session(truth: &CompiledModel, case: &SimulatedCase) -> Result<Session, SessionError> {
    let mut session = Session::new(0);
    for (observation, reading) in case.readings.iter().enumerate() {
        let id = truth.observation_id(observation);
        let value = reading_id(truth, observation, *reading);
        match truth.observations[observation].source {
            ObservationSource::Question(_) => {
                session.answer(truth, id, value.unwrap_or(DONT_KNOW))?
            }
            ObservationSource::Check(_) => {
                let result =
                    value.map_or(CheckResult::NotRun, |v| CheckResult::Outcome(v.to_owned()));
                session.record_check(truth, id, result)?;
            }
        }
    }
    session.close(truth, Some(truth.cause_id(case.cause)))?;
    Ok(session)
}

/// The model's structure with everything learnable made flat: equal priors, and every
/// likelihood row the pooled answer frequencies of the training cases (empirical Bayes: with no
/// expert, the best guess for a cause is what everybody answers).
fn flattened(document: &Model, counts: &LearnedCounts) -> Model {
    let mut flat = document.clone();
    flat.causes.iter_mut().for_each(|c| c.prior = 1.0);
    for question in &mut flat.questions {
        let values: Vec<&str> = question
            .informative_answers()
            .map(|a| a.id.as_str())
            .collect();
        let row = pooled_row(
            counts.answers.get(&question.id),
            &values,
            document.settings.slip,
        );
        question.likelihood = [(DEFAULT_ROW.to_owned(), row)].into_iter().collect();
    }
    for check in &mut flat.checks {
        let values: Vec<&str> = check.outcomes.iter().map(|o| o.id.as_str()).collect();
        let row = pooled_row(counts.checks.get(&check.id), &values, 0.0);
        check.likelihood = [(DEFAULT_ROW.to_owned(), row)].into_iter().collect();
    }
    flat
}

/// The frequencies of `values` over every cause's counts, as a likelihood row. Answers are
/// counted as given, so the slip is taken out (the engine adds it again) and the row is kept
/// inside (0, 1).
fn pooled_row(
    by_cause: Option<&BTreeMap<String, BTreeMap<String, f64>>>,
    values: &[&str],
    slip: f64,
) -> LikelihoodRow {
    // Half a count each keeps a value nobody gave inside (0, 1).
    let mut totals = vec![0.5; values.len()];
    for counts in by_cause.into_iter().flat_map(BTreeMap::values) {
        for (value, total) in values.iter().zip(&mut totals) {
            *total += counts.get(*value).copied().unwrap_or(0.0);
        }
    }
    let sum: f64 = totals.iter().sum();
    let given: Vec<f64> = totals.iter().map(|t| t / sum).collect();
    let intended: Vec<f64> = without_slip(&given, slip)
        .into_iter()
        .map(|p| p.clamp(POOLED_BOUNDS.0, POOLED_BOUNDS.1))
        .collect();
    let total: f64 = intended.iter().sum();
    // The last value is left out and takes the remainder, so rounding never breaks the sum.
    values[..values.len() - 1]
        .iter()
        .zip(&intended)
        .map(|(v, p)| ((*v).to_owned(), p / total))
        .collect()
}

/// Bounds of a pooled row after the slip is taken out: sampling noise can leave a value rarer
/// than the slip alone would make it.
const POOLED_BOUNDS: (f64, f64) = (0.01, 0.99);

#[derive(Default)]
struct Tally {
    top1: usize,
    top3: usize,
    reached_stop: usize,
    top1_at_stop: usize,
    top1_all_asked: usize,
    top3_all_asked: usize,
    reached_stop_all_asked: usize,
    /// Steps taken by the cases that reached the stop threshold.
    steps_reaching_stop: usize,
    questions: usize,
    checks: usize,
    checks_in: usize,
    checklist_questions: usize,
    arbitrary_questions: usize,
    ecr_engine: f64,
    ecr_most_likely: f64,
    ecr_most_likely_every_fix: f64,
    ecr_most_likely_cutoff: [f64; MOST_LIKELY_CUTOFFS.len()],
    ecr_most_likely_undominated: [f64; MOST_LIKELY_CUTOFFS.len()],
    /// Summed seconds until the engine stopped asking.
    asking_seconds: f64,
    ecr_cheapest: f64,
    ecr_escalation: f64,
    entropy_removed: f64,
    optimum_gaps: Vec<f64>,
    brier: f64,
    log_loss: f64,
    /// Per confidence bin: summed top-1 confidence and number of correct top-1 answers.
    bins: Vec<(f64, usize)>,
    step_micros: Vec<f64>,
    by_cause: Vec<CauseTally>,
}

/// The observation positions of the checks `--never-run` names; an id that is not a check of
/// the model is refused by name.
fn never_run_positions(truth: &CompiledModel, ids: &[String]) -> Result<Vec<usize>, CliError> {
    ids.iter()
        .map(|id| {
            truth.check_position(id).ok_or_else(|| {
                let checks: Vec<&str> =
                    truth.model().checks.iter().map(|c| c.id.as_str()).collect();
                CliError(format!(
                    "--never-run: `{id}` is not a check of the model (its checks: {})",
                    checks.join(", ")
                ))
            })
        })
        .collect()
}

/// A simulated case in which the checks at `never_run` did not run. Every reading is drawn
/// first, so the random stream, and with it every case, is the same as without.
fn draw_case(truth: &CompiledModel, never_run: &[usize], rng: &mut Rng) -> SimulatedCase {
    let mut case = sample_case(truth, rng);
    for &observation in never_run {
        case.readings[observation] = Reading::NoResult;
    }
    case
}

fn measure(
    truth: &CompiledModel,
    engine: &CompiledModel,
    never_run: &[usize],
    options: &SimulateOptions,
    rng: &mut Rng,
) -> Report {
    let settings = &engine.model().settings;
    let threshold = settings.stop_threshold;
    let intake: Vec<usize> = (0..engine.observations.len())
        .filter(|&o| engine.observations[o].intake)
        .collect();
    let rest: Vec<usize> = (0..engine.observations.len())
        .filter(|&o| !engine.observations[o].intake)
        .collect();
    let gains = information_gains(engine, &Belief::new(engine));
    let mut checklist = rest.clone();
    checklist.sort_by(|a, b| gains[*b].total_cmp(&gains[*a]));
    let mut arbitrary = rest;
    rng.shuffle(&mut arbitrary);
    let checklist: Vec<usize> = intake.iter().chain(&checklist).copied().collect();
    let arbitrary: Vec<usize> = intake.iter().chain(&arbitrary).copied().collect();

    let mut tally = Tally {
        bins: vec![(0.0, 0); CALIBRATION_BINS],
        by_cause: vec![CauseTally::default(); truth.cause_count()],
        ..Tally::default()
    };
    for _ in 0..options.n {
        let case = draw_case(truth, never_run, rng);
        let readings: Vec<Reading> = (0..case.readings.len())
            .map(|o| translate(engine, truth, o, case.readings[o]))
            .collect();
        let case = Case {
            readings: &readings,
            cause: case.cause,
            checks: options.checks,
        };
        run_adaptive(engine, &case, threshold, &mut tally);
        score_all_asked(engine, &readings, case.cause, threshold, &mut tally);
        tally.checklist_questions += run_fixed(engine, &case, &checklist, threshold);
        tally.arbitrary_questions += run_fixed(engine, &case, &arbitrary, threshold);
    }

    let n = options.n as f64;
    let causes = truth.cause_count() as f64;
    let prior_entropy = entropy_bits(&truth.prior);
    let stop_entropy = -threshold * threshold.log2()
        - (1.0 - threshold) * ((1.0 - threshold) / (causes - 1.0)).log2();
    let slip = truth.model().settings.slip;
    let lower_bound = (prior_entropy - stop_entropy) / (1.0 - binary_entropy(slip));
    let ece = tally
        .bins
        .iter()
        .map(|(confidence, correct)| (confidence - *correct as f64).abs() / n)
        .sum();
    tally.step_micros.sort_by(f64::total_cmp);
    let (cutoff, ecr_best_cutoff) = best_cutoff(&tally.ecr_most_likely_cutoff);
    let (best_cutoff_undominated, ecr_best_undominated) =
        best_cutoff(&tally.ecr_most_likely_undominated);
    Report {
        model_version: engine.model().model_version.clone(),
        cases: options.n,
        never_run: (0..truth.observations.len())
            .filter(|o| never_run.contains(o))
            .map(|o| truth.observation_id(o).to_owned())
            .collect(),
        checks: options.checks.as_str(),
        seed: options.seed,
        slip,
        dont_know: truth.model().settings.dont_know_rate,
        learned_from: options.learn_from,
        stop_threshold: threshold,
        top1: tally.top1 as f64 / n,
        top3: tally.top3 as f64 / n,
        reached_stop: tally.reached_stop as f64 / n,
        top1_at_stop: tally.top1_at_stop as f64 / (tally.reached_stop as f64).max(1.0),
        top1_all_asked: tally.top1_all_asked as f64 / n,
        top3_all_asked: tally.top3_all_asked as f64 / n,
        reached_stop_all_asked: tally.reached_stop_all_asked as f64 / n,
        mean_questions: (tally.questions + tally.checks) as f64 / n,
        mean_questions_reaching_stop: tally.steps_reaching_stop as f64
            / (tally.reached_stop as f64).max(1.0),
        mean_employee_questions: tally.questions as f64 / n,
        mean_checks: tally.checks as f64 / n,
        mean_checks_in: tally.checks_in as f64 / n,
        questions_lower_bound: lower_bound,
        prior_entropy_bits: prior_entropy,
        stop_entropy_bits: stop_entropy,
        checklist_questions: tally.checklist_questions as f64 / n,
        arbitrary_questions: tally.arbitrary_questions as f64 / n,
        ecr_mean_seconds: tally.ecr_engine / n,
        asking_seconds: tally.asking_seconds / n,
        total_expected_seconds: (tally.asking_seconds + tally.ecr_engine) / n,
        ecr_gap_to_optimum: mean(&tally.optimum_gaps),
        optimum_coverage: tally.optimum_gaps.len() as f64 / n,
        ecr_saving_vs_most_likely: 1.0 - tally.ecr_engine / tally.ecr_most_likely,
        ecr_saving_vs_most_likely_every_fix: 1.0
            - tally.ecr_engine / tally.ecr_most_likely_every_fix,
        ecr_saving_vs_most_likely_cutoff: 1.0 - tally.ecr_engine / ecr_best_cutoff,
        most_likely_cutoff: cutoff,
        ecr_saving_vs_most_likely_undominated: 1.0 - tally.ecr_engine / ecr_best_undominated,
        most_likely_cutoff_undominated: best_cutoff_undominated,
        ecr_saving_vs_cheapest: 1.0 - tally.ecr_engine / tally.ecr_cheapest,
        ece,
        brier: tally.brier / n,
        log_loss: tally.log_loss / n,
        step_p50_us: percentile(&tally.step_micros, 0.50),
        step_p99_us: percentile(&tally.step_micros, 0.99),
        bits_per_step: tally.entropy_removed / ((tally.questions + tally.checks) as f64).max(1.0),
        ecr_escalation_seconds: tally.ecr_escalation / n,
        fix_attempt_saving_vs_most_likely: 1.0
            - (tally.ecr_engine - tally.ecr_escalation)
                / (tally.ecr_most_likely - tally.ecr_escalation),
        learned_row_prior: None,
        by_cause: cause_figures(truth, &tally.by_cause, options.n),
    }
}

/// Per-cause figures, worst top-1 first.
fn cause_figures(truth: &CompiledModel, by_cause: &[CauseTally], n: usize) -> Vec<CauseFigures> {
    let mut figures: Vec<CauseFigures> = by_cause
        .iter()
        .enumerate()
        .filter(|(_, t)| t.cases > 0)
        .map(|(cause, t)| {
            let cases = t.cases as f64;
            let most_often = |mistaken: &BTreeMap<usize, usize>| {
                mistaken
                    .iter()
                    .max_by_key(|(other, count)| (**count, std::cmp::Reverse(**other)))
                    .map(|(other, count)| {
                        (truth.cause_id(*other).to_owned(), *count as f64 / cases)
                    })
            };
            CauseFigures {
                cause: truth.cause_id(cause).to_owned(),
                share: cases / n as f64,
                top1: t.top1 as f64 / cases,
                top1_all_asked: t.top1_all_asked as f64 / cases,
                reached_stop: t.reached_stop as f64 / cases,
                mean_questions: t.steps as f64 / cases,
                mistaken_for: most_often(&t.mistaken_for),
                mistaken_for_all_asked: most_often(&t.mistaken_for_all_asked),
            }
        })
        .collect();
    figures.sort_by(|a, b| a.top1.total_cmp(&b.top1));
    figures
}

/// One simulated case as the engine meets it.
struct Case<'a> {
    /// Per observation of the engine's model: what it would yield.
    readings: &'a [Reading],
    cause: usize,
    checks: ChecksArrive,
}

/// Records in `belief` the checks whose results are in by `clock`; returns how many.
fn record_arrived(
    engine: &CompiledModel,
    case: &Case,
    clock: &CaseClock,
    belief: &mut Belief,
) -> usize {
    let arrived = clock.arrived(engine, belief);
    for &o in &arrived {
        belief.observe(engine, o, case.readings[o]);
    }
    arrived.len()
}

/// Asks what the engine chooses until it stops, recording checks as they come in; scores
/// the final posterior and fix order.
fn run_adaptive(engine: &CompiledModel, case: &Case, threshold: f64, tally: &mut Tally) {
    let (readings, cause) = (case.readings, case.cause);
    let mut belief = Belief::new(engine);
    let mut clock = CaseClock::new(case.checks);
    let mut steps = 0;
    let advice = loop {
        tally.checks_in += record_arrived(engine, case, &clock, &mut belief);
        let (advice, micros) = timed(|| advise(engine, &belief));
        tally.step_micros.extend(micros);
        match advice.next {
            Some(next) => {
                steps += 1;
                clock.take(engine, next.observation);
                belief.observe(engine, next.observation, readings[next.observation]);
                match engine.observations[next.observation].source {
                    ObservationSource::Question(_) => tally.questions += 1,
                    ObservationSource::Check(_) => tally.checks += 1,
                }
            }
            None => break advice,
        }
    };
    tally.asking_seconds += clock.elapsed();
    let posterior = &advice.posterior;
    let ranked = causes_ranked(posterior);
    let confidence = posterior[ranked[0]];
    tally.top1 += usize::from(ranked[0] == cause);
    tally.top3 += usize::from(ranked[..3].contains(&cause));
    tally.reached_stop += usize::from(confidence >= threshold);
    let of_cause = &mut tally.by_cause[cause];
    of_cause.cases += 1;
    of_cause.steps += steps;
    of_cause.reached_stop += usize::from(confidence >= threshold);
    if ranked[0] == cause {
        of_cause.top1 += 1;
    } else {
        *of_cause.mistaken_for.entry(ranked[0]).or_default() += 1;
    }
    if confidence >= threshold {
        tally.steps_reaching_stop += steps;
    }
    tally.top1_at_stop += usize::from(confidence >= threshold && ranked[0] == cause);
    let bin = ((confidence * CALIBRATION_BINS as f64) as usize).min(CALIBRATION_BINS - 1);
    tally.bins[bin].0 += confidence;
    tally.bins[bin].1 += usize::from(ranked[0] == cause);
    tally.brier += posterior
        .iter()
        .enumerate()
        .map(|(c, p)| (p - if c == cause { 1.0 } else { 0.0 }).powi(2))
        .sum::<f64>();
    tally.log_loss -= posterior[cause].ln();
    tally.entropy_removed += entropy_bits(&engine.prior) - entropy_bits(posterior);
    score_repairs(engine, &advice, tally);
}

/// Cause indices, most probable first.
fn causes_ranked(posterior: &[f64]) -> Vec<usize> {
    let mut ranked: Vec<usize> = (0..posterior.len()).collect();
    ranked.sort_by(|a, b| posterior[*b].total_cmp(&posterior[*a]));
    ranked
}

/// The posterior had every question and check of the case been answered: the ceiling that
/// no choice of what to ask can pass.
fn score_all_asked(
    engine: &CompiledModel,
    readings: &[Reading],
    cause: usize,
    threshold: f64,
    tally: &mut Tally,
) {
    let mut belief = Belief::new(engine);
    for (observation, reading) in readings.iter().enumerate() {
        belief.observe(engine, observation, *reading);
    }
    let mut posterior = Vec::new();
    normalize(&belief.log_posterior(engine), &mut posterior);
    let ranked = causes_ranked(&posterior);
    tally.top1_all_asked += usize::from(ranked[0] == cause);
    let of_cause = &mut tally.by_cause[cause];
    if ranked[0] == cause {
        of_cause.top1_all_asked += 1;
    } else {
        *of_cause
            .mistaken_for_all_asked
            .entry(ranked[0])
            .or_default() += 1;
    }
    tally.top3_all_asked += usize::from(ranked[..3].contains(&cause));
    tally.reached_stop_all_asked += usize::from(posterior[ranked[0]] >= threshold);
}

/// ECR of the engine's order against most-likely-first and cheapest-first over the same fixes
/// (so that only the order differs, not when to escalate) and, where the instance is small
/// enough, against the exact optimum over every fix likely enough to matter.
fn score_repairs(engine: &CompiledModel, advice: &Advice, tally: &mut Tally) {
    let actions = &engine.repair_actions;
    let posterior = &advice.posterior;
    let escalation = engine.fix_count();
    let proposed = &advice.fix_order;
    let with_escalation = |mut order: Vec<usize>| {
        order.push(escalation);
        order
    };
    tally.ecr_engine += advice.expected_cost_of_repair;
    tally.ecr_escalation +=
        advice.expected_cost_of_repair - expected_cost_of_repair(actions, proposed, posterior);
    tally.ecr_most_likely += expected_cost_of_repair(
        actions,
        &with_escalation(most_likely_first(actions, proposed, posterior)),
        posterior,
    );
    let every_fix: Vec<usize> = (0..escalation).collect();
    tally.ecr_most_likely_every_fix += expected_cost_of_repair(
        actions,
        &with_escalation(most_likely_first(actions, &every_fix, posterior)),
        posterior,
    );
    let undominated: Vec<usize> = every_fix
        .iter()
        .copied()
        .filter(|&f| actions[f].cost < actions[escalation].cost)
        .collect();
    for (fixes, sums) in [
        (&every_fix, &mut tally.ecr_most_likely_cutoff),
        (&undominated, &mut tally.ecr_most_likely_undominated),
    ] {
        for (cutoff, ecr) in MOST_LIKELY_CUTOFFS.iter().zip(sums.iter_mut()) {
            *ecr += expected_cost_of_repair(
                actions,
                &with_escalation(most_likely_first_until(actions, fixes, posterior, *cutoff)),
                posterior,
            );
        }
    }
    tally.ecr_cheapest += expected_cost_of_repair(
        actions,
        &with_escalation(cheapest_first(actions, proposed, posterior)),
        posterior,
    );
    let relevant: Vec<_> = every_fix
        .iter()
        .filter(|&&f| actions[f].resolved_mass(posterior) >= RELEVANT_FIX)
        .chain([&escalation])
        .map(|&f| actions[f].clone())
        .collect();
    if relevant.len() <= OPTIMUM_LIMIT {
        if let Ok(optimum) = optimal_order(&relevant, posterior) {
            let proposed = updating_p_over_c(&relevant, posterior);
            tally
                .optimum_gaps
                .push(proposed.expected_cost / optimum.expected_cost - 1.0);
        }
    }
}

/// Asks in a fixed order (the intake first) until the top cause reaches the threshold,
/// recording checks as they come in as the engine does; returns the steps asked.
fn run_fixed(engine: &CompiledModel, case: &Case, order: &[usize], threshold: f64) -> usize {
    let mut belief = Belief::new(engine);
    let mut clock = CaseClock::new(case.checks);
    let mut asked = 0;
    for &observation in order {
        record_arrived(engine, case, &clock, &mut belief);
        if belief.observed[observation].is_some() {
            continue;
        }
        let top = belief.posterior(engine).into_iter().fold(0.0, f64::max);
        if !engine.observations[observation].intake && top >= threshold {
            break;
        }
        clock.take(engine, observation);
        belief.observe(engine, observation, case.readings[observation]);
        asked += 1;
    }
    asked
}

/// Runs `step` and measures it in microseconds where the platform has a clock without
/// JavaScript; wasm32-unknown-unknown has none, and there the benchmark reports no latency.
#[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
fn timed<T>(step: impl FnOnce() -> T) -> (T, Option<f64>) {
    let start = std::time::Instant::now();
    let value = step();
    (value, Some(start.elapsed().as_secs_f64() * 1e6))
}

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
fn timed<T>(step: impl FnOnce() -> T) -> (T, Option<f64>) {
    (step(), None)
}

/// The cutoff of [`MOST_LIKELY_CUTOFFS`] with the lowest summed ECR, and that ECR.
fn best_cutoff(summed_ecr: &[f64; MOST_LIKELY_CUTOFFS.len()]) -> (f64, f64) {
    MOST_LIKELY_CUTOFFS
        .iter()
        .zip(summed_ecr)
        .fold((0.0, f64::INFINITY), |best, (cutoff, ecr)| {
            if *ecr < best.1 {
                (*cutoff, *ecr)
            } else {
                best
            }
        })
}

fn binary_entropy(p: f64) -> f64 {
    entropy_bits(&[p, 1.0 - p])
}

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let rank = ((q * sorted.len() as f64).ceil() as usize)
        .saturating_sub(1)
        .min(last);
    Some(sorted[rank])
}

const TOP1_TARGET: f64 = 0.93;
const TOP3_TARGET: f64 = 0.98;
const QUESTIONS_OVER_BOUND_TARGET: f64 = 1.3;
const FEWER_THAN_CHECKLIST_TARGET: f64 = 0.25;
const GAP_TO_OPTIMUM_TARGET: f64 = 0.005;
const SAVING_VS_MOST_LIKELY_TARGET: f64 = 0.08;
const ECE_TARGET: f64 = 0.03;
const STEP_P99_TARGET_US: f64 = 1000.0;

fn write_table(report: &Report, out: &mut impl Write) -> Result<(), CliError> {
    let verdict = |met: bool| if met { "met" } else { "NOT MET" };
    let parallel = report.checks == ChecksArrive::Parallel.as_str();
    let parameters = match (report.learned_from, &report.learned_row_prior) {
        (Some(cases), Some(prior)) => format!(
            "parameters learned from {cases} simulated resolved cases (rows under a fitted prior: \
             {:.0}% near the start at {:.1} pseudo-counts, the rest at {:.2})",
            100.0 * prior.near_share,
            prior.near,
            prior.far
        ),
        (Some(cases), None) => format!("parameters learned from {cases} simulated resolved cases"),
        (None, _) => "the model's own parameters".to_owned(),
    };
    let parameters = if report.never_run.is_empty() {
        parameters
    } else {
        format!(
            "{parameters}; checks that never run: {}",
            report.never_run.join(", ")
        )
    };
    writeln!(
        out,
        "RDP Doctor engine benchmark: model {}, {} cases, seed {}, slip {}, don't know {}, stop at {}, {}",
        report.model_version, report.cases, report.seed, report.slip, report.dont_know, report.stop_threshold, parameters
    )?;
    writeln!(
        out,
        "Checks: {}",
        if parallel {
            "in parallel, as the deployment runs them: every check starts with the case and is recorded once its result is in (its cost in seconds later); a question takes the employee its cost"
        } else {
            "on request: a check runs only when the engine asks for it, and takes its cost"
        }
    )?;
    writeln!(out)?;
    writeln!(out, "| figure | value | target | |")?;
    writeln!(out, "|---|---:|---|---|")?;
    let best_fixed = report.checklist_questions.min(report.arbitrary_questions);
    let fewer = 1.0 - report.mean_questions / best_fixed;
    let ratio = report.mean_questions / report.questions_lower_bound;
    let ratio_reaching = report.mean_questions_reaching_stop / report.questions_lower_bound;
    let rows: Vec<(String, String, String, &str)> = vec![
        (
            "top-1 accuracy".into(),
            format!("{:.3}", report.top1),
            format!("≥ {TOP1_TARGET}"),
            verdict(report.top1 >= TOP1_TARGET),
        ),
        (
            "top-3 accuracy".into(),
            format!("{:.3}", report.top3),
            format!("≥ {TOP3_TARGET}"),
            verdict(report.top3 >= TOP3_TARGET),
        ),
        (
            "  the model's ceiling: top-1 / top-3 had every question and check been answered"
                .into(),
            format!("{:.3} / {:.3}", report.top1_all_asked, report.top3_all_asked),
            String::new(),
            "",
        ),
        (
            "cases that reached the stop threshold".into(),
            format!("{:.3}", report.reached_stop),
            String::new(),
            "",
        ),
        (
            "  the same had every question and check been answered".into(),
            format!("{:.3}", report.reached_stop_all_asked),
            String::new(),
            "",
        ),
        (
            "  top-1 accuracy among them".into(),
            format!("{:.3}", report.top1_at_stop),
            String::new(),
            "",
        ),
        (
            "mean questions and checks asked until the engine stops".into(),
            format!("{:.2}", report.mean_questions),
            if parallel {
                format!(
                    "≤ {QUESTIONS_OVER_BOUND_TARGET} × bound (is {ratio:.2} ×: checks that came in \
                     gave bits unasked)"
                )
            } else {
                format!("≤ {QUESTIONS_OVER_BOUND_TARGET} × bound (is {ratio:.2} ×)")
            },
            verdict(ratio <= QUESTIONS_OVER_BOUND_TARGET),
        ),
        (
            "  the same over the cases that reached the stop threshold: steps to reach it".into(),
            format!("{:.2}", report.mean_questions_reaching_stop),
            format!(
                "≤ {QUESTIONS_OVER_BOUND_TARGET} × bound if read so (is {ratio_reaching:.2} ×)"
            ),
            verdict(ratio_reaching <= QUESTIONS_OVER_BOUND_TARGET),
        ),
        (
            "  of which questions to the employee / automated checks".into(),
            format!(
                "{:.2} / {:.2}",
                report.mean_employee_questions, report.mean_checks
            ),
            if parallel {
                "checks waited for".to_owned()
            } else {
                String::new()
            },
            "",
        ),
        (
            if parallel {
                "  information gained per question or check, the checks that came in included (bits)"
                    .into()
            } else {
                "  information gained per question or check (bits)".into()
            },
            format!("{:.3}", report.bits_per_step),
            format!(
                "the bound assumes {:.3} per answer",
                1.0 - binary_entropy(report.slip)
            ),
            "",
        ),
        (
            "checks recorded as they came in, without being asked for (not steps)".into(),
            format!("{:.2}", report.mean_checks_in),
            String::new(),
            "",
        ),
        (
            format!(
                "lower bound (H0 - H_stop)/(1 - h2(ε)) = ({:.2} - {:.2})/{:.3}",
                report.prior_entropy_bits,
                report.stop_entropy_bits,
                1.0 - binary_entropy(report.slip)
            ),
            format!("{:.2}", report.questions_lower_bound),
            String::new(),
            "",
        ),
        (
            "fixed checklist ordered by prior information gain".into(),
            format!("{:.2}", report.checklist_questions),
            format!(
                "engine ≥ 25% fewer than the best fixed order (is {:.1}% fewer)",
                100.0 * fewer
            ),
            verdict(fewer >= FEWER_THAN_CHECKLIST_TARGET),
        ),
        (
            "arbitrary fixed order".into(),
            format!("{:.2}", report.arbitrary_questions),
            String::new(),
            "",
        ),
        (
            "time spent asking (seconds)".into(),
            format!("{:.1}", report.asking_seconds),
            String::new(),
            "",
        ),
        (
            "ECR of the proposed fix order (seconds)".into(),
            format!("{:.1}", report.ecr_mean_seconds),
            String::new(),
            "",
        ),
        (
            "  of which escalation after every proposed fix failed (seconds)".into(),
            format!("{:.1}", report.ecr_escalation_seconds),
            String::new(),
            "",
        ),
        (
            "asking plus ECR (seconds)".into(),
            format!("{:.1}", report.total_expected_seconds),
            String::new(),
            "",
        ),
        (
            format!(
                "gap to the exact optimum, mean (on {:.1}% of cases)",
                100.0 * report.optimum_coverage
            ),
            format!("{:.4}%", 100.0 * report.ecr_gap_to_optimum),
            "≤ 0.5%".into(),
            verdict(
                report.ecr_gap_to_optimum <= GAP_TO_OPTIMUM_TARGET && report.optimum_coverage > 0.0,
            ),
        ),
        (
            format!(
                "saving against most likely first, escalating when the next fix has under {:.0}% (its best cutoff)",
                100.0 * report.most_likely_cutoff
            ),
            format!("{:.1}%", 100.0 * report.ecr_saving_vs_most_likely_cutoff),
            "≥ 8%".into(),
            verdict(report.ecr_saving_vs_most_likely_cutoff >= SAVING_VS_MOST_LIKELY_TARGET),
        ),
        (
            format!(
                "  the same, most likely first skipping fixes dearer than escalation (best cutoff {:.0}%)",
                100.0 * report.most_likely_cutoff_undominated
            ),
            format!("{:.1}%", 100.0 * report.ecr_saving_vs_most_likely_undominated),
            "≥ 8% if read so".into(),
            verdict(report.ecr_saving_vs_most_likely_undominated >= SAVING_VS_MOST_LIKELY_TARGET),
        ),
        (
            "  the same over the engine's fixes: the order alone".into(),
            format!("{:.1}%", 100.0 * report.ecr_saving_vs_most_likely),
            "≥ 8% if read so".into(),
            verdict(report.ecr_saving_vs_most_likely >= SAVING_VS_MOST_LIKELY_TARGET),
        ),
        (
            "    the order alone on the fix attempts, escalation left out".into(),
            format!("{:.1}%", 100.0 * report.fix_attempt_saving_vs_most_likely),
            String::new(),
            "",
        ),
        (
            "saving against most likely first trying every fix before escalating".into(),
            format!("{:.1}%", 100.0 * report.ecr_saving_vs_most_likely_every_fix),
            String::new(),
            "",
        ),
        (
            "saving against cheapest first (same fixes)".into(),
            format!("{:.1}%", 100.0 * report.ecr_saving_vs_cheapest),
            String::new(),
            "",
        ),
        (
            "expected calibration error (15 bins)".into(),
            format!("{:.4}", report.ece),
            format!("≤ {ECE_TARGET} with learned parameters"),
            if report.learned_from.is_some() {
                verdict(report.ece <= ECE_TARGET)
            } else {
                ""
            },
        ),
        (
            "Brier score".into(),
            format!("{:.4}", report.brier),
            String::new(),
            "",
        ),
        (
            "log loss".into(),
            format!("{:.4}", report.log_loss),
            String::new(),
            "",
        ),
        step_row("step latency p50 (µs)", report.step_p50_us, None),
        step_row(
            "step latency p99 (µs)",
            report.step_p99_us,
            Some(STEP_P99_TARGET_US),
        ),
    ];
    for (figure, value, target, met) in rows {
        writeln!(out, "| {figure} | {value} | {target} | {met} |")?;
    }
    write_cause_table(&report.by_cause, out)
}

/// The per-cause figures, worst top-1 first.
fn write_cause_table(by_cause: &[CauseFigures], out: &mut impl Write) -> Result<(), CliError> {
    writeln!(out)?;
    writeln!(out, "Per true cause, worst top-1 first:")?;
    writeln!(out)?;
    writeln!(
        out,
        "| cause | share | top-1 | steps | reached the stop | most often ranked first instead | top-1, every answer known | ranked first instead, every answer known |"
    )?;
    writeln!(out, "|---|---:|---:|---:|---:|---|---:|---|")?;
    let mistaken = |mistaken: &Option<(String, f64)>| {
        mistaken.as_ref().map_or_else(String::new, |(id, share)| {
            format!("{id} ({:.1}%)", 100.0 * share)
        })
    };
    for c in by_cause {
        writeln!(
            out,
            "| {} | {:.3} | {:.3} | {:.2} | {:.3} | {} | {:.3} | {} |",
            c.cause,
            c.share,
            c.top1,
            c.mean_questions,
            c.reached_stop,
            mistaken(&c.mistaken_for),
            c.top1_all_asked,
            mistaken(&c.mistaken_for_all_asked),
        )?;
    }
    Ok(())
}

fn step_row(
    figure: &str,
    micros: Option<f64>,
    target: Option<f64>,
) -> (String, String, String, &'static str) {
    let value = micros.map_or_else(|| "no clock".to_owned(), |m| format!("{m:.0}"));
    match target {
        Some(target) => (
            figure.to_owned(),
            value,
            format!("< {target:.0}"),
            match micros {
                Some(m) if m < target => "met",
                Some(_) => "NOT MET",
                None => "",
            },
        ),
        None => (figure.to_owned(), value, String::new(), ""),
    }
}
