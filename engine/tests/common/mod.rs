//! A small model and helpers shared by the integration tests.

#![allow(dead_code)] // Each test binary uses a different part of this module.

use engine::rng::Rng;
use engine::{CheckResult, CompiledModel, Model, Session};

/// Three causes and the leak: small enough to reason about by hand.
pub const SMALL_MODEL: &str = r#"
format_version = 1
model_version = "test-1"
title = "A small test model"

[settings]
slip = 0.1
stop_threshold = 0.9

[[causes]]
id = "dns-stale"
name = "Stale DNS"
prior = 4.0

[[causes]]
id = "host-offline"
name = "Host offline"
prior = 4.0

[[causes]]
id = "clock-skew"
name = "Clock skew"
prior = 2.0

[[causes]]
id = "other"
name = "Other"
prior = 1.0

[[groups]]
id = "only-me"
temperature = 0.5

[[questions]]
id = "by_ip_works"
text = "Does connecting by IP address work?"
answers = [
  { id = "yes", label = "Yes" },
  { id = "no", label = "No" },
  { id = "dont_know", label = "I don't know" },
]
[questions.likelihood]
default = { yes = 0.1 }
dns-stale = { yes = 0.9 }

[[questions]]
id = "colleagues_connect"
text = "Can colleagues connect?"
group = "only-me"
answers = [
  { id = "yes", label = "Yes" },
  { id = "no", label = "No" },
  { id = "dont_know", label = "I don't know" },
]
[questions.likelihood]
default = { yes = 0.2 }
dns-stale = { yes = 0.8 }
clock-skew = { yes = 0.7 }

[[questions]]
id = "other_computer_works"
text = "Does it work from another computer?"
group = "only-me"
answers = [
  { id = "yes", label = "Yes" },
  { id = "no", label = "No" },
  { id = "dont_know", label = "I don't know" },
]
[questions.likelihood]
default = { yes = 0.2 }
dns-stale = { yes = 0.8 }
clock-skew = { yes = 0.8 }

[[questions]]
id = "host_may_be_off"
text = "Could the computer be off?"
answers = [
  { id = "yes", label = "Yes" },
  { id = "no", label = "No" },
  { id = "dont_know", label = "I can't tell" },
]
[questions.likelihood]
default = { yes = 0.1, dont_know = 0.2 }
host-offline = { yes = 0.8, dont_know = 0.5 }

[[questions]]
id = "error_code"
text = "What is the error code?"
intake = true
input = "code"
unmatched_code = "other-code"
answers = [
  { id = "0x904", label = "0x904", codes = ["0x904"] },
  { id = "time", label = "7431", codes = ["7431"] },
  { id = "other-code", label = "Another code" },
  { id = "dont_know", label = "None" },
]
[questions.likelihood]
default = { "0x904" = 0.8, time = 0.05 }
clock-skew = { "0x904" = 0.3, time = 0.6 }

[[checks]]
id = "clock-compare"
name = "Compare clocks"
runs_on = "client"
cost = 3.0
fails_to_run = 0.2
outcomes = [
  { id = "in-sync", label = "In sync" },
  { id = "skewed", label = "Skewed" },
]
[checks.likelihood]
default = { skewed = 0.02 }
clock-skew = { skewed = 0.95 }

[[fixes]]
id = "flush-dns"
name = "Flush DNS"
tier = "safe"
cost = 30.0
action = "client.flush_dns"
resolves = { dns-stale = 0.7 }

[[fixes]]
id = "connect-by-ip"
name = "Connect by IP"
tier = "safe"
cost = 90.0
resolves = { dns-stale = 0.9 }

[[fixes]]
id = "wake-host"
name = "Wake the host"
tier = "safe"
cost = 180.0
action = "agent.wake_on_lan"
resolves = { host-offline = 0.7 }

[[fixes]]
id = "resync-clock"
name = "Resync the clock"
tier = "safe"
cost = 60.0
resolves = { clock-skew = 0.9 }

[[articles]]
id = "kb-dns"
title = "Clearing the name cache"
fixes = ["flush-dns", "connect-by-ip"]

[[articles]]
id = "kb-wake"
title = "Waking the computer"
fixes = ["wake-host"]

[[articles]]
id = "kb-clock"
title = "Fixing the clock"
fixes = ["resync-clock"]
"#;

pub fn small_model() -> CompiledModel {
    CompiledModel::new(Model::from_toml(SMALL_MODEL).expect("the small model parses"))
        .expect("the small model is valid")
}

/// The probability the state gives `cause`.
pub fn probability(model: &CompiledModel, session: &Session, cause: &str) -> f64 {
    let state = session.state(model).expect("state");
    state
        .causes
        .iter()
        .find(|c| c.id == cause)
        .expect("cause ranked")
        .probability
}

/// One random piece of evidence: (question, answer) or (check, result).
#[derive(Debug, Clone)]
pub enum Evidence {
    Answer(String, String),
    Check(String, CheckResult),
}

impl Evidence {
    pub fn apply(&self, model: &CompiledModel, session: &mut Session) {
        match self {
            Evidence::Answer(question, answer) => session
                .answer(model, question, answer)
                .expect("valid answer"),
            Evidence::Check(check, result) => session
                .record_check(model, check, result.clone())
                .expect("valid result"),
        }
    }
}

/// A random subset of questions and checks with random answers, each at most once.
pub fn random_evidence(model: &CompiledModel, rng: &mut Rng) -> Vec<Evidence> {
    let document = model.model();
    let mut evidence = Vec::new();
    for question in &document.questions {
        if rng.uniform() < 0.7 {
            let answer = &question.answers[rng.below(question.answers.len())];
            evidence.push(Evidence::Answer(question.id.clone(), answer.id.clone()));
        }
    }
    for check in &document.checks {
        if rng.uniform() < 0.7 {
            let pick = rng.below(check.outcomes.len() + 1);
            let result = check
                .outcomes
                .get(pick)
                .map_or(CheckResult::NotRun, |o| CheckResult::Outcome(o.id.clone()));
            evidence.push(Evidence::Check(check.id.clone(), result));
        }
    }
    evidence
}
