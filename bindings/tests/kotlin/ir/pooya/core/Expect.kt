package ir.pooya.core

import org.junit.Assert.fail

/** Runs [block] and returns the [T] it throws; fails the test if it throws nothing or something else. */
inline fun <reified T : Throwable> expectThrows(block: () -> Unit): T {
    try {
        block()
    } catch (e: Throwable) {
        if (e is T) return e
        throw AssertionError("expected ${T::class.simpleName}, got $e", e)
    }
    fail("expected ${T::class.simpleName}, nothing was thrown")
    throw IllegalStateException("unreachable")
}
