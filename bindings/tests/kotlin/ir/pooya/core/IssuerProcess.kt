package ir.pooya.core

import java.io.BufferedReader
import java.io.File
import java.io.InputStreamReader
import java.net.HttpURLConnection
import java.net.URL
import java.net.URLEncoder
import java.nio.file.Path
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit

/**
 * A real issuer (the `pooya-issuer` binary, built by `cargo xtask kotlin` and named by the
 * system property `pooya.issuer.bin`) on 127.0.0.1 with an ephemeral port and temporary data,
 * plus the bank-side calls a test needs: the ATM's enrollment, the SMS outbox (ops) and the
 * payment gateway's verification. The phone side only ever talks to it through PooyaApp and a
 * Kotlin Transport. No JUnit here: the benchmark uses it too.
 */
class IssuerProcess private constructor(
    private val dir: Path,
    private val process: Process,
    val baseUrl: String,
    /** The issuer's Ed25519 key (hex), `issuer_public_key` in `init --json`. */
    val publicKey: String,
    /**
     * The issuer's P-256 activation key (hex of the 65-byte SEC1 point, RFC 9180 §7.1.1),
     * `activation_public_key` in `init --json`: the phone seals its activation request to it.
     */
    val activationKey: String,
    private val atmToken: String,
    private val gatewayToken: String,
    private val opsToken: String,
) : AutoCloseable {

    /** An HTTP answer: status and body text. */
    data class Answer(val status: Int, val body: String)

    /** `POST /v1/enrollments` as the ATM: the customer chose "activate via app". */
    fun enroll(pan: String, phone: String, channel: String = "app"): Answer =
        http("POST", "/v1/enrollments", atmToken,
            """{"pan":"$pan","phone":"$phone","channel":"$channel"}""")

    /** `POST /v1/cards/deactivate` as the ATM: the customer lost the phone (revokes the card's app). */
    fun deactivate(pan: String): Answer =
        http("POST", "/v1/cards/deactivate", atmToken, """{"pan":"$pan"}""")

    /**
     * The bodies of the SMS messages sent to [phone], oldest first (`GET /v1/sms/outbox`, ops),
     * once the bank's durable outbox has delivered every message committed so far (no message
     * pending in `/metrics`; delivery follows the answer).
     */
    fun outbox(phone: String): List<String> {
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10)
        while (true) {
            val m = http("GET", "/metrics", opsToken, null)
            check(m.status == 200) { "metrics: HTTP ${m.status}" }
            if (m.body.contains("pooya_issuer_sms_outbox_messages{state=\"pending\"} 0\n")) break
            check(System.nanoTime() < deadline) { "the outbox did not drain" }
            Thread.sleep(10)
        }
        val a = http("GET", "/v1/sms/outbox?phone=" + URLEncoder.encode(phone, "UTF-8"), opsToken, null)
        check(a.status == 200) { "outbox: HTTP ${a.status} ${a.body}" }
        return Regex("\"body\":\"((?:[^\"\\\\]|\\\\.)*)\"").findAll(a.body)
            .map { it.groupValues[1].replace("\\n", "\n").replace("\\\"", "\"") }
            .toList()
    }

    /**
     * The activation code in the newest SMS to [phone] that carries one (ASCII digits grouped by
     * five). Newer messages without a code, such as the notice the bank texts after every
     * activation, are passed over.
     */
    fun activationCode(phone: String): String {
        val codes = outbox(phone).mapNotNull { Regex("[0-9]{5}(?:-[0-9]{1,5})+").find(it)?.value }
        return codes.lastOrNull() ?: error("no activation code in the SMS to $phone")
    }

    /**
     * With two-channel codes (`activation_code_split`): the code's second part, on a line of its
     * own (ASCII digits, ungrouped) in the newest SMS to [phone] that carries one.
     */
    fun activationCodeSmsPart(phone: String): String {
        val parts = outbox(phone).mapNotNull { body ->
            body.lines().map { it.trim() }.lastOrNull { it.isNotEmpty() && it.all { c -> c in '0'..'9' } }
        }
        return parts.lastOrNull() ?: error("no part of an activation code in the SMS to $phone")
    }

    /**
     * `POST /v1/verify` as the payment gateway; returns (result, reason), e.g.
     * ("accepted", "ok") or ("rejected", "replayed").
     */
    fun verify(
        pan: String,
        code: String,
        amount: Long,
        kind: String,
        payee: String? = null,
        type: String = "purchase",
    ): Pair<String, String> {
        val fields = mutableListOf("\"pan\":\"$pan\"", "\"code\":\"$code\"", "\"kind\":\"$kind\"", "\"amount\":$amount")
        // A payee comes with its transaction type (purchase, transfer, bill).
        if (payee != null) fields += listOf("\"payee\":\"$payee\"", "\"type\":\"$type\"")
        val a = http("POST", "/v1/verify", gatewayToken, fields.joinToString(",", "{", "}"))
        check(a.status == 200) { "verify: HTTP ${a.status} ${a.body}" }
        return field(a.body, "result") to field(a.body, "reason")
    }

    /**
     * With two-channel codes: the code's first part from the enrollment answer
     * (`activation_code_atm_part`), what the ATM shows on its screen.
     */
    fun atmPart(enrollment: Answer): String {
        check(enrollment.status == 201) { "enroll: HTTP ${enrollment.status} ${enrollment.body}" }
        return field(enrollment.body, "activation_code_atm_part")
    }

    private fun http(method: String, path: String, token: String, body: String?): Answer {
        val conn = URL(baseUrl + path).openConnection() as HttpURLConnection
        try {
            conn.requestMethod = method
            conn.connectTimeout = 5_000
            conn.readTimeout = 10_000
            conn.setRequestProperty("Authorization", "Bearer $token")
            if (body != null) {
                conn.doOutput = true
                conn.setRequestProperty("Content-Type", "application/json")
                conn.outputStream.use { it.write(body.toByteArray()) }
            }
            val status = conn.responseCode
            val stream = if (status >= 400) conn.errorStream else conn.inputStream
            return Answer(status, stream?.use { String(it.readBytes(), Charsets.UTF_8) } ?: "")
        } finally {
            conn.disconnect()
        }
    }

    /** Stops the server (SIGTERM, then SIGKILL after 10 s) and deletes its data. */
    override fun close() {
        process.destroy()
        if (!process.waitFor(10, TimeUnit.SECONDS)) {
            process.destroyForcibly()
            process.waitFor(5, TimeUnit.SECONDS)
        }
        dir.toFile().deleteRecursively()
    }

    companion object {
        private fun field(json: String, name: String): String =
            Regex("\"$name\"\\s*:\\s*\"([^\"]*)\"").find(json)?.groupValues?.get(1)
                ?: error("no `$name` in $json")

        /** The issuer binary from the system property, or a clear failure. */
        fun binary(): File {
            val path = System.getProperty("pooya.issuer.bin")
                ?: error("system property pooya.issuer.bin is not set (run through `cargo xtask kotlin`)")
            return File(path).also { check(it.canExecute()) { "$path is not an executable" } }
        }

        /**
         * `pooya-issuer init --json` then `serve --listen 127.0.0.1:0`, with [settings] (a JSON
         * object, docs/issuer.md "Settings") as its `--config` file when given; waits for
         * `listening on`.
         */
        fun start(settings: String? = null): IssuerProcess {
            val bin = binary()
            val dir = tempDir("pooya-issuer")
            val data = dir.resolve("data").toString()
            // The issuer refuses to start without an SMS sender: the tests
            // read the development recorder's messages.
            val devSms = "\"sms\": {\"sender\": \"dev_recorder\"}"
            val json = when {
                settings == null -> "{$devSms}"
                settings.contains("\"sms\"") -> settings
                else -> settings.trim().removePrefix("{").trim().let { rest ->
                    if (rest == "}") "{$devSms}" else "{$devSms, $rest"
                }
            }
            val config = dir.resolve("settings.json").toFile().also { it.writeText(json) }
            val init = ProcessBuilder(bin.path, "init", "--data", data, "--json")
                .redirectError(ProcessBuilder.Redirect.INHERIT)
                .apply { environment()["RUST_LOG"] = "warn" }
                .start()
            val initOut = String(init.inputStream.readBytes(), Charsets.UTF_8)
            check(init.waitFor(30, TimeUnit.SECONDS) && init.exitValue() == 0) { "pooya-issuer init failed" }

            val log = dir.resolve("serve.log").toFile()
            val serve = mutableListOf(bin.path, "serve", "--data", data, "--listen", "127.0.0.1:0")
            serve += listOf("--config", config.path)
            val process = ProcessBuilder(serve)
                .redirectError(ProcessBuilder.Redirect.appendTo(log))
                .apply { environment()["RUST_LOG"] = "warn" }
                .start()
            // Read stdout on a thread so a silent server cannot hang the test.
            val lines = LinkedBlockingQueue<String>()
            Thread {
                BufferedReader(InputStreamReader(process.inputStream)).forEachLine { lines.put(it) }
            }.apply { isDaemon = true }.start()
            val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30)
            var address: String? = null
            while (address == null && System.nanoTime() < deadline) {
                val line = lines.poll(200, TimeUnit.MILLISECONDS)
                address = line?.let { Regex("listening on (127\\.0\\.0\\.1:[0-9]+)").find(it)?.groupValues?.get(1) }
                if (line == null && !process.isAlive) break
            }
            if (address == null) {
                process.destroyForcibly()
                val text = if (log.exists()) log.readText() else ""
                dir.toFile().deleteRecursively()
                error("pooya-issuer serve did not print its address: $text")
            }
            return IssuerProcess(
                dir, process, "http://$address",
                publicKey = field(initOut, "issuer_public_key"),
                activationKey = field(initOut, "activation_public_key"),
                atmToken = field(initOut, "atm"),
                gatewayToken = field(initOut, "gateway"),
                opsToken = field(initOut, "ops"),
            )
        }
    }
}
