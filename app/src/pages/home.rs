//! The home page: what RDP Doctor does, and the form that opens a case.

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;

use crate::case::{CaseForm, FieldError};
use crate::error::PortalError;
use crate::server_fns::OpenCase;

/// Explains the tool and asks for the few facts the first check needs.
#[component]
pub fn HomePage() -> impl IntoView {
    let open_case = ServerAction::<OpenCase>::new();
    let failure = move || open_case.value().get().and_then(Result::err);
    // A refused form comes back with what was typed, with or without JavaScript.
    let submitted = move || match failure() {
        Some(PortalError::Invalid { submitted, .. }) => *submitted,
        _ => CaseForm {
            error_code: "0x904".into(),
            ..CaseForm::default()
        },
    };
    let field_error = move |field: &'static str| {
        Signal::derive(move || {
            failure()
                .and_then(|e| e.field_error().cloned())
                .filter(|e: &FieldError| e.field == field)
                .map(|e| e.message)
        })
    };
    let general_error = move || {
        failure()
            .filter(|e| e.field_error().is_none())
            .map(|e| e.to_string())
    };

    view! {
        <Title text="Remote Desktop won't connect"/>
        <section class="intro">
            <h1>"Remote Desktop won't connect?"</h1>
            <p class="lead">
                "If the Remote Desktop window closed with "<strong>"error code 0x904"</strong>
                " (often with "<strong>"extended error code 0x7"</strong>"), you are in the right place. "
                "Tell us which computer you were connecting to and we will check, step by step, where the connection breaks."
            </p>
        </section>
        <section class="card" aria-labelledby="form-title">
            <h2 id="form-title">"Start a check"</h2>
            {move || general_error().map(|message| view! { <p class="alert" role="alert">{message}</p> })}
            <ActionForm action=open_case attr:class="case-form" attr:novalidate=true>
                <FormField
                    name="form[host]"
                    id="host"
                    label="Which computer are you connecting to?"
                    hint="Its name or address as you typed it in Remote Desktop, e.g. PC-0423 or 10.20.30.40."
                    value=Signal::derive(move || submitted().host)
                    error=field_error("host")
                    autofocus=true
                />
                <FormField
                    name="form[port]"
                    id="port"
                    label="Port (optional)"
                    hint="Leave empty unless you were given a number after a colon, e.g. PC-0423:3390."
                    value=Signal::derive(move || submitted().port)
                    error=field_error("port")
                    inputmode="numeric"
                />
                <div class="field-row">
                    <FormField
                        name="form[error_code]"
                        id="error_code"
                        label="Error code shown"
                        hint="As in the Remote Desktop window, e.g. 0x904."
                        value=Signal::derive(move || submitted().error_code)
                        error=field_error("error_code")
                    />
                    <FormField
                        name="form[extended_code]"
                        id="extended_code"
                        label="Extended error code (if shown)"
                        hint="e.g. 0x7. Leave empty if there was none."
                        value=Signal::derive(move || submitted().extended_code)
                        error=field_error("extended_code")
                    />
                </div>
                <button type="submit" class="primary" disabled=move || open_case.pending().get()>
                    {move || if open_case.pending().get() { "Starting…" } else { "Check my connection" }}
                </button>
            </ActionForm>
        </section>
        <section class="aside">
            <h2>"What happens next"</h2>
            <ol>
                <li>"We check from the network whether the computer answers Remote Desktop at all."</li>
                <li>"You see what we found in plain words, as soon as each check finishes."</li>
                <li>"If it needs a change on your PC or the remote computer, we suggest the safest fix first."</li>
            </ol>
        </section>
    }
}

/// A labelled text input with its hint and, when refused, its error, wired for screen readers.
#[component]
fn FormField(
    name: &'static str,
    id: &'static str,
    label: &'static str,
    hint: &'static str,
    #[prop(into)] value: Signal<String>,
    #[prop(into)] error: Signal<Option<String>>,
    #[prop(optional)] autofocus: bool,
    #[prop(optional)] inputmode: Option<&'static str>,
) -> impl IntoView {
    let hint_id = format!("{id}-hint");
    let error_id = format!("{id}-error");
    let described_by = {
        let (hint_id, error_id) = (hint_id.clone(), error_id.clone());
        move || {
            if error.get().is_some() {
                format!("{error_id} {hint_id}")
            } else {
                hint_id.clone()
            }
        }
    };
    view! {
        <div class="field" class:has-error=move || error.get().is_some()>
            <label for=id>{label}</label>
            <p class="hint" id=hint_id>{hint}</p>
            {move || error.get().map(|message| view! { <p class="field-error" id=error_id.clone()>{message}</p> })}
            <input
                type="text"
                id=id
                name=name
                prop:value=move || value.get()
                value=move || value.get()
                maxlength="253"
                autocomplete="off"
                spellcheck="false"
                autofocus=autofocus
                inputmode=inputmode
                aria-invalid=move || if error.get().is_some() { "true" } else { "false" }
                aria-describedby=described_by
            />
        </div>
    }
}
