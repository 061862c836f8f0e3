import CryptoKit
import Foundation
import PooyaCore
import PooyaShells
import XCTest

/// Mirrors DeviceKeystoreTest.kt: Swift implementations of the DeviceKeystore foreign trait,
/// called back from Rust by `checkDeviceKeystore`.
final class DeviceKeystoreTests: XCTestCase {
    /// AES-256-GCM in software (CryptoKit), nonce ‖ ciphertext ‖ tag.
    class GcmKeystore: DeviceKeystore, @unchecked Sendable {
        let key = SymmetricKey(size: .bits256)
        private let lock = NSLock()
        private(set) var seals = 0
        private(set) var opens = 0

        func seal(plaintext: Data) throws -> Data {
            lock.lock(); seals += 1; lock.unlock()
            guard let combined = try AES.GCM.seal(plaintext, using: key).combined else {
                throw HostError.Failed(details: "no combined form")
            }
            return combined
        }

        func `open`(sealed: Data) throws -> Data {
            lock.lock(); opens += 1; lock.unlock()
            do {
                return try AES.GCM.open(AES.GCM.SealedBox(combined: sealed), using: key)
            } catch {
                throw HostError.Failed(details: "authentication failure")
            }
        }
    }

    /// XOR with a random pad: hides the bytes but authenticates nothing.
    final class XorKeystore: DeviceKeystore, @unchecked Sendable {
        let pad = (0..<64).map { _ in UInt8.random(in: 1...255) }
        func seal(plaintext: Data) throws -> Data { Data(plaintext.enumerated().map { $0.element ^ pad[$0.offset] }) }
        func `open`(sealed: Data) throws -> Data { Data(sealed.enumerated().map { $0.element ^ pad[$0.offset] }) }
    }

    final class IdentityKeystore: DeviceKeystore, @unchecked Sendable {
        func seal(plaintext: Data) throws -> Data { plaintext }
        func `open`(sealed: Data) throws -> Data { sealed }
    }

    final class ForgetfulKeystore: GcmKeystore {
        override func `open`(sealed: Data) throws -> Data { Data(count: 32) }
    }

    struct ShellBug: Error, CustomStringConvertible {
        var description: String { "bug in the shell" }
    }

    final class ThrowingKeystore: DeviceKeystore, @unchecked Sendable {
        let declared: Bool
        init(declared: Bool) { self.declared = declared }
        func seal(plaintext: Data) throws -> Data {
            if declared { throw HostError.Failed(details: "errSecInteractionNotAllowed") }
            throw ShellBug()
        }
        func `open`(sealed: Data) throws -> Data { XCTFail("not reached"); return sealed }
    }

    func testAGcmKeystorePassesAndIsCalledBackFromRust() throws {
        let ks = GcmKeystore()
        try checkDeviceKeystore(keystore: ks)
        XCTAssertEqual(ks.seals, 1)
        XCTAssertEqual(ks.opens, 2) // the genuine blob, then the tampered one
    }

    func testBrokenKeystoresAreRefused() {
        let cases: [(DeviceKeystore, String)] = [
            (IdentityKeystore(), "plaintext"),
            (XorKeystore(), "not authenticated"),
            (ForgetfulKeystore(), "did not give back"),
        ]
        for (keystore, words) in cases {
            XCTAssertThrowsError(try checkDeviceKeystore(keystore: keystore)) { error in
                guard case let PooyaError.KeystoreUnusable(reason) = error else { return XCTFail("\(error)") }
                XCTAssertTrue(reason.contains(words), reason)
                XCTAssertEqual((error as? PooyaError)?.code(), "keystore_unusable")
            }
        }
    }

    func testHostErrorsBecomeHostFailure() {
        XCTAssertThrowsError(try checkDeviceKeystore(keystore: ThrowingKeystore(declared: true))) { error in
            guard case let PooyaError.HostFailure(details) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(details, "errSecInteractionNotAllowed")
        }
        XCTAssertThrowsError(try checkDeviceKeystore(keystore: ThrowingKeystore(declared: false))) { error in
            guard case let PooyaError.HostFailure(details) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(details.contains("unexpected host exception"), details)
        }
    }

    func testCallbacksWorkFromManyThreadsAtOnce() {
        let ks = GcmKeystore()
        let failures = NSLock()
        var failed = 0
        DispatchQueue.concurrentPerform(iterations: 200) { _ in
            do { try checkDeviceKeystore(keystore: ks) } catch {
                failures.lock(); failed += 1; failures.unlock()
            }
        }
        XCTAssertEqual(failed, 0)
        XCTAssertEqual(ks.seals, 200)
        XCTAssertEqual(ks.opens, 400)
    }

    /// The real shell: needs a Keychain, so run the tests with an app host
    /// on iOS or as a signed test bundle on macOS; without the entitlement
    /// this fails with errSecMissingEntitlement (-34018) rather than being
    /// skipped.
    func testSecureEnclaveDeviceKeystorePassesTheSelfCheck() throws {
        let ks = SecureEnclaveDeviceKeystore(tag: "ir.pooya.tests.\(UUID().uuidString)")
        try checkDeviceKeystore(keystore: ks)
    }
}
