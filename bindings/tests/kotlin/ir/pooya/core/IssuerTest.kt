package ir.pooya.core

import ir.pooya.protocol.*
import ir.pooya.android.HttpUrlConnectionTransport
import java.net.ServerSocket
import java.nio.file.Path
import kotlin.math.abs
import kotlinx.coroutines.runBlocking
import org.junit.After
import org.junit.AfterClass
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Before
import org.junit.BeforeClass
import org.junit.Test

/**
 * The phone library through the generated Kotlin API against a real issuer (the `pooya-issuer`
 * binary on 127.0.0.1): the ATM enrolls a card, the activation code is read from the issuer's
 * SMS outbox, the app activates it over the Android HttpUrlConnectionTransport shell, sets a
 * cap and reads PINs, and the issuer's /v1/verify (the payment gateway) decides. Each test uses
 * its own card and phone number, so they share one issuer.
 */
class IssuerTest {
    companion object {
        private lateinit var issuer: IssuerProcess

        @BeforeClass @JvmStatic
        fun startIssuer() {
            issuer = IssuerProcess.start()
        }

        @AfterClass @JvmStatic
        fun stopIssuer() {
            issuer.close()
        }

        private const val PASSWORD = "pooya-Test-42"

        /** ASCII digits → Persian digits, as a customer's keyboard types them. */
        fun persian(text: String): String =
            text.map { if (it in '0'..'9') '۰' + (it - '0') else it }.joinToString("")

        /** A 10-digit code with a correct Luhn check digit (what the app's typo check accepts). */
        fun luhnValid(payload: String): String {
            var sum = 0
            for ((i, c) in payload.reversed().withIndex()) {
                var d = c - '0'
                if (i % 2 == 0) { d *= 2; if (d > 9) d -= 9 }
                sum += d
            }
            return payload + ((10 - sum % 10) % 10)
        }
    }

    private lateinit var dir: Path
    private lateinit var clock: OffsetClock
    private lateinit var gate: ScriptedBiometricGate
    private lateinit var keystore: SoftwareKeystore
    private lateinit var transport: RecordingTransport

    @Before
    fun setUp() {
        dir = tempDir("pooya-issuer-test")
        clock = OffsetClock(0)
        gate = ScriptedBiometricGate()
        keystore = SoftwareKeystore()
        transport = RecordingTransport(HttpUrlConnectionTransport())
    }

    @After
    fun tearDown() = deleteTree(dir)

    private fun app(t: Transport = transport): PooyaApp =
        PooyaApp(dir.resolve("vault.db").toString(), "JVM test", keystore, t, gate, clock, fastSettings())

    /** A vault with the phone number and the issuer profile (both keys pinned), unlocked. */
    private fun onboard(app: PooyaApp, phone: String, bank: IssuerProcess = issuer) {
        app.createVault(PASSWORD)
        assertEquals("+98" + phone.drop(1), app.setPhone(persian(phone)))
        val profile = app.addIssuer("pooya", bank.baseUrl, bank.publicKey, bank.activationKey)
        assertEquals(bank.publicKey, profile.publicKey)
        assertEquals(bank.activationKey, profile.activationKey)
    }

    @Test
    fun activateSetCapAndPayWithDynamicPins(): Unit = runBlocking {
        val pan = "6104337700000001"
        val phone = "09121110001"
        // The phone's clock is 10 minutes slow: the offset measured at activation fixes every PIN.
        clock.offsetSecs = -600
        assertEquals(201, issuer.enroll(pan, phone).status)
        app().use { app ->
            onboard(app, phone)
            val code = issuer.activationCode(phone)
            val added = app.addCard("pooya", persian(code.replace("-", " - ")), null)
            assertEquals(listOf(issuer.baseUrl + "/v1/activations"), transport.urls)
            val card = added.card
            assertEquals("6104 33•• •••• 0001", card.maskedPan)
            assertEquals("0001", card.last4)
            assertEquals("Bank Mellat", card.bankNameEn)
            assertEquals("Bank Mellat 0001", card.label)
            assertEquals(6u, card.firstDigits)
            assertEquals(8u, card.secondDigits)
            assertEquals(card.capLadder.first(), card.cap) // a new card starts at the smallest tier
            assertNull(added.replacedCardId)
            assertTrue("offset ${added.timeOffsetSecs}", abs(added.timeOffsetSecs - 600) <= 5)
            assertEquals(listOf(card), app.cards())
            assertEquals(card.id, app.findCard(persian("0001")).id)

            // The code is single use.
            expectThrows<PooyaException.ActivationRefused> { app.addCard("pooya", code, null) }
            assertEquals(1, app.cards().size)

            // Caps: raising needs the password; between tiers rounds down; below the ladder is typed.
            expectThrows<PooyaException.PasswordRequired> { app.setCap(card.id, 30_000_000uL, null) }
            val wrong = expectThrows<PooyaException.WrongPassword> { app.setCap(card.id, 30_000_000uL, "nope-nope") }
            assertEquals(9u, wrong.attemptsLeft)
            val cap = app.setCap(card.id, 30_000_000uL, PASSWORD)
            assertEquals(20_000_000uL, cap.cap)
            assertTrue(cap.roundedDown)
            assertEquals(5_000_000uL, cap.previous)
            val low = expectThrows<PooyaException.CapBelowLowestTier> { app.setCap(card.id, 1_000uL, null) }
            assertEquals(5_000_000uL, low.lowestTier)
            assertEquals(20_000_000uL, app.card(card.id).cap)

            // Second PIN: accepted by the issuer within the cap, once.
            val now = System.currentTimeMillis() / 1000
            val second = app.secondPin(card.id)
            assertEquals(PinKind.SECOND, second.kind)
            assertEquals(8, second.code.length)
            assertEquals(20_000_000uL, second.cap)
            assertEquals(60uL, second.validUntil - second.validFrom)
            assertTrue(second.secondsLeft in 1uL..60uL)
            assertTrue("issuer time ${second.issuerTime} vs $now", abs(second.issuerTime.toLong() - now) <= 5)
            assertEquals("accepted" to "ok", issuer.verify(pan, second.code, 15_000_000, "second"))
            assertEquals("rejected" to "replayed", issuer.verify(pan, second.code, 15_000_000, "second"))

            // Asking for more than the card's cap gives a PIN for the card's cap, flagged.
            val capped = app.secondPinForCap(card.id, 50_000_000uL)
            assertEquals(20_000_000uL, capped.cap)
            assertTrue(capped.capAdjusted)
            assertEquals("rejected" to "wrong_code", issuer.verify(pan, capped.code, 30_000_000, "second"))

            // Transaction-bound PIN: only for its type, amount and payee.
            val tx = app.transactionPin(card.id, TxType.TRANSFER, 1_250_000uL, " IR-SHOP-42 ")
            assertEquals(PinKind.TRANSACTION, tx.kind)
            assertEquals("IR-SHOP-42", tx.payee)
            assertEquals(TxType.TRANSFER, tx.txType)
            assertEquals("rejected" to "wrong_code", issuer.verify(pan, tx.code, 1_250_000, "second", "IR-SHOP-43", "transfer"))
            assertEquals("rejected" to "wrong_code", issuer.verify(pan, tx.code, 1_250_000, "second", "IR-SHOP-42", "purchase"))
            assertEquals("accepted" to "ok", issuer.verify(pan, tx.code, 1_250_000, "second", "IR-SHOP-42", "transfer"))
            val above = expectThrows<PooyaException.AmountAboveCap> {
                app.transactionPin(card.id, TxType.PURCHASE, 25_000_000uL, "IR-SHOP-42")
            }
            assertEquals(20_000_000uL, above.cap)

            // A scanned payment QR code: what it pays, then its PIN. (The
            // issuer takes one transaction-bound PIN per step, so this one is
            // only checked against another payee, which spends nothing.)
            val bankNow = app.firstPin(card.id).issuerTime
            val uri = "pooya:pay?amount=3500000&payee=IR-BILL-7&name=%D8%A2%D8%A8&type=bill&expires=${bankNow + 300uL}"
            val view = app.paymentView(card.id, uri, Language.FA)
            assertEquals("۳٬۵۰۰٬۰۰۰", view.amountFa)
            assertEquals("3,500,000", view.amountLatin)
            assertEquals("آب", view.payeeName)
            assertEquals(TxType.BILL, view.txType)
            assertEquals("پرداخت قبض", view.txTypeName)
            assertTrue(view.secondsLeft in 295uL..300uL)
            val paid = app.paymentPin(card.id, uri)
            assertEquals(TxType.BILL, paid.txType)
            assertEquals(3_500_000uL, paid.amount)
            assertEquals("rejected" to "wrong_code", issuer.verify(pan, paid.code, 3_500_000, "second", "IR-BILL-7", "purchase"))
            val bad = expectThrows<PooyaException.InvalidPaymentRequest> { app.paymentView(card.id, "pooya:pay?amount=1", Language.EN) }
            assertEquals("missing_parameter", bad.reason)
            val old = expectThrows<PooyaException.PaymentRequestExpired> {
                app.paymentPin(card.id, uri.replace("expires=${bankNow + 300uL}", "expires=${bankNow - 1uL}"))
            }
            assertEquals(bankNow - 1uL, old.expiresAt)

            // First PIN (ATM, POS).
            val first = app.firstPin(card.id)
            assertEquals(6, first.code.length)
            assertEquals("accepted" to "ok", issuer.verify(pan, first.code, 0, "first"))
        }
    }

    @Test
    fun afterARestartAndABiometricInvalidationThePasswordStillGivesAcceptedPins(): Unit = runBlocking {
        val pan = "6104337700000019"
        val phone = "09121110002"
        assertEquals(201, issuer.enroll(pan, phone).status)
        val cardId = app().use { app ->
            onboard(app, phone)
            val id = app.addCard("pooya", issuer.activationCode(phone), "حقوق").card.id
            app.enableBiometrics(PASSWORD)
            app.lock()
            id
        }
        // The app restarts: a new object on the same vault file.
        app().use { app ->
            assertTrue(app.status().locked)
            app.unlockWithBiometrics()
            assertEquals("حقوق", app.card(cardId).label)
            app.lock()

            gate.invalidate() // a fingerprint was added in the phone's settings
            expectThrows<PooyaException.BiometricInvalidated> { app.unlockWithBiometrics() }
            assertFalse(app.status().biometricEnabled)
            assertEquals(1, gate.removes.get())
            expectThrows<PooyaException.Locked> { app.secondPin(cardId) }

            app.unlockWithPassword(PASSWORD)
            val pin = app.secondPin(cardId)
            assertEquals("accepted" to "ok", issuer.verify(pan, pin.code, 5_000_000, "second"))
        }
    }

    @Test
    fun activationFailuresAreTypedAndStoreNothing(): Unit = runBlocking {
        val pan = "6104337700000027"
        val phone = "09121110003"
        assertEquals(201, issuer.enroll(pan, phone).status)
        app().use { app ->
            onboard(app, phone)
            val code = issuer.activationCode(phone).filter { it.isDigit() }

            // A typo in the check digit: refused before any network call.
            val typo = code.dropLast(1) + ((code.last() - '0' + 1) % 10)
            val bad = expectThrows<PooyaException.InvalidActivationCode> { app.addCard("pooya", typo, null) }
            assertEquals("invalid_activation_code", bad.code())
            assertTrue(transport.urls.isEmpty())

            // A well-formed but wrong code: the bank says no.
            val wrong = luhnValid(if (code.startsWith("9")) "123456789" else "987654321")
            expectThrows<PooyaException.ActivationRefused> { app.addCard("pooya", wrong, null) }
            assertEquals(1, transport.urls.size)

            // An issuer profile pinned to another key: the answer's signature is refused. The bank
            // has used the code by then, so the customer asks the ATM again.
            app.addIssuer("impostor", issuer.baseUrl, "ab".repeat(32), issuer.activationKey)
            expectThrows<PooyaException.BadSignature> { app.addCard("impostor", code, null) }
            assertTrue(app.cards().isEmpty())
            assertEquals(0u, app.status().cardCount)
        }

        // Transport failures: the Kotlin Transport throws → a typed exception with its details.
        val closedPort = ServerSocket(0).use { it.localPort }
        app(OfflineTransport()).use { app ->
            app.unlockWithPassword(PASSWORD)
            val e = expectThrows<PooyaException.Network> { app.addCard("pooya", issuer.activationCode(phone), null) }
            assertEquals("network", e.code())
            assertTrue(e.details, e.details.contains("no network"))
            app.addIssuer("down", "http://127.0.0.1:$closedPort", issuer.publicKey, issuer.activationKey)
        }
        app(HttpUrlConnectionTransport()).use { app ->
            app.unlockWithPassword(PASSWORD)
            val e = expectThrows<PooyaException.Network> { app.addCard("down", issuer.activationCode(phone), null) }
            assertTrue(e.details, e.details.contains("ConnectException"))
            assertTrue(app.cards().isEmpty())

            // A new code from the ATM, through the real issuer: now it works.
            assertEquals(201, issuer.enroll(pan, phone).status)
            val added = app.addCard("pooya", issuer.activationCode(phone), null)
            assertEquals("0027", added.card.last4)
            val pin = app.firstPin(added.card.id)
            assertEquals("accepted" to "ok", issuer.verify(pan, pin.code, 0, "first"))
        }
    }

    @Test
    fun addIssuerRefusesAMalformedActivationKeyAndStoresNothing(): Unit = runBlocking {
        val key = issuer.activationKey
        assertEquals(130, key.length) // 65 bytes: 0x04 ‖ x ‖ y (SEC1 §2.3.3)
        val lastByte = key.takeLast(2).toInt(16)
        val cases = mapOf(
            "empty" to "",
            "not hex" to "zz".repeat(65),
            "the Ed25519 key in the activation key's place" to issuer.publicKey,
            "one byte short" to key.dropLast(2),
            "one byte too many" to key + "00",
            "compressed-point prefix" to "02" + key.drop(2),
            "the point (0, 0), not on the curve" to "04" + "00".repeat(64),
            "y mistyped in its last byte, off the curve" to key.dropLast(2) + "%02x".format(lastByte xor 1),
        )
        app().use { app ->
            app.createVault(PASSWORD)
            for ((what, bad) in cases) {
                val e = expectThrows<PooyaException.InvalidInput> {
                    app.addIssuer("pooya", issuer.baseUrl, issuer.publicKey, bad)
                }
                assertEquals(what, "activation_key", e.field)
                assertEquals(what, "invalid_input", e.code())
            }
            assertTrue(app.issuers().isEmpty())
            assertTrue(transport.urls.isEmpty())

            // The key as `init --json` printed it, in capitals and with spaces around, is taken.
            val profile = app.addIssuer("pooya", issuer.baseUrl, issuer.publicKey, " ${key.uppercase()} ")
            assertEquals(key, profile.activationKey)
            assertEquals(listOf(profile), app.issuers())
        }
    }

    @Test
    fun aRequestSealedToAnotherIssuersKeyIsRefusedAndTheCodeStaysUsable(): Unit = runBlocking {
        val pan = "6104337700000035"
        val phone = "09121110004"
        assertEquals(201, issuer.enroll(pan, phone).status)
        val code = issuer.activationCode(phone)
        IssuerProcess.start().use { other ->
            assertFalse(other.activationKey == issuer.activationKey)
            app().use { app ->
                app.createVault(PASSWORD)
                app.setPhone(phone)
                // The right address and signing key, but the activation key of another bank.
                app.addIssuer("mixed", issuer.baseUrl, issuer.publicKey, other.activationKey)
                val e = expectThrows<PooyaException.IssuerException> { app.addCard("mixed", code, null) }
                assertEquals(400.toUShort(), e.status)
                assertEquals("not_sealed_to_issuer", e.issuerCode)
                assertEquals("issuer_error", e.code())
                assertEquals(listOf(issuer.baseUrl + "/v1/activations"), transport.urls)
                assertTrue(app.cards().isEmpty())
                assertEquals(0u, app.status().cardCount)

                // The bank could not open the request, so it spent nothing: the same code works
                // once the profile pins the bank's own activation key.
                app.addIssuer("pooya", issuer.baseUrl, issuer.publicKey, issuer.activationKey)
                val added = app.addCard("pooya", code, null)
                assertEquals("0035", added.card.last4)
                assertEquals(listOf(added.card), app.cards())
                val pin = app.firstPin(added.card.id)
                assertEquals("accepted" to "ok", issuer.verify(pan, pin.code, 0, "first"))
            }
        }
    }

    @Test
    fun twoChannelCodesAreJoinedBeforeActivation(): Unit = runBlocking {
        IssuerProcess.start(
            """{"activation_code_split": true, "activation_code_digits": 12, "activation_atm_digits": 4}""",
        ).use { bank ->
            val pan = "6104337700000043"
            val phone = "09121110005"
            val atm = bank.atmPart(bank.enroll(pan, phone))
            val sms = bank.activationCodeSmsPart(phone)
            assertEquals(4, atm.length)
            assertEquals(8, sms.length)
            app().use { app ->
                onboard(app, phone, bank)

                // The SMS alone is not a code: refused before any network call.
                val alone = expectThrows<PooyaException.InvalidActivationCode> { app.addCard("pooya", sms, null) }
                assertEquals("invalid_activation_code", alone.code())
                assertTrue(transport.urls.isEmpty())

                // A digit mistyped from the ATM's screen: the joined code's check digit fails.
                val typo = ('0' + (atm[0] - '0' + 1) % 10) + atm.drop(1)
                val e = expectThrows<PooyaException.InvalidInput> { joinActivationCode(typo, sms) }
                assertEquals("code", e.field)
                assertEquals("invalid_input", e.code())

                // Typed with a Persian keyboard: joined, then activated.
                val code = joinActivationCode(persian(atm), persian(sms))
                assertEquals(atm + sms, code)
                val added = app.addCard("pooya", code, null)
                assertEquals("0043", added.card.last4)
                assertEquals(listOf(bank.baseUrl + "/v1/activations"), transport.urls)
                val pin = app.secondPin(added.card.id)
                assertEquals("accepted" to "ok", bank.verify(pan, pin.code, 1_000_000, "second"))
            }
        }
    }
}
