package ir.pooya.bench

import ir.pooya.core.noop
import ir.pooya.core.parseAmount

/**
 * Kotlin → Rust call cost, run by `cargo xtask` (kotlin::bench) against the release library:
 * each call is timed alone with System.nanoTime over 10,000 calls after a warm-up, rounds
 * interleaved so the no-op baseline and the real call see the same machine load; prints
 * medians (and p90) per call in microseconds.
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

fun main() {
    val amount = "۱٬۲۵۰٬۰۰۰"
    val calls: List<Pair<String, () -> Unit>> = listOf(
        "noop()" to { noop() },
        "parseAmount(\"$amount\")" to { check(parseAmount(amount) == 1_250_000UL) },
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
