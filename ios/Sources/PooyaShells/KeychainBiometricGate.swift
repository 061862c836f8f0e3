import Foundation
import LocalAuthentication
import PooyaCore
import Security

/// The core's `BiometricGate` hook: the secret is kept in a Keychain item whose access control
/// is `.biometryCurrentSet` (Face ID / Touch ID of the enrollment at the time it was stored; no
/// device-passcode fallback: the app password is the fallback, enforced by the core), readable
/// only on this device while a passcode is set (`kSecAttrAccessibleWhenPasscodeSetThisDeviceOnly`).
///
/// The "sealed" value handed to the core is a reference to that item: `0x01 ‖ item account (UUID)`.
///
/// Outcomes: a biometric enrollment change makes the item unreadable (`errSecItemNotFound`)
/// → `BiometricError.Invalidated`, and the core then drops its biometric slot and asks for the
/// password; user cancel → `.Cancelled`; biometry locked out → `.Lockout`; no biometry or none
/// enrolled → `.Unavailable`.
///
/// Threading: reading the item shows the system prompt and **blocks**; the core calls it on
/// the thread the app called the core on, which must not be the main thread. A call on the
/// main thread fails at once with `.Failed` instead of freezing the UI.
public final class KeychainBiometricGate: BiometricGate, @unchecked Sendable {
    private static let version: UInt8 = 1
    private let service: String
    private let reason: String

    /// - Parameters:
    ///   - service: the Keychain service the item is stored under.
    ///   - reason: the text shown in the Touch ID prompt (Face ID uses the app's
    ///     `NSFaceIDUsageDescription`).
    public init(service: String = "ir.pooya.biometric.v1", reason: String) {
        self.service = service
        self.reason = reason
    }

    public func enroll(plaintext: Data) throws -> Data {
        try Self.ensureBackgroundThread()
        try Self.ensureAvailable()
        try remove()
        var error: Unmanaged<CFError>?
        guard let access = SecAccessControlCreateWithFlags(
            nil, kSecAttrAccessibleWhenPasscodeSetThisDeviceOnly, [.biometryCurrentSet], &error
        ) else {
            let description = error.map { String(describing: $0.takeRetainedValue()) } ?? "unknown error"
            throw BiometricError.Failed(details: "SecAccessControlCreateWithFlags: \(description)")
        }
        let account = UUID().uuidString
        let attributes: [String: Any] = [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: service,
            kSecAttrAccount as String: account,
            kSecAttrAccessControl as String: access,
            kSecValueData as String: plaintext,
        ]
        let status = SecItemAdd(attributes as CFDictionary, nil)
        guard status == errSecSuccess else {
            throw BiometricError.Failed(details: "SecItemAdd \(status)")
        }
        return Data([Self.version]) + Data(account.utf8)
    }

    public func `open`(sealed: Data) throws -> Data {
        try Self.ensureBackgroundThread()
        guard sealed.count > 1, sealed.first == Self.version,
              let account = String(data: Data(sealed.dropFirst()), encoding: .utf8)
        else {
            throw BiometricError.Failed(details: "not a biometric blob")
        }
        try Self.ensureAvailable()
        let context = LAContext()
        context.localizedReason = reason
        context.localizedFallbackTitle = "" // no "Enter Passcode" button
        let query: [String: Any] = [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: service,
            kSecAttrAccount as String: account,
            kSecReturnData as String: true,
            kSecMatchLimit as String: kSecMatchLimitOne,
            kSecUseAuthenticationContext as String: context,
        ]
        var item: CFTypeRef?
        let status = SecItemCopyMatching(query as CFDictionary, &item)
        switch status {
        case errSecSuccess:
            guard let data = item as? Data else {
                throw BiometricError.Failed(details: "the Keychain returned no data")
            }
            return data
        case errSecUserCanceled:
            throw BiometricError.Cancelled
        case errSecItemNotFound:
            // `.biometryCurrentSet`: the enrollment changed (or the passcode was removed) and
            // the item can no longer be read.
            throw BiometricError.Invalidated
        case errSecAuthFailed:
            throw Self.isLockedOut() ? BiometricError.Lockout : BiometricError.Failed(details: "authentication failed")
        default:
            throw BiometricError.Failed(details: "SecItemCopyMatching \(status)")
        }
    }

    public func remove() throws {
        let query: [String: Any] = [
            kSecClass as String: kSecClassGenericPassword,
            kSecAttrService as String: service,
        ]
        let status = SecItemDelete(query as CFDictionary)
        guard status == errSecSuccess || status == errSecItemNotFound else {
            throw BiometricError.Failed(details: "SecItemDelete \(status)")
        }
    }

    private static func ensureBackgroundThread() throws {
        if Thread.isMainThread {
            throw BiometricError.Failed(details: "called on the main thread: call Pooya from a background queue")
        }
    }

    private static func ensureAvailable() throws {
        var error: NSError?
        if LAContext().canEvaluatePolicy(.deviceOwnerAuthenticationWithBiometrics, error: &error) {
            return
        }
        if let code = error.flatMap({ LAError.Code(rawValue: $0.code) }), code == .biometryLockout {
            throw BiometricError.Lockout
        }
        throw BiometricError.Unavailable
    }

    private static func isLockedOut() -> Bool {
        var error: NSError?
        _ = LAContext().canEvaluatePolicy(.deviceOwnerAuthenticationWithBiometrics, error: &error)
        return error.flatMap { LAError.Code(rawValue: $0.code) } == .biometryLockout
    }
}
