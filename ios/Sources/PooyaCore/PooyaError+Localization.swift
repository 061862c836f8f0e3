import Foundation

// The generated PooyaCore.swift (placed beside this file by build-xcframework.sh) declares
// PooyaError with a stable `code()`; this gives apps one key per code for Localizable.strings.
extension PooyaError {
    /// `pooya.error.<code>`, e.g. `pooya.error.invalid_amount`: the key to localize this error on.
    public var localizationKey: String { "pooya.error." + code() }
}
