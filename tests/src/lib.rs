//! End-to-end tests of Pooya: the phone core (`pooya_core::Phone`) against
//! a real issuer (`pooya-issuer`) over HTTP on 127.0.0.1. The tests are in
//! `tests/tests/`; the `pooya` binary's own end-to-end run (init → card
//! add → cap set → pin → the bank's verdict) is in `cli/tests/flow.rs`,
//! where Cargo provides the binary's path.
