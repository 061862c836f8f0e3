//! End-to-end tests of Pooya: the phone core against a real issuer over HTTP.
