//! The host-side formats of `cocoon-image` (images, xl's config and disk
//! syntax), for the tool and for tests.

pub mod bzimage;
pub mod disk;
pub mod diskspec;
pub mod xlcfg;
