//! A case: what the employee reported, and each check's result as soon as it arrives.
//!
//! The page is rendered complete on the server. In the browser it then follows the case's
//! event stream, so results appear without a reload; without JavaScript, the page refreshes
//! itself while a check is still running.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::case::{format_code, CaseView};
use crate::components::check_result::CheckResult;
use crate::components::diagnosis_panel::DiagnosisPanel;
use crate::components::fix_runs::FixRuns;
use crate::error::PortalError;
use crate::server_fns::load_case;

/// Where the browser follows a case's changes (server-sent events, one JSON `CaseView` each).
pub fn events_url(case_id: &str) -> String {
    format!("/api/v1/cases/{case_id}/events")
}

#[component]
pub fn CasePage() -> impl IntoView {
    let params = use_params_map();
    let case_id = move || params.read().get("id").unwrap_or_default();
    let case = Resource::new(case_id, load_case);
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading your case…"</p> }>
            {move || Suspend::new(async move {
                match case.await {
                    Ok(case) => view! { <CaseDetails case/> }.into_any(),
                    Err(error) => view! { <CaseError error/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn CaseError(error: PortalError) -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(match error {
            PortalError::CaseNotFound => http::StatusCode::NOT_FOUND,
            _ => http::StatusCode::SERVICE_UNAVAILABLE,
        });
    }
    view! {
        <Title text="Case not available"/>
        <h1>"We can't show this case"</h1>
        <p class="alert" role="alert">{error.to_string()}</p>
        <p><a href="/">"Start a new case"</a></p>
    }
}

#[component]
fn CaseDetails(case: CaseView) -> impl IntoView {
    let current = RwSignal::new(case);
    follow_case_events(current);
    let short_id = move || current.with(|c| c.id.chars().take(8).collect::<String>());
    let codes = move || {
        current.with(|c| match (c.error_code, c.extended_code) {
            (Some(code), Some(ext)) => {
                format!("{} (extended {})", format_code(code), format_code(ext))
            }
            (Some(code), None) => format_code(code),
            (None, Some(ext)) => format!("extended {}", format_code(ext)),
            (None, None) => "not given".to_owned(),
        })
    };
    let settled = move || current.with(CaseView::is_settled);
    view! {
        <Title text=move || format!("Case {}", short_id())/>
        <h1>"Connecting to " {move || current.with(|c| c.target_host.clone())}</h1>
        <dl class="case-facts">
            <dt>"Case"</dt><dd><code>{short_id}</code></dd>
            <dt>"Computer"</dt><dd>{move || current.with(|c| format!("{} (port {})", c.target_host, c.target_port))}</dd>
            <dt>"Error code"</dt><dd>{codes}</dd>
        </dl>
        <DiagnosisPanel
            case_id=current.with_untracked(|c| c.id.clone())
            // A memo: only a change of the diagnosis itself replaces the browser's preview.
            diagnosis=Memo::new(move |_| current.with(|c| c.diagnosis.clone()))
            checks=Signal::derive(move || current.with(|c| c.checks.clone()))
        />
        <FixRuns
            case_id=current.with_untracked(|c| c.id.clone())
            runs=Signal::derive(move || current.with(|c| c.fixes.clone()))
        />
        <section aria-labelledby="checks-title">
            <h2 id="checks-title">"What we checked"</h2>
            <div aria-live="polite" aria-busy=move || (!settled()).to_string()>
                <For
                    each=move || current.with(|c| c.checks.clone().into_iter().enumerate().collect::<Vec<_>>())
                    key=|(index, run)| (*index, run.status, run.report.is_some())
                    children=move |(_, run)| view! { <CheckResult run/> }
                />
            </div>
            <Show when=move || !settled()>
                // Without JavaScript nobody pushes the result: refresh until it is there.
                <div inner_html=r#"<noscript><meta http-equiv="refresh" content="2"><p class="hint">This page refreshes by itself until the check finishes. <a href="">Refresh now</a></p></noscript>"#></div>
            </Show>
        </section>
        <p class="next-step"><a href="/">"Check another computer"</a></p>
    }
}

/// Keeps `current` in step with the server while the case is open in a browser.
#[cfg(feature = "hydrate")]
fn follow_case_events(current: RwSignal<CaseView>) {
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsCast;

    // Stays open while the page is: checks finish, and answers move the diagnosis.
    let id = current.with_untracked(|c| c.id.clone());
    let Ok(source) = web_sys::EventSource::new(&events_url(&id)) else {
        return;
    };
    let on_message =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |event: web_sys::MessageEvent| {
            let Some(text) = event.data().as_string() else {
                return;
            };
            if let Ok(case) = serde_json::from_str::<CaseView>(&text) {
                current.set(case);
            }
        });
    source.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    // The browser objects are not Send; they only ever live on the page's one thread.
    let listener = send_wrapper::SendWrapper::new((source, on_message));
    on_cleanup(move || {
        let (source, on_message) = listener.take();
        source.close();
        drop(on_message);
    });
}

#[cfg(not(feature = "hydrate"))]
fn follow_case_events(_current: RwSignal<CaseView>) {}
