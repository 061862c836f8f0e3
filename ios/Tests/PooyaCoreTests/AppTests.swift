import CryptoKit
import Foundation
import PooyaCore
import XCTest

/// Mirrors bindings/tests/kotlin/.../VaultTest.kt: PooyaApp's vault and app lock through the
/// generated Swift API with Swift implementations of every hook (the issuer-backed tests run on
/// the JVM, where `cargo xtask kotlin` starts the issuer).
final class AppTests: XCTestCase {
    /// A clock the test moves by hand.
    final class ManualClock: Clock, @unchecked Sendable {
        private let lock = NSLock()
        private var now: UInt64
        private var sinceBootMs: UInt64 = 0
        init(_ start: UInt64) { now = start }
        func nowUnix() -> UInt64 { lock.lock(); defer { lock.unlock() }; return now }
        func bootTime() -> BootTime? {
            lock.lock(); defer { lock.unlock() }
            return BootTime(bootId: "swift-test-boot", sinceBootMs: sinceBootMs)
        }
        func advance(_ seconds: UInt64) {
            lock.lock(); now += seconds; sinceBootMs += seconds * 1000; lock.unlock()
        }
    }

    /// A software stand-in for KeychainBiometricGate: the key lives in memory; `invalidate()`
    /// deletes it, as a biometric enrollment change does to a `.biometryCurrentSet` item.
    final class ScriptedGate: BiometricGate, @unchecked Sendable {
        private let lock = NSLock()
        private var key: SymmetricKey?
        var nextAnswer: BiometricError?
        private(set) var prompts = 0
        private(set) var removes = 0

        func enroll(plaintext: Data) throws -> Data {
            let k = SymmetricKey(size: .bits256)
            lock.lock(); key = k; lock.unlock()
            guard let sealed = try AES.GCM.seal(plaintext, using: k).combined else {
                throw BiometricError.Failed(details: "no combined form")
            }
            return sealed
        }

        func `open`(sealed: Data) throws -> Data {
            lock.lock()
            prompts += 1
            let answer = nextAnswer
            nextAnswer = nil
            let k = key
            lock.unlock()
            if let answer { throw answer }
            guard let k else { throw BiometricError.Invalidated }
            do {
                return try AES.GCM.open(AES.GCM.SealedBox(combined: sealed), using: k)
            } catch {
                throw BiometricError.Failed(details: "authentication failure")
            }
        }

        func remove() throws {
            lock.lock(); removes += 1; key = nil; lock.unlock()
        }

        func invalidate() { lock.lock(); key = nil; lock.unlock() }
    }

    /// No network at all.
    final class OfflineTransport: Transport, @unchecked Sendable {
        func postJson(url: String, body: Data, timeoutMs: UInt64) async throws -> HttpResponse {
            throw HostError.Failed(details: "NSURLErrorNotConnectedToInternet")
        }
    }

    private var dir: URL!
    private let password = "pooya-Test-42"
    private let clock = ManualClock(1_800_000_000)
    private let gate = ScriptedGate()
    private let keystore = DeviceKeystoreTests.GcmKeystore()

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("pooya-app-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    private func fastSettings() -> VaultSettings {
        var s = defaultVaultSettings()
        s.kdfMemoryKib = 19 * 1024
        s.kdfIterations = 2
        s.idleTimeoutSecs = 60
        return s
    }

    private func app() throws -> PooyaApp {
        try PooyaApp(
            vaultPath: dir.appendingPathComponent("vault.db").path, deviceLabel: "XCTest",
            keystore: keystore, transport: OfflineTransport(), biometric: gate,
            clock: clock, settings: fastSettings())
    }

    func testOnboardingThenLockScreen() throws {
        let a = try app()
        XCTAssertFalse(try a.hasVault())
        XCTAssertThrowsError(try a.createVault(password: "123456")) { error in
            guard case let PooyaError.WeakPassword(reason) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(reason, .sequence)
        }
        try a.createVault(password: password)
        XCTAssertTrue(a.isUnlocked())
        XCTAssertEqual(try a.setPhone(phone: "۰۹۱۲ ۱۲۳ ۴۵۶۷"), "+989121234567")
        a.lock()
        XCTAssertThrowsError(try a.cards()) { error in
            guard case PooyaError.Locked = error else { return XCTFail("\(error)") }
        }

        // The app restarts: a new object on the same file.
        let b = try app()
        let st = try b.status()
        XCTAssertTrue(st.hasVault && st.locked && st.phoneSet)
        XCTAssertThrowsError(try b.unlockWithPassword(password: "not-the-password")) { error in
            guard case let PooyaError.WrongPassword(attemptsLeft) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(attemptsLeft, 9)
            XCTAssertEqual((error as? PooyaError)?.localizationKey, "pooya.error.wrong_password")
        }
        try b.unlockWithPassword(password: password)
        clock.advance(61)
        XCTAssertTrue(b.lockIfIdle())
    }

    func testLockoutThenWipe() throws {
        let a = try app()
        try a.createVault(password: password)
        a.lock()
        for left: UInt32 in stride(from: 9, through: 5, by: -1) {
            XCTAssertThrowsError(try a.unlockWithPassword(password: "wrong-\(left)")) { error in
                guard case let PooyaError.WrongPassword(attemptsLeft) = error else { return XCTFail("\(error)") }
                XCTAssertEqual(attemptsLeft, left)
            }
        }
        for (i, wait) in [UInt64(30), 60, 300, 900].enumerated() {
            XCTAssertThrowsError(try a.unlockWithPassword(password: password)) { error in
                guard case let PooyaError.LockedOut(secondsLeft) = error else { return XCTFail("\(error)") }
                XCTAssertEqual(secondsLeft, wait)
            }
            clock.advance(wait)
            XCTAssertThrowsError(try a.unlockWithPassword(password: "still-wrong")) { error in
                guard case let PooyaError.WrongPassword(attemptsLeft) = error else { return XCTFail("\(error)") }
                XCTAssertEqual(attemptsLeft, UInt32(4 - i))
            }
        }
        clock.advance(3600)
        XCTAssertThrowsError(try a.unlockWithPassword(password: "last-wrong")) { error in
            guard case PooyaError.Wiped = error else { return XCTFail("\(error)") }
        }
        XCTAssertTrue(try a.status().wiped)
        // A wiped vault is reset without a password.
        try a.resetVault(password: nil)
        XCTAssertFalse(try a.hasVault())
        // A live one only with its password; a wrong one is counted.
        try a.createVault(password: password)
        XCTAssertThrowsError(try a.resetVault(password: nil)) { error in
            guard case PooyaError.PasswordRequired = error else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try a.resetVault(password: "not-it")) { error in
            guard case let PooyaError.WrongPassword(attemptsLeft) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(attemptsLeft, 9)
        }
        XCTAssertTrue(try a.hasVault())
        try a.resetVault(password: password)
        XCTAssertFalse(try a.hasVault())
    }

    func testBiometricInvalidationDropsTheSlot() throws {
        let a = try app()
        try a.createVault(password: password)
        try a.enableBiometrics(password: password)
        a.lock()
        try a.unlockWithBiometrics()
        XCTAssertTrue(a.isUnlocked())

        a.lock()
        gate.nextAnswer = .Cancelled
        XCTAssertThrowsError(try a.unlockWithBiometrics()) { error in
            guard case PooyaError.BiometricCancelled = error else { return XCTFail("\(error)") }
        }
        XCTAssertTrue(try a.status().biometricEnabled)

        gate.invalidate()
        XCTAssertThrowsError(try a.unlockWithBiometrics()) { error in
            guard case PooyaError.BiometricInvalidated = error else { return XCTFail("\(error)") }
        }
        XCTAssertFalse(try a.status().biometricEnabled)
        XCTAssertEqual(gate.removes, 1)
        XCTAssertThrowsError(try a.unlockWithBiometrics()) { error in
            guard case PooyaError.BiometricNotEnabled = error else { return XCTFail("\(error)") }
        }
        try a.unlockWithPassword(password: password)
    }

    func testTransportFailureIsATypedError() async throws {
        let a = try app()
        try a.createVault(password: password)
        _ = try a.setPhone(phone: "09121234567")
        // Any point on P-256 will do as the activation key (here its generator, SEC1 uncompressed):
        // the request is sealed, then the Transport fails.
        let p256Generator = "04"
            + "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
            + "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5"
        _ = try a.addIssuer(
            name: "bank", baseUrl: "https://bank.example",
            publicKey: String(repeating: "ab", count: 32), activationKey: p256Generator)
        do {
            // 1234567897 has a valid check digit: the Transport is called and throws.
            _ = try await a.addCard(issuer: "bank", code: "1234-5678-97", label: nil)
            XCTFail("addCard succeeded offline")
        } catch let PooyaError.Network(details) {
            XCTAssertTrue(details.contains("NotConnectedToInternet"), details)
        }
        do {
            _ = try await a.addCard(issuer: "bank", code: "1234567898", label: nil)
            XCTFail("a typo was accepted")
        } catch PooyaError.InvalidActivationCode {
        }
        XCTAssertTrue(try a.cards().isEmpty)
    }
}
