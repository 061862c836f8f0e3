import CryptoKit
import Foundation
import PooyaCore
import Security

/// The core's `DeviceKeystore` hook: a P-256 private key generated inside the Secure Enclave,
/// which never leaves it, needs no user authentication and is bound to this device and to its
/// unlocked state (`kSecAttrAccessibleWhenUnlockedThisDeviceOnly`: not in backups, and unusable
/// while the device is locked, so a stolen locked phone cannot open the device secret; the core
/// reports that as `Keystore` without counting a wrong password). A key created by an earlier
/// version keeps the class it was created with until the vault is reset (docs/security.md,
/// "Platform keys"). Sealing is
/// ECIES with AES-GCM (`eciesEncryptionCofactorVariableIVX963SHA256AESGCM`), an authenticated
/// scheme: an altered blob fails to open.
///
/// Blob format: `0x01 ‖ ECIES ciphertext` (ephemeral public key ‖ ciphertext ‖ tag).
///
/// Where there is no Secure Enclave (the simulator, Macs without a T2/Apple silicon) the same
/// key is an ordinary Keychain key (still this-device-only); `useSecureEnclave` says which.
/// Run `checkDeviceKeystore(keystore:)` once on first start.
public final class SecureEnclaveDeviceKeystore: DeviceKeystore, @unchecked Sendable {
    private static let version: UInt8 = 1
    private static let algorithm: SecKeyAlgorithm = .eciesEncryptionCofactorVariableIVX963SHA256AESGCM

    /// Whether the key lives in the Secure Enclave.
    public let useSecureEnclave: Bool
    private let tag: Data
    private let lock = NSLock()

    public init(tag: String = "ir.pooya.device.v1", useSecureEnclave: Bool = SecureEnclave.isAvailable) {
        self.tag = Data(tag.utf8)
        self.useSecureEnclave = useSecureEnclave
    }

    public func seal(plaintext: Data) throws -> Data {
        let key = try privateKey(createIfMissing: true)
        guard let publicKey = SecKeyCopyPublicKey(key) else {
            throw HostError.Failed(details: "the device key has no public key")
        }
        var error: Unmanaged<CFError>?
        guard let sealed = SecKeyCreateEncryptedData(publicKey, Self.algorithm, plaintext as CFData, &error) else {
            throw Self.failure("SecKeyCreateEncryptedData", error)
        }
        return Data([Self.version]) + (sealed as Data)
    }

    public func `open`(sealed: Data) throws -> Data {
        guard sealed.count > 1, sealed.first == Self.version else {
            throw HostError.Failed(details: "not a device-keystore blob")
        }
        let key = try privateKey(createIfMissing: false)
        var error: Unmanaged<CFError>?
        guard let plain = SecKeyCreateDecryptedData(key, Self.algorithm, Data(sealed.dropFirst()) as CFData, &error) else {
            throw Self.failure("SecKeyCreateDecryptedData", error)
        }
        return plain as Data
    }

    private func privateKey(createIfMissing: Bool) throws -> SecKey {
        lock.lock()
        defer { lock.unlock() }
        let query: [String: Any] = [
            kSecClass as String: kSecClassKey,
            kSecAttrApplicationTag as String: tag,
            kSecAttrKeyType as String: kSecAttrKeyTypeECSECPrimeRandom,
            kSecReturnRef as String: true,
        ]
        var item: CFTypeRef?
        let status = SecItemCopyMatching(query as CFDictionary, &item)
        if status == errSecSuccess, let item {
            return (item as! SecKey) // swiftlint:disable:this force_cast (CF type: the cast cannot fail)
        }
        guard status == errSecItemNotFound else {
            throw HostError.Failed(details: "SecItemCopyMatching \(status)")
        }
        guard createIfMissing else {
            throw HostError.Failed(details: "the device key does not exist")
        }
        var error: Unmanaged<CFError>?
        let flags: SecAccessControlCreateFlags = useSecureEnclave ? [.privateKeyUsage] : []
        guard let access = SecAccessControlCreateWithFlags(
            nil, kSecAttrAccessibleWhenUnlockedThisDeviceOnly, flags, &error
        ) else {
            throw Self.failure("SecAccessControlCreateWithFlags", error)
        }
        var attributes: [String: Any] = [
            kSecAttrKeyType as String: kSecAttrKeyTypeECSECPrimeRandom,
            kSecAttrKeySizeInBits as String: 256,
            kSecPrivateKeyAttrs as String: [
                kSecAttrIsPermanent as String: true,
                kSecAttrApplicationTag as String: tag,
                kSecAttrAccessControl as String: access,
            ] as [String: Any],
        ]
        if useSecureEnclave {
            attributes[kSecAttrTokenID as String] = kSecAttrTokenIDSecureEnclave
        }
        guard let key = SecKeyCreateRandomKey(attributes as CFDictionary, &error) else {
            throw Self.failure("SecKeyCreateRandomKey", error)
        }
        return key
    }

    private static func failure(_ what: String, _ error: Unmanaged<CFError>?) -> HostError {
        let description = error.map { String(describing: $0.takeRetainedValue()) } ?? "unknown error"
        return HostError.Failed(details: "\(what): \(description)")
    }
}
