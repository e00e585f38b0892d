//! `model simulate` prints its table and its JSON, and is reproducible from its seed.

use engine::cli::{simulate, SimulateOptions};
use engine::ChecksArrive;

fn run(options: &SimulateOptions) -> String {
    let mut out = Vec::new();
    simulate(options, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn the_json_report_has_every_key_and_plausible_figures() {
    let report: serde_json::Value = serde_json::from_str(&run(&SimulateOptions {
        n: 60,
        seed: 5,
        slip: Some(0.1),
        json: true,
        ..SimulateOptions::default()
    }))
    .unwrap();
    for key in [
        "top1",
        "top3",
        "mean_questions",
        "mean_questions_reaching_stop",
        "questions_lower_bound",
        "checklist_questions",
        "ecr_gap_to_optimum",
        "ecr_saving_vs_most_likely",
        "ecr_saving_vs_most_likely_cutoff",
        "most_likely_cutoff",
        "ecr_saving_vs_most_likely_undominated",
        "most_likely_cutoff_undominated",
        "ecr_saving_vs_most_likely_every_fix",
        "ece",
        "brier",
        "log_loss",
        "step_p50_us",
        "step_p99_us",
        "bits_per_step",
        "ecr_escalation_seconds",
        "top1_all_asked",
        "top3_all_asked",
        "reached_stop_all_asked",
    ] {
        assert!(report.get(key).is_some(), "missing {key}");
    }
    let figure = |key: &str| report[key].as_f64().unwrap();
    assert!(figure("top1") <= figure("top3") && figure("top3") <= 1.0);
    assert!(
        figure("top1") > 0.5,
        "the engine should beat guessing by far"
    );
    assert!(figure("mean_questions") < figure("checklist_questions"));
    assert!(
        figure("top1_all_asked") <= figure("top3_all_asked") && figure("top3_all_asked") <= 1.0
    );
    assert!(
        figure("reached_stop_all_asked") > 0.0 && figure("reached_stop_all_asked") <= 1.0,
        "{}",
        figure("reached_stop_all_asked")
    );
    assert!(
        figure("mean_questions_reaching_stop") <= figure("mean_questions") + 1e-9,
        "in this model the cases that cannot reach the threshold ask longest"
    );
    assert!(
        figure("ecr_gap_to_optimum") >= -1e-12,
        "P-over-C cannot beat the optimum"
    );
    assert!(
        figure("ecr_saving_vs_most_likely_cutoff")
            <= figure("ecr_saving_vs_most_likely_every_fix") + 1e-12,
        "trying every fix is one of the cutoffs most-likely-first may pick"
    );
    assert!(figure("step_p99_us") >= figure("step_p50_us"));
    assert!(figure("ecr_escalation_seconds") <= figure("ecr_mean_seconds"));
    assert!(figure("bits_per_step") > 0.0);
    assert!(
        report["learned_row_prior"].is_null(),
        "the model's own parameters"
    );
}

/// With the model's own parameters the posterior after every answer is the Bayes decision on
/// the most evidence there is: no order of asking that stops earlier ranks better on average.
/// Seeded, so the figures are fixed; 1,500 cases keep the sampling noise under the margin.
#[test]
fn every_answer_known_is_the_ceiling_the_engine_stays_under() {
    let report: serde_json::Value = serde_json::from_str(&run(&SimulateOptions {
        n: 1500,
        seed: 3,
        slip: Some(0.1),
        json: true,
        ..SimulateOptions::default()
    }))
    .unwrap();
    let figure = |key: &str| report[key].as_f64().unwrap();
    assert!(
        figure("top1_all_asked") >= figure("top1"),
        "{} against {}",
        figure("top1_all_asked"),
        figure("top1")
    );
    assert!(figure("top3_all_asked") >= figure("top3"));
}

/// The per-cause rows are the same cases split by their true cause: their shares add up to
/// every case, and their top-1 accuracies, weighted by share, give the overall figures.
#[test]
fn the_per_cause_rows_add_up_to_the_whole() {
    let report: serde_json::Value = serde_json::from_str(&run(&SimulateOptions {
        n: 600,
        seed: 4,
        slip: Some(0.1),
        json: true,
        ..SimulateOptions::default()
    }))
    .unwrap();
    let rows = report["by_cause"].as_array().unwrap();
    assert!(rows.len() > 10, "most causes are drawn in 600 cases");
    let weighted = |key: &str| -> f64 {
        rows.iter()
            .map(|r| r["share"].as_f64().unwrap() * r[key].as_f64().unwrap())
            .sum()
    };
    let shares: f64 = rows.iter().map(|r| r["share"].as_f64().unwrap()).sum();
    assert!((shares - 1.0).abs() < 1e-9, "shares add up to {shares}");
    for (row_key, whole_key) in [("top1", "top1"), ("top1_all_asked", "top1_all_asked")] {
        let whole = report[whole_key].as_f64().unwrap();
        assert!(
            (weighted(row_key) - whole).abs() < 1e-9,
            "{row_key}: {} against {whole}",
            weighted(row_key)
        );
    }
    let top1: Vec<f64> = rows.iter().map(|r| r["top1"].as_f64().unwrap()).collect();
    assert!(
        top1.windows(2).all(|pair| pair[0] <= pair[1]),
        "worst first: {top1:?}"
    );
    for row in rows {
        let top1 = row["top1"].as_f64().unwrap();
        match row["mistaken_for"].as_array() {
            // Ranked wrongly at least once: the cause most often ranked first instead.
            Some(mistaken) => {
                assert_ne!(mistaken[0], row["cause"]);
                assert!(mistaken[1].as_f64().unwrap() <= 1.0 - top1 + 1e-9);
            }
            None => assert_eq!(top1, 1.0, "{row}"),
        }
    }
}

#[test]
fn the_same_seed_gives_the_same_figures() {
    let options = SimulateOptions {
        n: 40,
        seed: 9,
        json: true,
        ..SimulateOptions::default()
    };
    let strip_timing = |text: String| {
        let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
        value
            .as_object_mut()
            .unwrap()
            .retain(|key, _| !key.starts_with("step_"));
        value
    };
    assert_eq!(strip_timing(run(&options)), strip_timing(run(&options)));
}

#[test]
fn the_table_shows_targets_and_learning_runs() {
    let table = run(&SimulateOptions {
        n: 30,
        seed: 2,
        learn_from: Some(300),
        ..SimulateOptions::default()
    });
    assert!(
        table.contains(
            "parameters learned from 300 simulated resolved cases (rows under a fitted prior"
        ),
        "{table}"
    );
    for figure in [
        "top-1 accuracy",
        "lower bound",
        "fixed checklist",
        "gap to the exact optimum",
        "(its best cutoff)",
        "skipping fixes dearer than escalation",
        "the order alone",
        "expected calibration error",
        "step latency p99",
        "checks recorded as they came in",
        "Checks: in parallel, as the deployment runs them",
        "Per true cause, worst top-1 first",
    ] {
        assert!(table.contains(figure), "missing {figure}:\n{table}");
    }
    let error = simulate(
        &SimulateOptions {
            n: 0,
            ..SimulateOptions::default()
        },
        &mut Vec::new(),
    )
    .unwrap_err();
    assert_eq!(error.to_string(), "--n must be at least 1");
}

#[test]
fn checks_that_never_run_cost_accuracy_on_the_very_same_cases() {
    let options = |never_run: &[&str]| SimulateOptions {
        n: 400,
        seed: 3,
        slip: Some(0.1),
        never_run: never_run.iter().map(|id| (*id).to_owned()).collect(),
        json: true,
        ..SimulateOptions::default()
    };
    let report = |never_run: &[&str]| -> serde_json::Value {
        serde_json::from_str(&run(&options(never_run))).unwrap()
    };
    let every_check = report(&[]);
    let without_the_rdp_probes = report(&["rdp-tls", "rdp-negotiate", "tcp-connect"]);
    assert_eq!(every_check["never_run"], serde_json::json!([]));
    // Reported in model order, whatever order they were named in.
    assert_eq!(
        without_the_rdp_probes["never_run"],
        serde_json::json!(["tcp-connect", "rdp-negotiate", "rdp-tls"])
    );
    let figure = |report: &serde_json::Value, key: &str| report[key].as_f64().unwrap();
    assert!(
        figure(&without_the_rdp_probes, "top1_all_asked") < figure(&every_check, "top1_all_asked"),
        "the same cases with less evidence: {} against {}",
        figure(&without_the_rdp_probes, "top1_all_asked"),
        figure(&every_check, "top1_all_asked")
    );
    let table = run(&SimulateOptions {
        json: false,
        ..options(&["gateway-probe"])
    });
    assert!(
        table.contains("the model's own parameters; checks that never run: gateway-probe"),
        "{table}"
    );
    let error = simulate(&options(&["gateway-prob"]), &mut Vec::new()).unwrap_err();
    assert!(
        error.to_string().starts_with(
            "--never-run: `gateway-prob` is not a check of the model (its checks: tcp-connect, "
        ),
        "{error}"
    );
}

#[test]
fn checks_in_parallel_spare_the_employee_questions_on_the_very_same_cases() {
    let report = |checks: ChecksArrive| -> serde_json::Value {
        serde_json::from_str(&run(&SimulateOptions {
            n: 400,
            seed: 4,
            slip: Some(0.1),
            checks,
            json: true,
            ..SimulateOptions::default()
        }))
        .unwrap()
    };
    let parallel = report(ChecksArrive::Parallel);
    let on_request = report(ChecksArrive::OnRequest);
    let figure = |report: &serde_json::Value, key: &str| report[key].as_f64().unwrap();
    assert_eq!(parallel["checks"], "parallel");
    assert_eq!(on_request["checks"], "on-request");
    // On request nothing comes in by itself; in parallel most checks do, and the engine
    // rarely has to wait for one.
    assert_eq!(figure(&on_request, "mean_checks_in"), 0.0);
    assert!(figure(&parallel, "mean_checks_in") > 10.0);
    assert!(figure(&parallel, "mean_checks") < figure(&on_request, "mean_checks"));
    // The same cases, with more evidence sooner: fewer steps, less time, no worse accuracy.
    assert!(figure(&parallel, "mean_questions") < figure(&on_request, "mean_questions"));
    assert!(figure(&parallel, "asking_seconds") < figure(&on_request, "asking_seconds"));
    assert!(figure(&parallel, "top1") >= figure(&on_request, "top1"));
    // The ceiling does not depend on when the evidence comes.
    assert_eq!(parallel["top1_all_asked"], on_request["top1_all_asked"]);
}
