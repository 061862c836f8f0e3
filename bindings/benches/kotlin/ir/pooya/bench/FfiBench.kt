package ir.pooya.bench

import ir.pooya.android.HttpUrlConnectionTransport
import kotlinx.coroutines.runBlocking
import ir.pooya.core.IssuerProcess
import ir.pooya.core.OffsetClock
import ir.pooya.core.PooyaApp
import ir.pooya.core.SoftwareKeystore
import ir.pooya.core.fastSettings
import ir.pooya.core.formatRials
import ir.pooya.core.deleteTree
import ir.pooya.core.noop
import ir.pooya.core.parseAmount
import ir.pooya.core.tempDir

/**
 * Kotlin → Rust call cost, run by `cargo xtask` (kotlin::bench) against the shipping library
 * (profile `mobile`, bindings/mobile.toml):
 * each call is timed alone with System.nanoTime over 10,000 calls after a warm-up, rounds
 * interleaved so the no-op baseline and the real calls see the same machine load; prints
 * medians (and p90) per call in microseconds.
 *
 * The PIN calls run on a card activated against a real issuer (the `pooya-issuer` binary on
 * 127.0.0.1, started and stopped here) in an unlocked vault, with Kotlin hooks: the clock the
 * core reads on every PIN call is a Kotlin object, so each call includes those callbacks.
 */
private const val WARMUP = 20_000
private const val CALLS = 10_000
private const val ROUNDS = 5

private fun measure(body: () -> Unit): LongArray {
    val samples = LongArray(CALLS)
    for (i in 0 until CALLS) {
        val t0 = System.nanoTime()
        body()
        samples[i] = System.nanoTime() - t0
    }
    samples.sort()
    return samples
}

private fun us(ns: Long) = "%.2f".format(ns / 1000.0)

private const val PASSWORD = "pooya-Bench-42"

/** An activated card in an unlocked vault, against a real issuer; returns the card id. */
private fun activate(issuer: IssuerProcess, vault: String): Long {
    val pan = "6104337700000001"
    val phone = "09121110009"
    check(issuer.enroll(pan, phone).status == 201)
    PooyaApp(vault, "bench", keystore, HttpUrlConnectionTransport(), settings = benchSettings).use { app ->
        app.createVault(PASSWORD)
        app.setPhone(phone)
        app.addIssuer("pooya", issuer.baseUrl, issuer.publicKey, issuer.activationKey)
        return runBlocking { app.addCard("pooya", issuer.activationCode(phone), null) }.card.id
    }
}

private val keystore = SoftwareKeystore()

/** The fastest KDF (the bench unlocks twice) and the longest idle timeout (no lock mid-run). */
private val benchSettings = fastSettings().copy(idleTimeoutSecs = 300uL)

fun main() {
    val issuer = IssuerProcess.start()
    val dir = tempDir("pooya-bench")
    try {
        val vault = dir.resolve("vault.db").toString()
        val cardId = activate(issuer, vault)
        // The same vault, opened twice: with the built-in clock (clock = null, what an app
        // normally passes) and with a Kotlin Clock (a callback per clock read).
        val builtIn = PooyaApp(vault, "bench", keystore, HttpUrlConnectionTransport(), settings = benchSettings)
        val kotlinClock = PooyaApp(vault, "bench", keystore, HttpUrlConnectionTransport(), null, OffsetClock(0), benchSettings)
        builtIn.use { a ->
            kotlinClock.use { b ->
                a.unlockWithPassword(PASSWORD)
                b.unlockWithPassword(PASSWORD)
                run(a, b, cardId)
            }
        }
    } finally {
        issuer.close()
        deleteTree(dir)
    }
}

private fun run(app: PooyaApp, withKotlinClock: PooyaApp, cardId: Long) {
    val amount = "۱٬۲۵۰٬۰۰۰"
    val calls: List<Pair<String, () -> Unit>> = listOf(
        "noop()" to { noop() },
        "parseAmount(\"$amount\")" to { check(parseAmount(amount) == 1_250_000UL) },
        "formatRials(1250000)" to { check(formatRials(1_250_000UL).length == 9) },
        "secondPin(card)" to { check(app.secondPin(cardId).code.length == 8) },
        "firstPin(card)" to { check(app.firstPin(cardId).code.length == 6) },
        "secondPin, Kotlin Clock" to { check(withKotlinClock.secondPin(cardId).code.length == 8) },
    )
    for ((_, body) in calls) repeat(WARMUP) { body() }
    val medians = calls.associate { it.first to mutableListOf<Long>() }
    val p90s = calls.associate { it.first to mutableListOf<Long>() }
    repeat(ROUNDS) {
        for ((name, body) in calls) {
            val s = measure(body)
            medians.getValue(name).add(s[CALLS / 2])
            p90s.getValue(name).add(s[CALLS * 9 / 10])
        }
    }
    println("Kotlin -> Rust calls: $CALLS calls per round after $WARMUP warm-up calls, $ROUNDS rounds")
    println("%-32s %12s %12s %16s".format("call", "median µs", "p90 µs", "round medians µs"))
    for ((name, _) in calls) {
        val m = medians.getValue(name).sorted()
        val p = p90s.getValue(name).sorted()
        println("%-32s %12s %12s %16s".format(name, us(m[ROUNDS / 2]), us(p[ROUNDS / 2]), m.joinToString(" ") { us(it) }))
    }
}
