//! uniffi bindings of `pooya-core` for Kotlin and Swift: thin wrappers only.
