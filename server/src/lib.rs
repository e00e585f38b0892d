//! The RDP Doctor server: the employee portal (Leptos, rendered here and hydrated in the
//! browser), the agents' API, enrollment, the dispatch of checks to agents, and the
//! PostgreSQL database (a private cluster unless `DATABASE_URL` names one).
//!
//! Start reading at [`cli`] (what the binary can do), then [`startup`] (how the HTTP
//! application is assembled) and [`http`] (every route, grouped by caller).

pub mod agents;
pub mod cases;
pub mod cli;
pub mod config;
pub mod db;
pub mod diagnosis;
pub mod dispatch;
pub mod embedded_pg;
pub mod enrollment;
pub mod events;
pub mod fixes;
pub mod helpdesk;
pub mod http;
pub mod keys;
pub mod portal;
pub mod startup;
pub mod telemetry;
