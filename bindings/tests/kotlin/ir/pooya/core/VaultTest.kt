package ir.pooya.core

import java.nio.file.Path
import java.util.concurrent.Callable
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit
import org.junit.After
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Before
import org.junit.Test

/**
 * PooyaApp's vault and app lock through the generated Kotlin API, with Kotlin implementations
 * of every hook: the typed exceptions and their fields (what the app localises), the lockout
 * driven by a Kotlin clock, and biometric unlock through a Kotlin BiometricGate.
 */
class VaultTest {
    private lateinit var dir: Path
    private lateinit var clock: ManualClock
    private lateinit var gate: ScriptedBiometricGate
    private lateinit var keystore: DeviceKeystoreTest.GcmKeystore
    private val password = "pooya-Test-42"

    private fun app(): PooyaApp = PooyaApp(
        dir.resolve("vault.db").toString(), "JVM test", keystore, OfflineTransport(), gate, clock, fastSettings(),
    )

    @Before
    fun setUp() {
        dir = tempDir("pooya-vault-test")
        clock = ManualClock(1_800_000_000L)
        gate = ScriptedBiometricGate()
        keystore = DeviceKeystoreTest.GcmKeystore()
    }

    @After
    fun tearDown() = deleteTree(dir)

    @Test
    fun onboardingThenLockScreen() {
        app().use { app ->
            assertFalse(app.hasVault())
            val none = app.status()
            assertFalse(none.hasVault)
            expectThrows<PooyaException.NoVault> { app.unlockWithPassword(password) }

            val weak = expectThrows<PooyaException.WeakPassword> { app.createVault("123456") }
            assertEquals(PasswordProblem.SEQUENCE, weak.reason)
            assertEquals("weak_password", weak.code())

            app.createVault(password)
            assertTrue(app.isUnlocked())
            assertTrue(keystore.seals.get() >= 1) // the device binding went through the Kotlin keystore
            assertEquals("+989121234567", app.setPhone("۰۹۱۲ ۱۲۳ ۴۵۶۷"))
            expectThrows<PooyaException.PhoneAlreadySet> { app.setPhone("09121234567") }
            assertEquals("+989121234567", app.phone())
            expectThrows<PooyaException.VaultExists> { app.createVault(password) }
            assertTrue(app.cards().isEmpty())
            app.lock()
            expectThrows<PooyaException.Locked> { app.cards() }
        }

        // The app restarts: a new object on the same file, locked.
        app().use { app ->
            val st = app.status()
            assertTrue(st.hasVault && st.locked && st.phoneSet && !st.wiped)
            assertEquals(10u, st.attemptsLeft)
            val wrong = expectThrows<PooyaException.WrongPassword> { app.unlockWithPassword("not-the-password") }
            assertEquals(9u, wrong.attemptsLeft)
            assertEquals("wrong_password", wrong.code())
            assertTrue(wrong.toString().contains("9 attempts left"))
            app.unlockWithPassword(password)
            assertEquals(0u, app.status().failedAttempts) // a good password resets the count

            // Idle lock through the Kotlin clock.
            clock.advance(59)
            assertFalse(app.lockIfIdle())
            clock.advance(61)
            assertTrue(app.lockIfIdle())
            expectThrows<PooyaException.Locked> { app.phone() }
        }
    }

    @Test
    fun lockoutThenWipeThenReset() {
        app().use { app ->
            app.createVault(password)
            app.lock()
            for (left in 9 downTo 5) {
                val e = expectThrows<PooyaException.WrongPassword> { app.unlockWithPassword("wrong-$left") }
                assertEquals(left.toUInt(), e.attemptsLeft)
            }
            // After the 5th failure: 30 s, 1 min, 5 min, 15 min, 1 h.
            val waits = listOf(30L, 60L, 300L, 900L)
            for ((i, wait) in waits.withIndex()) {
                val out = expectThrows<PooyaException.LockedOut> { app.unlockWithPassword(password) }
                assertEquals(wait.toULong(), out.secondsLeft)
                assertEquals("locked_out", out.code())
                assertEquals(wait.toULong(), app.status().lockoutSecondsLeft)
                clock.advance(wait - 1)
                expectThrows<PooyaException.LockedOut> { app.unlockWithPassword(password) }
                clock.advance(1)
                val e = expectThrows<PooyaException.WrongPassword> { app.unlockWithPassword("still-wrong") }
                assertEquals((4 - i).toUInt(), e.attemptsLeft)
            }
            clock.advance(3600)
            expectThrows<PooyaException.Wiped> { app.unlockWithPassword("last-wrong") }
            val st = app.status()
            assertTrue(st.wiped)
            assertEquals(0u, st.attemptsLeft)
            // Even the right password is useless now.
            expectThrows<PooyaException.Wiped> { app.unlockWithPassword(password) }

            // A wiped vault is reset without a password.
            app.resetVault(null)
            assertFalse(app.hasVault())
            app.createVault(password)
            assertEquals(10u, app.status().attemptsLeft)
            // A live one only with its password; a wrong one is counted
            // and deletes nothing.
            expectThrows<PooyaException.PasswordRequired> { app.resetVault(null) }
            val wrong = expectThrows<PooyaException.WrongPassword> { app.resetVault("not-it") }
            assertEquals(9u, wrong.attemptsLeft)
            assertTrue(app.hasVault())
            app.resetVault(password)
            assertFalse(app.hasVault())
        }
    }

    @Test
    fun biometricUnlockAndInvalidation() {
        app().use { app ->
            app.createVault(password)
            expectThrows<PooyaException.BiometricNotEnabled> { app.unlockWithBiometrics() }
            expectThrows<PooyaException.WrongPassword> { app.enableBiometrics("wrong-password") }
            app.enableBiometrics(password)
            assertEquals(1, gate.enrolls.get())
            assertTrue(app.status().biometricEnabled)

            app.lock()
            app.unlockWithBiometrics()
            assertTrue(app.isUnlocked())
            assertEquals(1, gate.prompts.get())

            // The user dismisses the prompt: typed, and the slot stays.
            app.lock()
            gate.nextAnswer = BiometricException.Cancelled()
            expectThrows<PooyaException.BiometricCancelled> { app.unlockWithBiometrics() }
            gate.nextAnswer = BiometricException.Lockout()
            expectThrows<PooyaException.BiometricLockout> { app.unlockWithBiometrics() }
            gate.nextAnswer = BiometricException.Failed("sensor error 7")
            val failed = expectThrows<PooyaException.BiometricFailed> { app.unlockWithBiometrics() }
            assertTrue(failed.details.contains("sensor error 7"))
            assertTrue(app.status().biometricEnabled)

            // A new fingerprint is enrolled on the device: the key is invalidated.
            gate.invalidate()
            val inv = expectThrows<PooyaException.BiometricInvalidated> { app.unlockWithBiometrics() }
            assertEquals("biometric_invalidated", inv.code())
            assertFalse(app.status().biometricEnabled) // slot dropped
            assertEquals(1, gate.removes.get()) // and the platform key deleted through the hook
            expectThrows<PooyaException.BiometricNotEnabled> { app.unlockWithBiometrics() }
            assertFalse(app.isUnlocked())

            // The password is required, and biometrics can be enabled again.
            app.unlockWithPassword(password)
            app.enableBiometrics(password)
            app.lock()
            app.unlockWithBiometrics()
            assertTrue(app.isUnlocked())
        }
    }

    @Test
    fun aHookThatThrowsSomethingElseIsATypedError() {
        app().use { app ->
            app.createVault(password)
            app.enableBiometrics(password)
            app.lock()
        }
        val crashing = object : BiometricGate {
            override fun enroll(plaintext: ByteArray): ByteArray = throw IllegalStateException("boom")
            override fun open(sealed: ByteArray): ByteArray = throw IllegalStateException("boom")
            override fun remove() = Unit
        }
        PooyaApp(dir.resolve("vault.db").toString(), "JVM test", keystore, OfflineTransport(), crashing, clock, fastSettings()).use { app ->
            val e = expectThrows<PooyaException.BiometricFailed> { app.unlockWithBiometrics() }
            assertTrue(e.details, e.details.contains("unexpected host exception"))
            assertTrue(app.status().biometricEnabled)
        }
        // Without a gate (no biometric hardware).
        PooyaApp(dir.resolve("vault.db").toString(), "JVM test", keystore, OfflineTransport(), null, clock, fastSettings()).use { app ->
            expectThrows<PooyaException.BiometricUnavailable> { app.unlockWithBiometrics() }
        }
        // Another device's keystore cannot open this vault's device binding.
        PooyaApp(dir.resolve("vault.db").toString(), "JVM test", DeviceKeystoreTest.GcmKeystore(), OfflineTransport(), null, clock, fastSettings()).use { app ->
            val e = expectThrows<PooyaException.Keystore> { app.unlockWithPassword(password) }
            assertEquals("keystore", e.code())
            assertTrue(e.details.contains("AEADBadTagException"))
        }
    }

    @Test
    fun theDefaultsAreTheSystemClockAndTheDefaultKdf() {
        // biometric, clock and settings left out: no gate, the clock read in Rust, Argon2id 64 MiB x 12.
        PooyaApp(dir.resolve("vault.db").toString(), "JVM test", keystore, OfflineTransport()).use { app ->
            val t0 = System.nanoTime()
            app.createVault(password)
            val kdfMs = (System.nanoTime() - t0) / 1_000_000
            assertTrue(app.isUnlocked())
            expectThrows<PooyaException.BiometricUnavailable> { app.enableBiometrics(password) }
            // The built-in clock is the wall clock: a PIN-free way to see it is the idle lock not firing.
            assertFalse(app.lockIfIdle())
            println("createVault with the default KDF: $kdfMs ms")
        }
    }

    @Test
    fun settingsBelowTheFloorsAreRefused() {
        val e = expectThrows<PooyaException.InvalidConfig> {
            PooyaApp(dir.resolve("v.db").toString(), "JVM test", keystore, OfflineTransport(), null, clock,
                fastSettings().copy(kdfMemoryKib = 4096u))
        }
        assertEquals("invalid_config", e.code())
        expectThrows<PooyaException.InvalidConfig> {
            PooyaApp(dir.resolve("v.db").toString(), "JVM test", keystore, OfflineTransport(), null, clock,
                fastSettings().copy(idleTimeoutSecs = 3600uL))
        }
        assertEquals(65536u, defaultVaultSettings().kdfMemoryKib)
    }

    @Test
    fun oneObjectIsSafeFromManyThreads() {
        app().use { app ->
            app.createVault(password)
            val pool = Executors.newFixedThreadPool(8)
            try {
                val jobs = (0 until 8).map { t ->
                    Callable {
                        repeat(25) { i ->
                            when ((t + i) % 4) {
                                0 -> app.status()
                                1 -> app.isUnlocked()
                                2 -> app.lock()
                                else -> try {
                                    app.cards()
                                } catch (e: PooyaException.Locked) {
                                    // another thread locked it: a typed answer, not a crash
                                }
                            }
                        }
                        true
                    }
                }
                assertTrue(pool.invokeAll(jobs).all { it.get() })
            } finally {
                pool.shutdown()
                pool.awaitTermination(10, TimeUnit.SECONDS)
            }
            app.unlockWithPassword(password)
            assertNull(app.issuers().firstOrNull())
        }
    }
}
