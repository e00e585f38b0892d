//! Pieces shared by several pages.

pub mod check_result;
pub mod diagnosis_panel;
pub mod fix_runs;
