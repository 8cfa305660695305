//! Link the firmware with Cocoon's own linker script (only for the bare-metal target).
include!("../linker/link.rs");

fn main() {
    link_with_script("../linker/cocoon.ld");
}
