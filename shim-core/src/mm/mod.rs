//! Guest memory management: page-table walks (and, to come, the checked
//! page-table updates of the MMU hypercalls).

pub mod balloon;
pub mod frames;
pub mod walk;
