//! `model replay` against golden files: a change to the model or the engine that changes what
//! is asked or concluded shows up here. Set `UPDATE_GOLDEN=1` to rewrite the expected files
//! after an intended change, and review the diff.

use std::path::{Path, PathBuf};

use engine::cli::{replay, ReplayOptions};
use engine::ChecksArrive;

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

fn replayed(options: &ReplayOptions, input: &str) -> Result<String, String> {
    let mut out = Vec::new();
    replay(options, input.as_bytes(), &mut out).map_err(|e| e.to_string())?;
    Ok(String::from_utf8(out).expect("replay writes UTF-8"))
}

fn assert_golden(options: &ReplayOptions, expected_file: &str) {
    let cases = std::fs::read_to_string(golden("cases.jsonl")).unwrap();
    let actual = replayed(options, &cases).unwrap();
    let path = golden(expected_file);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap();
    for (number, (a, e)) in actual.lines().zip(expected.lines()).enumerate() {
        assert_eq!(a, e, "{expected_file} output line {} differs", number + 1);
    }
    assert_eq!(
        actual.lines().count(),
        expected.lines().count(),
        "{expected_file} has another number of lines"
    );
}

#[test]
fn replaying_the_golden_cases_against_the_shipped_model_gives_the_golden_output() {
    assert_golden(&ReplayOptions::default(), "replay.expected.jsonl");
}

#[test]
fn replaying_with_checks_only_on_request_gives_its_golden_output() {
    assert_golden(
        &ReplayOptions {
            checks: ChecksArrive::OnRequest,
            ..ReplayOptions::default()
        },
        "replay-on-request.expected.jsonl",
    );
}

#[test]
fn replay_honours_the_stop_threshold_and_the_question_limit() {
    assert_golden(
        &ReplayOptions {
            stop: Some(0.99),
            max_questions: Some(4),
            ..ReplayOptions::default()
        },
        "replay-stop-0.99-max-4.expected.jsonl",
    );
}

/// The ids of a replayed line's list `key`.
fn ids<'a>(line: &'a serde_json::Value, key: &str) -> Vec<&'a str> {
    line[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

const SKEWED_CLOCK: &str =
    r#"{"answers": {"error_code": "7431"}, "checks": {"clock-compare": "skewed"}}"#;

#[test]
fn on_request_the_engine_only_reads_checks_it_asks_for() {
    let options = ReplayOptions {
        checks: ChecksArrive::OnRequest,
        ..ReplayOptions::default()
    };
    let out = replayed(&options, SKEWED_CLOCK).unwrap();
    let line: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let asked = ids(&line, "asked");
    assert_eq!(asked[..2], ["error_code", "extended_code"]);
    assert!(ids(&line, "checks_in").is_empty());
    assert_eq!(line["ranking"][0]["cause"], "clock-skew");
    if !asked.contains(&"clock-compare") {
        // Never asked, so never read: the ranking rests on the code alone.
        assert!(line["ranking"][0]["probability"].as_f64().unwrap() < 0.9);
    }
}

#[test]
fn in_parallel_a_check_counts_once_its_result_is_in_without_being_asked() {
    let out = replayed(&ReplayOptions::default(), SKEWED_CLOCK).unwrap();
    let line: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let asked = ids(&line, "asked");
    let checks_in = ids(&line, "checks_in");
    // The codes take the employee longer than the clock comparison takes to come in.
    assert_eq!(asked[0], "error_code");
    assert!(checks_in.contains(&"clock-compare"), "{checks_in:?}");
    assert!(!asked.contains(&"clock-compare"), "{asked:?}");
    assert!(asked.iter().all(|id| !checks_in.contains(id)));
    assert_eq!(line["ranking"][0]["cause"], "clock-skew");
    assert!(line["ranking"][0]["probability"].as_f64().unwrap() >= 0.9);
}

#[test]
fn a_bad_line_is_an_error_that_names_its_line_number() {
    let input =
        "{\"answers\": {\"error_code\": \"0x904\"}}\n\n{\"answers\": {\"on_vpn\": \"perhaps\"}}\n";
    let error = replayed(&ReplayOptions::default(), input).unwrap_err();
    assert!(
        error.starts_with("line 3: question `on_vpn` has no answer `perhaps`"),
        "{error}"
    );
    let error = replayed(&ReplayOptions::default(), "{\"answers\": {}}\nnot json\n").unwrap_err();
    assert!(error.starts_with("line 2: "), "{error}");
    let error = replayed(
        &ReplayOptions::default(),
        "{\"checks\": {\"tcp-connect\": \"maybe\"}}\n",
    )
    .unwrap_err();
    assert!(
        error.starts_with("line 1: check `tcp-connect` has no outcome `maybe`"),
        "{error}"
    );
    let error = replayed(&ReplayOptions::default(), "{\"answer\": {}}\n").unwrap_err();
    assert!(
        error.starts_with("line 1: unknown field `answer`"),
        "{error}"
    );
}
