//! The RDP Doctor portal: what an employee sees when Remote Desktop fails.
//!
//! Rendered on the server (`ssr`) and hydrated in the browser (`hydrate`); every page also
//! works with plain form posts when JavaScript is off. Server-only code sits behind the
//! `ssr` feature; the server crate provides the [`backend::Portal`] that server functions use.
// The case page nests enough views that the hydrate build needs more than the default.
#![recursion_limit = "256"]

pub mod case;
pub mod components;
pub mod diagnosis;
pub mod error;
pub mod pages;
pub mod server_fns;

#[cfg(feature = "ssr")]
pub mod backend;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{path, SsrMode};

use crate::pages::{case_page::CasePage, home::HomePage, not_found::NotFound};

/// The name of the WebAssembly bundle and stylesheet under `/pkg`.
pub const OUTPUT_NAME: &str = "rdp_doctor";

/// The HTML document around the application.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" href="data:,"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The application: a header, the routed page, a footer.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Effects run only in the browser: this turns true once the page is hydrated, which
    // tests (and curious helpdesk staff) can read from `data-hydrated`.
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    view! {
        <Stylesheet id="rdp-doctor" href=format!("/pkg/{OUTPUT_NAME}.css")/>
        <Title formatter=|page: String| if page.is_empty() { "RDP Doctor".to_owned() } else { format!("{page} · RDP Doctor") }/>
        <Router>
            <a class="skip-link" href="#main">"Skip to content"</a>
            <header class="site-header">
                <a class="brand" href="/">"RDP Doctor"</a>
                <span class="tagline">"Help when Remote Desktop won't connect"</span>
            </header>
            <main id="main" tabindex="-1" data-hydrated=move || hydrated.get().to_string()>
                <Routes fallback=NotFound>
                    <Route path=path!("/") view=HomePage/>
                    // Rendered whole before sending: the page must be complete without JavaScript, and
                    // its status (404 for an unknown case) must be known before the first byte.
                    <Route path=path!("/cases/:id") view=CasePage ssr=SsrMode::Async/>
                </Routes>
            </main>
            <footer class="site-footer">
                "Still stuck? The IT helpdesk sees everything RDP Doctor found for your case."
            </footer>
        </Router>
    }
}

/// Entry point of the WebAssembly bundle: hydrates the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
}
