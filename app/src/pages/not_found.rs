//! The page for an address that does not exist.

use leptos::prelude::*;
use leptos_meta::Title;

/// 404: says so, and offers the way back.
#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Page not found"/>
        <h1>"This page does not exist"</h1>
        <p><a href="/">"Start a new case"</a></p>
    }
}
