package ir.pooya.core

import ir.pooya.core.model.*
import ir.pooya.protocol.*
import ir.pooya.android.HttpUrlConnectionTransport
import java.net.URL
import java.nio.file.Path
import java.util.concurrent.atomic.AtomicBoolean
import kotlinx.coroutines.runBlocking
import org.junit.After
import org.junit.AfterClass
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Before
import org.junit.BeforeClass
import org.junit.Test

/**
 * A card's life through the suspend calls (removeCard, sync) against a real issuer: an online
 * removal the bank hears, a removal with the bank unreachable kept pending and sent by the next
 * sync, and an ATM deactivation seen at sync, after which PINs throw the typed exception.
 */
class CardLifeTest {
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

        private const val PASSWORD = "pooya-Life-42"

        /** A port nothing listens on (the discard port, closed on test machines). */
        private const val UNREACHABLE = "http://127.0.0.1:9"
    }

    /**
     * The real shell; while [down], every request goes to [UNREACHABLE] instead (same path), so
     * the shell sees a refused connection as it would with the bank unreachable.
     */
    private class SwitchedTransport(private val inner: Transport = HttpUrlConnectionTransport()) : Transport {
        val down = AtomicBoolean(false)

        override suspend fun postJson(url: String, body: ByteArray, timeoutMs: ULong): HttpResponse {
            val target = if (down.get()) UNREACHABLE + URL(url).path else url
            return inner.postJson(target, body, timeoutMs)
        }
    }

    private lateinit var dir: Path

    @Before
    fun setUp() { dir = tempDir("pooya-card-life-test") }

    @After
    fun tearDown() = deleteTree(dir)

    private fun app(t: Transport): PooyaApp =
        PooyaApp(dir.resolve("vault.db").toString(), "JVM test", SoftwareKeystore(), t, null, OffsetClock(0), fastSettings())

    /** A new vault with the issuer and one card [pan] activated; returns the card. */
    private suspend fun onboard(app: PooyaApp, pan: String, phone: String): CardInfo {
        assertEquals(201, issuer.enroll(pan, phone).status)
        app.createVault(PASSWORD)
        app.setPhone(phone)
        app.addIssuer("pooya", issuer.baseUrl, issuer.publicKey, issuer.activationKey)
        val card = app.addCard("pooya", issuer.activationCode(phone), null).card
        assertEquals(CardAppStatus.ACTIVE, card.appStatus)
        assertNull(card.statusCheckedAt)
        return card
    }

    @Test
    fun removeCardTellsTheBank(): Unit = runBlocking {
        val pan = "6104337700000050"
        app(HttpUrlConnectionTransport()).use { app ->
            val card = onboard(app, pan, "09121110020")
            val pin = app.firstPin(card.id)
            expectThrows<PooyaException.WrongPassword> { app.removeCard(card.id, "not the password") }
            assertEquals(listOf(card.id), app.cards().map { it.id })

            val removed = app.removeCard(card.id, PASSWORD)
            assertTrue(removed.bankTold)
            assertEquals(RemovalNotice.Told(CardAppStatus.REVOKED), removed.notice)
            assertEquals("pooya", removed.issuer)
            assertTrue(app.cards().isEmpty())
            expectThrows<PooyaException.CardNotFound> { app.firstPin(card.id) }
            // The bank heard: the card's app is revoked there, its PINs refused.
            assertEquals("rejected" to "card_revoked", issuer.verify(pan, pin.code, 0, "first"))
            // Nothing is pending: the next sync sends no removal.
            assertTrue(app.sync("pooya").removals.isEmpty())
        }
    }

    @Test
    fun removeCardWithTheBankUnreachableIsPendingUntilTheNextSync(): Unit = runBlocking {
        val transport = SwitchedTransport()
        app(transport).use { app ->
            val card = onboard(app, "6104337700000068", "09121110021")
            transport.down.set(true)
            val removed = app.removeCard(card.id, PASSWORD)
            assertFalse(removed.bankTold)
            val notice = removed.notice
            assertTrue("$notice", notice is RemovalNotice.Pending)
            val reason = (notice as RemovalNotice.Pending).reason
            assertTrue("$reason", reason is PooyaException.Network)
            assertEquals("network", reason.code())
            // Gone from the phone all the same.
            assertTrue(app.cards().isEmpty())
            expectThrows<PooyaException.Network> { app.sync("pooya") }

            // Online again: the sync sends the pending removal and the bank hears it.
            transport.down.set(false)
            val sync = app.sync("pooya")
            assertEquals(1, sync.removals.size)
            assertEquals(removed.pendingId, sync.removals[0].pendingId)
            assertTrue(sync.removals[0].bankTold)
            assertEquals(RemovalNotice.Told(CardAppStatus.REVOKED), sync.removals[0].notice)
            assertTrue(app.sync("pooya").removals.isEmpty())
        }
    }

    @Test
    fun syncAfterAnAtmDeactivationShowsRevokedAndPinsThrow(): Unit = runBlocking {
        val pan = "6104337700000076"
        app(HttpUrlConnectionTransport()).use { app ->
            val card = onboard(app, pan, "09121110022")
            val first = app.sync("pooya")
            assertEquals(CardAppStatus.ACTIVE, first.cards.single().status)
            assertEquals(CardAppStatus.ACTIVE, app.card(card.id).appStatus)
            assertNotNull(app.card(card.id).statusCheckedAt)

            assertEquals(200, issuer.deactivate(pan).status)
            val sync = app.sync("pooya")
            val synced = sync.cards.single()
            assertEquals(card.id, synced.cardId)
            assertEquals(CardAppStatus.ACTIVE, synced.previous)
            assertEquals(CardAppStatus.REVOKED, synced.status)
            assertTrue(sync.unknownCards.isEmpty())
            val info = app.card(card.id)
            assertEquals(CardAppStatus.REVOKED, info.appStatus)
            assertEquals(synced.checkedAt, info.statusCheckedAt)

            val e = expectThrows<PooyaException.CardRevoked> { app.firstPin(card.id) }
            assertEquals("card_revoked", e.code())
            expectThrows<PooyaException.CardRevoked> { app.secondPin(card.id) }
        }
    }
}
