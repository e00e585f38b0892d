//! What the diagnosis makes of the case: the likely causes, one question at a time, and the
//! fixes in the order to try them, each with "apply it for me" (when an agent can) and "did
//! it work?". Every button is a plain form, so it works without JavaScript.

use leptos::form::ActionForm;
use leptos::prelude::*;

use crate::case::{DiagnosisSummary, PendingQuestion, SuggestedFix};
use crate::server_fns::{AnswerQuestion, ApplyFix, FixOutcome};

fn percent(probability: f64) -> String {
    let p = probability * 100.0;
    if p >= 1.0 {
        format!("{p:.0}%")
    } else {
        "<1%".to_owned()
    }
}

/// The diagnosis card.
#[component]
pub fn DiagnosisPanel(
    case_id: String,
    #[prop(into)] diagnosis: Signal<Option<DiagnosisSummary>>,
) -> impl IntoView {
    let answer = ServerAction::<AnswerQuestion>::new();
    let apply = ServerAction::<ApplyFix>::new();
    let outcome = ServerAction::<FixOutcome>::new();
    let refused = move || {
        let answer = answer.value().get().and_then(Result::err);
        let apply = apply.value().get().and_then(Result::err);
        let outcome = outcome.value().get().and_then(Result::err);
        answer.or(apply).or(outcome).map(|e| e.to_string())
    };
    move || {
        let case_id = case_id.clone();
        diagnosis.get().map(|summary| {
            let causes = summary
                .causes
                .iter()
                .take(3)
                .map(|cause| {
                    let width = format!("width: {:.0}%", (cause.probability * 100.0).clamp(1.0, 100.0));
                    view! {
                        <li data-cause=cause.id.clone()>
                            <span class="cause-name">{cause.name.clone()}</span>
                            <span class="bar" aria-hidden="true"><span style=width></span></span>
                            <span class="cause-probability">{percent(cause.probability)}</span>
                        </li>
                    }
                })
                .collect_view();
            let question = summary
                .question
                .clone()
                .map(|question| view! { <Question case_id=case_id.clone() question answer/> });
            let enough = if summary.waiting_for_checks {
                Some(view! { <p class="hint" role="status">"Waiting for the checks to finish…"</p> }.into_any())
            } else if summary.stop_asking && summary.question.is_none() {
                Some(view! { <p class="hint">"We know enough to suggest what to do."</p> }.into_any())
            } else {
                None
            };
            let fixes = summary
                .fixes
                .into_iter()
                .map(|fix| view! { <Fix case_id=case_id.clone() fix apply outcome closed=summary.closed/> })
                .collect_view();
            view! {
                <section class="card diagnosis" aria-labelledby="diagnosis-title" data-session=summary.session_id>
                    <h2 id="diagnosis-title">"What is most likely wrong"</h2>
                    <ol class="causes">{causes}</ol>
                    {move || refused().map(|message| view! { <p class="alert" role="alert">{message}</p> })}
                    {question}
                    {enough}
                    <h3>"What to try, in this order"</h3>
                    <ol class="fixes">{fixes}</ol>
                </section>
            }
        })
    }
}

#[component]
fn Question(
    case_id: String,
    question: PendingQuestion,
    answer: ServerAction<AnswerQuestion>,
) -> impl IntoView {
    let pending = answer.pending();
    let PendingQuestion {
        id: question_id,
        text,
        typed,
        answers,
    } = question;
    let body = if typed {
        let input_id = format!("answer-{question_id}");
        let (case_id, question_id, label) = (case_id.clone(), question_id.clone(), text.clone());
        view! {
            <ActionForm action=answer attr:class="typed-answer">
                <input type="hidden" name="case_id" value=case_id/>
                <input type="hidden" name="question" value=question_id/>
                <label for=input_id.clone() class="visually-hidden">{label}</label>
                <input type="text" id=input_id name="answer" maxlength="32" autocomplete="off"/>
                <button type="submit" disabled=move || pending.get()>"Answer"</button>
            </ActionForm>
        }
        .into_any()
    } else {
        answers
            .into_iter()
            .map(|choice| {
                let (case_id, question_id) = (case_id.clone(), question_id.clone());
                view! {
                    <ActionForm action=answer attr:class="choice">
                        <input type="hidden" name="case_id" value=case_id/>
                        <input type="hidden" name="question" value=question_id/>
                        <input type="hidden" name="answer" value=choice.id.clone()/>
                        <button type="submit" data-answer=choice.id disabled=move || pending.get()>{choice.label}</button>
                    </ActionForm>
                }
            })
            .collect_view()
            .into_any()
    };
    view! {
        <div class="question" data-question=question_id>
            <h3>"A question to narrow it down"</h3>
            <p class="question-text">{text}</p>
            <div class="answers">{body}</div>
        </div>
    }
}

#[component]
fn Fix(
    case_id: String,
    fix: SuggestedFix,
    apply: ServerAction<ApplyFix>,
    outcome: ServerAction<FixOutcome>,
    closed: bool,
) -> impl IntoView {
    let tier = match fix.tier.as_str() {
        "safe" => "safe to try",
        "change" => "a reversible change",
        "downgrade" => "needs helpdesk approval",
        _ => "",
    };
    let busy = move || apply.pending().get() || outcome.pending().get();
    // The agent applies safe and reversible fixes on request; a downgrade waits for the
    // helpdesk.
    let can_apply = fix.agent_fix.is_some() && fix.tier != "downgrade" && !closed;
    let apply_form = can_apply.then(|| {
        let (case_id, fix_id) = (case_id.clone(), fix.id.clone());
        view! {
            <ActionForm action=apply attr:class="apply-fix">
                <input type="hidden" name="case_id" value=case_id/>
                <input type="hidden" name="fix" value=fix_id/>
                <button type="submit" disabled=busy>"Apply it for me"</button>
            </ActionForm>
        }
    });
    let outcome_forms = (!closed).then(|| {
        [(true, "It works now"), (false, "Still failing")]
            .into_iter()
            .map(|(worked, label)| {
                let (case_id, fix_id) = (case_id.clone(), fix.id.clone());
                view! {
                    <ActionForm action=outcome attr:class="fix-outcome">
                        <input type="hidden" name="case_id" value=case_id/>
                        <input type="hidden" name="fix" value=fix_id/>
                        <input type="hidden" name="worked" value=worked.to_string()/>
                        <button type="submit" data-worked=worked.to_string() disabled=busy>{label}</button>
                    </ActionForm>
                }
            })
            .collect_view()
    });
    view! {
        <li data-fix=fix.id>
            <span class="fix-name">{fix.name}</span>
            " "
            <span class=format!("tier {}", fix.tier)>{tier}</span>
            <span class="hint">{format!(" · {} likely to fix it", percent(fix.probability))}</span>
            <div class="fix-actions">
                {apply_form}
                <span class="hint">"Tried it? "</span>
                {outcome_forms}
            </div>
        </li>
    }
}
