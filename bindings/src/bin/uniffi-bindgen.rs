//! The workspace's `uniffi-bindgen`: generates the Kotlin and Swift
//! bindings from the built `pooya-ffi` library (library mode), with the
//! exact uniffi version the library was built with.
//!
//! `cargo run -p pooya-ffi --features cli --bin uniffi-bindgen -- generate
//! --library target/debug/libpooya_ffi.so --language kotlin --out-dir OUT`

fn main() {
    uniffi::uniffi_bindgen_main();
}
