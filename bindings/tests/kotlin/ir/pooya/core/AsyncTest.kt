package ir.pooya.core

import ir.pooya.core.model.*
import ir.pooya.android.HttpUrlConnectionTransport
import java.nio.file.Path
import java.util.concurrent.Executors
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicInteger
import kotlin.math.abs
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.asCoroutineDispatcher
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.delay
import kotlinx.coroutines.isActive
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.After
import org.junit.AfterClass
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertTrue
import org.junit.Before
import org.junit.BeforeClass
import org.junit.Test

/**
 * The library's suspend calls (addCard, syncTime) from coroutines, against a real issuer
 * through the suspend HttpUrlConnectionTransport shell: the typed exceptions, cancellation
 * (nothing stored), one network call at a time, a single-thread dispatcher that stays free while
 * a call waits, and the time advice after a reboot with a wrong clock.
 */
class AsyncTest {
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

        private const val PASSWORD = "pooya-Async-42"
    }

    /** The real shell behind a gate: the request goes out, the answer is held until [release]. */
    private class GatedTransport(private val inner: Transport = HttpUrlConnectionTransport()) : Transport {
        val entered = CompletableDeferred<Unit>()
        val answered = CompletableDeferred<Unit>()
        private val gate = CompletableDeferred<Unit>()
        val cancelled = AtomicBoolean(false)
        val inFlight = AtomicInteger()
        val maxInFlight = AtomicInteger()
        val calls = AtomicInteger()

        fun release() { gate.complete(Unit) }

        override suspend fun postJson(url: String, body: ByteArray, timeoutMs: ULong): HttpResponse {
            calls.incrementAndGet()
            maxInFlight.accumulateAndGet(inFlight.incrementAndGet()) { a, b -> maxOf(a, b) }
            try {
                val answer = inner.postJson(url, body, timeoutMs)
                answered.complete(Unit)
                entered.complete(Unit)
                gate.await()
                return answer
            } catch (e: CancellationException) {
                cancelled.set(true)
                throw e
            } finally {
                inFlight.decrementAndGet()
            }
        }
    }

    private lateinit var dir: Path

    @Before
    fun setUp() { dir = tempDir("pooya-async-test") }

    @After
    fun tearDown() = deleteTree(dir)

    // One device: every app a test opens on the vault shares its keystore.
    private val keystore = SoftwareKeystore()

    private fun app(t: Transport, clock: Clock = OffsetClock(0)): PooyaApp =
        PooyaApp(dir.resolve("vault.db").toString(), "JVM test", keystore, t, null, clock, fastSettings())

    private fun onboard(app: PooyaApp, phone: String) {
        app.createVault(PASSWORD)
        app.setPhone(phone)
        app.addIssuer("pooya", issuer.baseUrl, issuer.publicKey, issuer.activationKey)
    }

    @Test
    fun addCardAndSyncTimeSuspendAndTheirErrorsAreTyped(): Unit = runBlocking {
        val pan = "6104337700000050"
        val phone = "09121110010"
        assertEquals(201, issuer.enroll(pan, phone).status)
        app(OfflineTransport()).use { app ->
            onboard(app, phone)
            val e = expectThrows<PooyaException.Network> { app.addCard("pooya", issuer.activationCode(phone), null) }
            assertEquals("network", e.code())
            assertTrue(e.details, e.details.contains("no network"))
            expectThrows<PooyaException.Network> { app.syncTime("pooya") }
            expectThrows<PooyaException.IssuerNotFound> { app.syncTime("nobody") }
        }
        app(HttpUrlConnectionTransport()).use { app ->
            app.unlockWithPassword(PASSWORD)
            val added = app.addCard("pooya", issuer.activationCode(phone), "حقوق")
            assertEquals("0050", added.card.last4)
            assertEquals("حقوق", added.card.label)
            assertEquals(listOf(added.card), app.cards())
            expectThrows<PooyaException.ActivationRefused> { app.addCard("pooya", issuer.activationCode(phone), null) }
            val sync = app.syncTime("pooya")
            assertEquals("pooya", sync.issuer)
            assertTrue(sync.bootAnchored)
            assertTrue("offset ${sync.timeOffsetSecs}", abs(sync.timeOffsetSecs) <= 5)
            app.lock()
            expectThrows<PooyaException.Locked> { app.syncTime("pooya") }
            app.unlockWithPassword(PASSWORD)
            val pin = app.firstPin(added.card.id)
            assertEquals("accepted" to "ok", issuer.verify(pan, pin.code, 0, "first"))
        }
    }

    @Test
    fun aCancelledAddCardStoresNothing(): Unit = runBlocking {
        val pan = "6104337700000068"
        val phone = "09121110011"
        assertEquals(201, issuer.enroll(pan, phone).status)
        val transport = GatedTransport()
        app(transport).use { app ->
            onboard(app, phone)
            val call = launch { app.addCard("pooya", issuer.activationCode(phone), null) }
            // The bank has answered; the answer is held while the coroutine is cancelled.
            withTimeout(10_000) { transport.answered.await() }
            call.cancel()
            call.join()
            assertTrue(call.isCancelled)
            withTimeout(5_000) { while (!transport.cancelled.get()) delay(10) }
            assertTrue(app.cards().isEmpty())
            assertEquals(0u, app.status().cardCount)
            // The app is not stuck: the next call goes through (with a new code: the bank
            // spent the first one when it answered).
            assertEquals(201, issuer.enroll(pan, phone).status)
            transport.release()
            val added = app.addCard("pooya", issuer.activationCode(phone), null)
            assertEquals(listOf(added.card), app.cards())
        }
    }

    @Test
    fun networkCallsRunOneAtATimeAndTheVaultStaysFree(): Unit = runBlocking {
        val transport = GatedTransport()
        app(transport).use { app ->
            onboard(app, "09121110012")
            val calls = listOf(async { app.syncTime("pooya") }, async { app.syncTime("pooya") })
            withTimeout(10_000) { transport.entered.await() }
            // While a call waits on the network, the vault answers other calls.
            assertTrue(app.cards().isEmpty())
            assertEquals("pooya", app.issuers().single().name)
            assertEquals(1, transport.calls.get())
            transport.release()
            val done = calls.awaitAll()
            assertEquals(2, done.size)
            assertEquals(2, transport.calls.get())
            assertEquals(1, transport.maxInFlight.get())
        }
    }

    @Test
    fun aSingleThreadDispatcherKeepsRunningWhileAddCardWaits() {
        val pan = "6104337700000076"
        val phone = "09121110013"
        assertEquals(201, issuer.enroll(pan, phone).status)
        val main = Executors.newSingleThreadExecutor { r -> Thread(r, "fake-main") }
        val mainDispatcher = main.asCoroutineDispatcher()
        try {
            val transport = GatedTransport()
            app(transport).use { app ->
                onboard(app, phone)
                runBlocking(mainDispatcher) {
                    val ticks = AtomicInteger()
                    val ticker = launch { while (isActive) { ticks.incrementAndGet(); delay(10) } }
                    val call = async { app.addCard("pooya", issuer.activationCode(phone), null) }
                    withTimeout(10_000) { transport.entered.await() }
                    val before = ticks.get()
                    delay(300) // the "main thread" is free: the ticker runs while addCard waits
                    assertTrue("ticks ${ticks.get() - before}", ticks.get() - before >= 10)
                    assertFalse(call.isCompleted)
                    transport.release()
                    assertEquals("0076", call.await().card.last4)
                    ticker.cancel()
                }
            }
        } finally {
            mainDispatcher.close()
        }
    }

    @Test
    fun timeStatusAdvisesASyncAfterARebootWithAWrongClock(): Unit = runBlocking {
        val clock = ManualClock(System.currentTimeMillis() / 1000)
        app(HttpUrlConnectionTransport(), clock).use { app ->
            onboard(app, "09121110014")
            val sync = app.syncTime("pooya")
            assertTrue(sync.bootAnchored)
            val synced = app.timeStatus("pooya")
            assertEquals(TimeSource.BOOT_CLOCK, synced.source)
            assertFalse(synced.syncAdvised)

            // The customer sets the phone an hour ahead: PINs keep the bank's time.
            clock.set(clock.now() + 3_600)
            if (!app.isUnlocked()) app.unlockWithPassword(PASSWORD)
            val wrong = app.timeStatus("pooya")
            assertEquals(TimeSource.BOOT_CLOCK, wrong.source)
            assertTrue("${wrong.bankTime} vs ${synced.bankTime}", abs(wrong.bankTime.toLong() - synced.bankTime.toLong()) <= 2)
            assertTrue("drift ${wrong.wallClockDriftSecs}", abs(abs(wrong.wallClockDriftSecs ?: 0) - 3_600) <= 2)
            assertTrue(wrong.syncAdvised)

            // The phone restarts: only the wrong wall clock is left, and the app is told to sync.
            clock.reboot("jvm-test-boot-2", 60)
            if (!app.isUnlocked()) app.unlockWithPassword(PASSWORD)
            val rebooted = app.timeStatus("pooya")
            assertEquals(TimeSource.WALL_CLOCK, rebooted.source)
            assertTrue(rebooted.syncAdvised)

            // Online again: one sync repairs it.
            val again = app.syncTime("pooya")
            assertTrue("offset ${again.timeOffsetSecs}", abs(again.timeOffsetSecs + 3_600) <= 5)
            val fixed = app.timeStatus("pooya")
            assertEquals(TimeSource.BOOT_CLOCK, fixed.source)
            assertFalse(fixed.syncAdvised)
            assertTrue(abs(fixed.bankTime.toLong() - System.currentTimeMillis() / 1000) <= 5)
        }
    }
}
