//! One module per page of the portal.

pub mod case_page;
pub mod home;
pub mod not_found;
