package ir.pooya.core

import ir.pooya.protocol.*
import java.nio.file.Path
import org.junit.After
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Before
import org.junit.Test

/**
 * Standard OTP accounts through the generated Kotlin API: the records and the sealed kind as
 * Kotlin sees them, a code at a Kotlin clock (RFC 6238 Appendix B, 1111111109 s, SHA-1, 8
 * digits: 07081804), an HOTP counter that moves on, and the typed exceptions with their codes.
 */
class AccountsTest {
    private lateinit var dir: Path
    private val password = "pooya-Test-42"
    private val rfcSecret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" // "12345678901234567890"

    @Before
    fun setUp() {
        dir = tempDir("pooya-accounts-test")
    }

    @After
    fun tearDown() = deleteTree(dir)

    @Test
    fun addAnAccountAndReadItsCode() {
        val clock = ManualClock(1_111_111_109L)
        PooyaApp(
            dir.resolve("vault.db").toString(), "JVM test", DeviceKeystoreTest.GcmKeystore(),
            OfflineTransport(), null, clock, fastSettings(),
        ).use { app ->
            app.createVault(password)
            val totp = app.addAccount("otpauth://totp/RFC:alice?secret=$rfcSecret&digits=8&issuer=RFC")
            assertEquals("RFC", totp.issuer)
            assertEquals("alice", totp.name)
            assertEquals(OtpAccountKind.Totp(30uL), totp.kind)
            assertEquals(OtpAlgorithm.SHA1, totp.algorithm)
            assertEquals(8u, totp.digits)

            val code = app.accountCode(totp.id)
            assertEquals("07081804", code.code)
            assertEquals(1uL, code.secondsLeft)
            assertEquals(1_111_111_110uL, code.validUntil)
            assertEquals(null, code.counter)
            clock.advance(1) // the next step
            assertFalse(app.accountCode(totp.id).code == "07081804")

            // HOTP (RFC 4226 Appendix D): counter 0 → 755224, then 287082.
            val hotp = app.addAccount("otpauth://hotp/bob?secret=$rfcSecret&counter=0")
            assertEquals("755224", app.accountCode(hotp.id).code)
            val second = app.accountCode(hotp.id)
            assertEquals("287082", second.code)
            assertEquals(1uL, second.counter)
            assertEquals(OtpAccountKind.Hotp(2uL), app.accounts()[1].kind)

            val bad = expectThrows<PooyaException.InvalidInput> {
                app.addAccount("otpauth://totp/x?secret=GEZDGNBV1")
            }
            assertEquals("secret", bad.field)
            assertEquals("invalid_input", bad.code())
            val missing = expectThrows<PooyaException.AccountNotFound> { app.accountCode(999L) }
            assertEquals("account_not_found", missing.code())
            expectThrows<PooyaException.WrongPassword> { app.exportAccounts("not the password") }

            app.renameAccount(hotp.id, "bob@work")
            val uris = app.exportAccounts(password)
            assertEquals(2, uris.size)
            assertTrue(uris[1], uris[1].startsWith("otpauth://hotp/bob%40work?"))
            assertTrue(uris[1], uris[1].contains("counter=2"))
            app.removeAccount(hotp.id, password)
            assertEquals(listOf(totp.id), app.accounts().map { it.id })
        }
    }
}
