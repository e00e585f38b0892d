//! What the diagnosis makes of the case: the likely causes, one question at a time, and the
//! fixes in the order to try them, each with "apply it for me" (when an agent can) and "did
//! it work?". Every button is a plain form, so it works without JavaScript.
//!
//! With JavaScript, the browser runs the diagnosis engine too: the moment an answer is
//! chosen, the card shows what it changes (computed locally from the server's model and the
//! session's evidence) while the server records it; the server's own result then replaces the
//! preview. Both run the same code on the same inputs, so they agree.

use std::sync::Arc;

use leptos::form::ActionForm;
use leptos::prelude::*;

use crate::case::{CheckRunView, DiagnosisSummary, PendingQuestion, SuggestedFix};
use crate::diagnosis::{preview_answer, LocalModel, PortalModel};
use crate::server_fns::{diagnosis_model, AnswerQuestion, ApplyFix, FixOutcome};

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
    /// The case's check runs: the preview catches up on finished ones as the server does.
    #[prop(into)]
    checks: Signal<Vec<CheckRunView>>,
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
    // The browser's own engine: the served model, fetched once the page is hydrated
    // (effects never run on the server, so the server's render does not wait for it).
    let local_model = RwSignal::new(None::<Arc<LocalModel>>);
    Effect::new(move |_| {
        leptos::task::spawn_local(async move {
            let compiled = diagnosis_model().await.ok().map(PortalModel::compile);
            if let Some(Ok(local)) = compiled {
                local_model.set(Some(Arc::new(local)));
            }
        });
    });
    let preview = RwSignal::new(None::<DiagnosisSummary>);
    // Whatever the server says next replaces the preview, and so does a refusal.
    Effect::new(move |_| {
        diagnosis.track();
        preview.set(None);
    });
    Effect::new(move |_| {
        if let Some(Err(_)) = answer.value().get() {
            preview.set(None);
        }
    });
    let choose = Callback::new(move |(question, answer): (String, String)| {
        let local = local_model.get_untracked();
        let next = local
            .zip(diagnosis.get_untracked())
            .and_then(|(local, current)| {
                checks.with_untracked(|runs| {
                    preview_answer(&local, &current, runs, &question, &answer)
                })
            });
        if next.is_some() {
            // After the click has submitted its form: showing the preview re-renders the
            // question, and the form must be read before that.
            set_timeout(move || preview.set(next), std::time::Duration::ZERO);
        }
    });
    move || {
        let case_id = case_id.clone();
        let previewed = preview.with(Option::is_some);
        preview.get().or_else(|| diagnosis.get()).map(|summary| {
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
                .map(|question| view! { <Question case_id=case_id.clone() question answer choose/> });
            let saving = previewed.then(|| {
                view! { <p class="hint saving" role="status">"Worked out on this computer; saving your answer…"</p> }
            });
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
                <section class="card diagnosis" aria-labelledby="diagnosis-title" data-session=summary.session_id data-preview=previewed.to_string() data-local-engine=move || local_model.with(Option::is_some).to_string()>
                    <h2 id="diagnosis-title">"What is most likely wrong"</h2>
                    <ol class="causes">{causes}</ol>
                    {move || refused().map(|message| view! { <p class="alert" role="alert">{message}</p> })}
                    {saving}
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
    /// Called with (question, answer) as the employee submits, before the server has it.
    choose: Callback<(String, String)>,
) -> impl IntoView {
    let pending = answer.pending();
    let on_answer = move |event: leptos::ev::MouseEvent| {
        if let Some(chosen) = clicked_answer(&event) {
            choose.run(chosen);
        }
    };
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
                <button type="submit" on:click=on_answer disabled=move || pending.get()>"Answer"</button>
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
                        <button type="submit" data-answer=choice.id on:click=on_answer disabled=move || pending.get()>{choice.label}</button>
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

/// The question and answer a clicked answer button stands for, read from the page at the
/// time of the click: a later render patches the button in place and keeps its first click
/// handler, so the handler must not carry them itself.
fn clicked_answer(event: &leptos::ev::MouseEvent) -> Option<(String, String)> {
    use leptos::wasm_bindgen::JsCast;
    use leptos::web_sys::{Element, HtmlInputElement};
    let button: Element = event.current_target()?.dyn_into().ok()?;
    let question = button
        .closest("[data-question]")
        .ok()??
        .get_attribute("data-question")?;
    let answer = match button.get_attribute("data-answer") {
        Some(choice) => choice,
        // A typed answer: what is in the form's text field.
        None => button
            .closest("form")
            .ok()??
            .query_selector("input[name=answer]")
            .ok()??
            .dyn_into::<HtmlInputElement>()
            .ok()?
            .value(),
    };
    Some((question, answer))
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
