//! `pooya`: the desktop shell of the Pooya phone core.

fn main() {}
