//! `cargo xtask`: build and test automation for the Pooya workspace.

fn main() {}
