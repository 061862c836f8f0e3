package ir.pooya.core

import com.sun.net.httpserver.HttpServer
import ir.pooya.android.HttpUrlConnectionTransport
import ir.pooya.android.SystemClock
import java.net.InetSocketAddress
import java.net.ServerSocket
import java.time.Instant
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import org.junit.After
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Before
import org.junit.Test

/**
 * The Android shells that use only the JVM (android/src/main/kotlin): the Transport and Clock
 * implementations, against a real HTTP server on 127.0.0.1.
 */
class JvmShellsTest {
    private lateinit var server: HttpServer
    private lateinit var base: String
    private val seen = mutableListOf<Triple<String, String?, ByteArray>>()

    @Before
    fun start() {
        server = HttpServer.create(InetSocketAddress("127.0.0.1", 0), 0)
        server.createContext("/echo") { ex ->
            val body = ex.requestBody.readBytes()
            synchronized(seen) { seen.add(Triple(ex.requestMethod, ex.requestHeaders.getFirst("Content-Type"), body)) }
            val answer = "{\"echo\":${body.size}}".toByteArray()
            ex.sendResponseHeaders(201, answer.size.toLong())
            ex.responseBody.use { it.write(answer) }
        }
        server.createContext("/conflict") { ex ->
            ex.requestBody.readBytes()
            val answer = "{\"error\":\"already_activated\"}".toByteArray()
            ex.sendResponseHeaders(409, answer.size.toLong())
            ex.responseBody.use { it.write(answer) }
        }
        server.createContext("/slow") { ex ->
            ex.requestBody.readBytes()
            Thread.sleep(1500)
            ex.sendResponseHeaders(200, -1)
            ex.close()
        }
        server.createContext("/huge") { ex ->
            ex.requestBody.readBytes()
            ex.sendResponseHeaders(200, 0)
            ex.responseBody.use { out -> repeat(64) { out.write(ByteArray(1024)) } }
        }
        server.executor = java.util.concurrent.Executors.newCachedThreadPool()
        server.start()
        base = "http://127.0.0.1:${server.address.port}"
    }

    @After
    fun stop() {
        server.stop(0)
    }

    @Test
    fun postsJsonAndReturnsStatusAndBody(): Unit = runBlocking {
        val r = HttpUrlConnectionTransport().postJson("$base/echo", "{\"a\":1}".toByteArray(), 5_000UL)
        assertEquals(201.toUShort(), r.status)
        assertEquals("{\"echo\":7}", String(r.body))
        val (method, type, body) = synchronized(seen) { seen.single() }
        assertEquals("POST", method)
        assertEquals("application/json", type)
        assertArrayEquals("{\"a\":1}".toByteArray(), body)
    }

    @Test
    fun anErrorStatusIsAnAnswerNotAnException(): Unit = runBlocking {
        val r = HttpUrlConnectionTransport().postJson("$base/conflict", "{}".toByteArray(), 5_000UL)
        assertEquals(409.toUShort(), r.status)
        assertEquals("{\"error\":\"already_activated\"}", String(r.body))
    }

    @Test
    fun noAnswerThrowsHostException(): Unit = runBlocking {
        val closedPort = ServerSocket(0, 1, java.net.InetAddress.getByName("127.0.0.1")).use { it.localPort }
        val refused = expectThrows<HostException.Failed> {
            HttpUrlConnectionTransport().postJson("http://127.0.0.1:$closedPort/x", "{}".toByteArray(), 2_000UL)
        }
        assertTrue(refused.details, refused.details.contains("ConnectException"))

        val slow = expectThrows<HostException.Failed> {
            HttpUrlConnectionTransport().postJson("$base/slow", "{}".toByteArray(), 200UL)
        }
        assertEquals("timed out", slow.details)
    }

    @Test
    fun aCancelledRequestClosesItsConnectionAtOnce(): Unit = runBlocking {
        // /slow answers after 1.5 s; the caller gives up after 100 ms.
        val started = System.nanoTime()
        val call = async(Dispatchers.Default) {
            HttpUrlConnectionTransport().postJson("$base/slow", "{}".toByteArray(), 10_000UL)
        }
        delay(100)
        call.cancel()
        expectThrows<CancellationException> { call.await() }
        call.join()
        val tookMs = (System.nanoTime() - started) / 1_000_000
        assertTrue("cancelled call took $tookMs ms", tookMs < 1_000)
    }

    @Test
    fun refusesCleartextOffLoopbackAndOversizedBodies(): Unit = runBlocking {
        // Refused before any connection is attempted (192.0.2.0/24 is TEST-NET-1).
        val e = expectThrows<HostException.Failed> {
            HttpUrlConnectionTransport().postJson("http://192.0.2.1/v1/activate", "{}".toByteArray(), 100UL)
        }
        assertTrue(e.details, e.details.contains("loopback"))
        expectThrows<HostException.Failed> {
            HttpUrlConnectionTransport().postJson("ftp://127.0.0.1/x", "{}".toByteArray(), 100UL)
        }
        val huge = expectThrows<HostException.Failed> {
            HttpUrlConnectionTransport(maxBodyBytes = 16 * 1024).postJson("$base/huge", "{}".toByteArray(), 5_000UL)
        }
        assertTrue(huge.details, huge.details.contains("larger than"))
    }

    @Test
    fun systemClockIsTheWallClock() {
        val now = Instant.now().epochSecond
        val clock: Clock = SystemClock
        val t = clock.nowUnix().toLong()
        assertTrue("$t vs $now", t in (now - 2)..(now + 2))
    }

    @Test
    fun systemClockReadsTheLinuxBootClock() {
        val a = SystemClock.bootTime()
        Thread.sleep(20)
        val b = SystemClock.bootTime()
        if (System.getProperty("os.name").lowercase().contains("linux")) {
            assertTrue(a != null && b != null)
            assertEquals(a!!.bootId, b!!.bootId)
            assertTrue("${a.sinceBootMs} then ${b.sinceBootMs}", b.sinceBootMs >= a.sinceBootMs)
        }
    }
}
