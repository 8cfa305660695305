//! The host-side image formats of `cocoon-image`, for the tool and for tests.

pub mod bzimage;
pub mod disk;
