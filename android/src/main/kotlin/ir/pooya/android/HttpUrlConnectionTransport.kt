package ir.pooya.android

import ir.pooya.core.HostException
import ir.pooya.core.HttpResponse
import ir.pooya.core.Transport
import java.io.ByteArrayOutputStream
import java.io.IOException
import java.io.InputStream
import java.net.HttpURLConnection
import java.net.InetAddress
import java.net.SocketTimeoutException
import java.net.URL
import java.util.concurrent.atomic.AtomicBoolean
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.awaitCancellation
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.ensureActive
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext

/**
 * The core's [Transport] hook on the platform HTTP stack ([HttpURLConnection]; on
 * Android it is backed by the system's OkHttp and trust store, so certificate
 * pinning and user CAs follow the app's network security config).
 *
 * - `https` only; plain `http` is accepted for loopback addresses (tests, the
 *   desktop demo) and refused for anything else.
 * - `timeoutMs` bounds connecting and each read.
 * - Any HTTP status is an answer, returned with its body; only the absence of an
 *   answer (refused, timed out, TLS failure, body larger than [maxBodyBytes]) throws
 *   [HostException.Failed]. The core checks every answer itself.
 * - A `suspend fun`: the blocking exchange runs on [Dispatchers.IO] (`withContext`), so
 *   the caller's thread, the main thread included, is free meanwhile.
 * - Cancellable: when the calling coroutine is cancelled (the app's scope ends, or the
 *   library drops the call because the app's own `addCard`/`syncTime` coroutine was
 *   cancelled), the connection is closed at once, which ends a blocked connect or read.
 *
 * Uses only the JVM, so it is also tested on the desktop JVM (`cargo xtask test`).
 */
class HttpUrlConnectionTransport(
    private val maxBodyBytes: Int = 1 shl 20,
) : Transport {
    override suspend fun postJson(url: String, body: ByteArray, timeoutMs: ULong): HttpResponse {
        val conn = open(url)
        return coroutineScope {
            val finished = AtomicBoolean(false)
            // HttpURLConnection ignores thread interrupts: closing the socket is what stops it.
            val closer = launch {
                try {
                    awaitCancellation()
                } finally {
                    if (!finished.get()) conn.disconnect()
                }
            }
            try {
                withContext(Dispatchers.IO) { exchange(conn, body, timeoutMs) }
            } catch (e: HostException) {
                // The socket a cancellation closed fails the read: that is
                // the cancellation, not a host failure.
                ensureActive()
                throw e
            } finally {
                finished.set(true)
                closer.cancel()
            }
        }
    }

    private fun open(url: String): HttpURLConnection {
        val target = try {
            URL(url)
        } catch (e: IOException) {
            throw HostException.Failed("malformed URL")
        }
        when (target.protocol) {
            "https" -> Unit
            "http" -> if (!isLoopback(target.host)) {
                throw HostException.Failed("plain http is only allowed to loopback addresses")
            }
            else -> throw HostException.Failed("unsupported URL scheme ${target.protocol}")
        }
        return try {
            target.openConnection() as HttpURLConnection
        } catch (e: IOException) {
            throw failure(e)
        }
    }

    private fun exchange(conn: HttpURLConnection, body: ByteArray, timeoutMs: ULong): HttpResponse {
        val timeout = timeoutMs.coerceAtMost(Int.MAX_VALUE.toULong()).toInt()
        try {
            conn.requestMethod = "POST"
            conn.connectTimeout = timeout
            conn.readTimeout = timeout
            conn.doOutput = true
            conn.useCaches = false
            conn.instanceFollowRedirects = false
            conn.setRequestProperty("Content-Type", "application/json")
            conn.setRequestProperty("Accept", "application/json")
            conn.setFixedLengthStreamingMode(body.size)
            conn.outputStream.use { it.write(body) }
            val status = conn.responseCode
            val stream = if (status >= 400) conn.errorStream else conn.inputStream
            val answer = stream?.use { readBounded(it) } ?: ByteArray(0)
            return HttpResponse(status.toUShort(), answer)
        } catch (e: IOException) {
            throw failure(e)
        } finally {
            conn.disconnect()
        }
    }

    private fun readBounded(input: InputStream): ByteArray {
        val out = ByteArrayOutputStream()
        val buf = ByteArray(8192)
        while (true) {
            val n = input.read(buf)
            if (n < 0) break
            if (out.size() + n > maxBodyBytes) {
                throw HostException.Failed("response body larger than $maxBodyBytes bytes")
            }
            out.write(buf, 0, n)
        }
        return out.toByteArray()
    }

    private fun failure(e: IOException): HostException = when (e) {
        is SocketTimeoutException -> HostException.Failed("timed out")
        else -> HostException.Failed("${e.javaClass.simpleName}: ${e.message ?: "no answer"}")
    }

    private fun isLoopback(host: String): Boolean {
        val bare = host.removePrefix("[").removeSuffix("]")
        if (bare == "localhost") return true
        // Only literal addresses: no DNS lookup decides whether cleartext is allowed.
        val literal = bare.all { it.isDigit() || it == '.' } || bare.contains(':')
        return literal && runCatching { InetAddress.getByName(bare).isLoopbackAddress }.getOrDefault(false)
    }
}
