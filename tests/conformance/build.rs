//! Link the PV test kernel with its own linker script (only for the bare-metal target).
include!("../../linker/link.rs");

fn main() {
    link_with_script("../../linker/conformance.ld");
}
