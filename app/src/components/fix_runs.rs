//! The fixes asked for a case and what the agent did: applied, refused (and why), rolled
//! back, or reverted by itself when a downgrade's approval expired. A fix that changed
//! something can be undone from the agent's snapshot ("Undo this change", a plain form).

use agent_client::wire::ActionState;
use leptos::form::ActionForm;
use leptos::prelude::*;

use crate::case::{CheckStatus, FixRunView};
use crate::server_fns::UndoFix;

/// One sentence for where a fix stands.
pub fn fix_state_text(run: &FixRunView) -> String {
    let by_agent = |what: &str| match &run.agent_hostname {
        Some(host) => format!("{what} on {host}."),
        None => format!("{what}."),
    };
    match (&run.action, run.status) {
        (_, CheckStatus::Queued | CheckStatus::Sent | CheckStatus::Running) => {
            by_agent("Waiting for the agent")
        }
        (Some(action), _) => match &action.state {
            ActionState::DryRun => by_agent("Previewed (nothing changed)"),
            ActionState::Refused { reason } => format!("Not applied: {reason}"),
            ActionState::AlreadyInPlace => by_agent("Already in place, nothing to change"),
            ActionState::Applying => by_agent("Being applied"),
            ActionState::Applied => by_agent("Applied and verified"),
            ActionState::Failed { error, rolled_back } => format!(
                "Failed: {error}{}",
                if *rolled_back {
                    " The previous state was restored."
                } else {
                    ""
                }
            ),
            ActionState::RolledBack { .. } => by_agent("Rolled back"),
            ActionState::AutoReverted { .. } => {
                by_agent("Reverted by the agent when its approval expired")
            }
            ActionState::RollbackFailed { error, .. } => {
                format!("Rolling back failed ({error}); the agent keeps trying.")
            }
        },
        (None, _) => run
            .problem
            .clone()
            .unwrap_or_else(|| "The agent did not answer.".to_owned()),
    }
}

/// The list of fixes asked for the case (nothing when there are none).
#[component]
pub fn FixRuns(case_id: String, #[prop(into)] runs: Signal<Vec<FixRunView>>) -> impl IntoView {
    let undo = ServerAction::<UndoFix>::new();
    let refused = move || {
        undo.value()
            .get()
            .and_then(Result::err)
            .map(|e| e.to_string())
    };
    move || {
        let case_id = case_id.clone();
        let runs = runs.get();
        (!runs.is_empty()).then(|| {
            let items = runs
                .into_iter()
                .map(|run| {
                    let text = fix_state_text(&run);
                    let changes = run
                        .action
                        .as_ref()
                        .map(|a| {
                            a.plan
                                .iter()
                                .map(|c| {
                                    view! {
                                        <li><code>{c.target.clone()}</code>": "{c.from.clone()}" → "{c.to.clone()}</li>
                                    }
                                })
                                .collect_view()
                        });
                    let state = run.action.as_ref().map(|a| a.state_name()).unwrap_or_default();
                    // A dry run changed nothing, so its state is never one to undo.
                    let can_undo = run.action.as_ref().is_some_and(|a| a.can_be_undone());
                    let case_id = case_id.clone();
                    let undo_form = can_undo.then(|| {
                        view! {
                            <ActionForm action=undo attr:class="undo-fix">
                                <input type="hidden" name="case_id" value=case_id/>
                                <input type="hidden" name="job_id" value=run.job_id.clone()/>
                                <button type="submit" disabled=move || undo.pending().get()>"Undo this change"</button>
                            </ActionForm>
                        }
                    });
                    view! {
                        <li class="fix-run" data-fix-run=run.fix_id.clone() data-state=state>
                            <span class="fix-name">{run.fix_id.clone()}</span>
                            " "
                            <span class=format!("tier {}", run.tier)>{run.tier.clone()}</span>
                            <p class="fix-state">{text}</p>
                            <ul class="changes">{changes}</ul>
                            {undo_form}
                        </li>
                    }
                })
                .collect_view();
            view! {
                <section class="card" aria-labelledby="fix-runs-title">
                    <h2 id="fix-runs-title">"Fixes applied for this case"</h2>
                    {move || refused().map(|message| view! { <p class="alert" role="alert">{message}</p> })}
                    <ul class="fix-runs" aria-live="polite">{items}</ul>
                </section>
            }
        })
    }
}
