package ir.pooya.android

import ir.pooya.core.Clock

/**
 * The wall clock for the core's [Clock] hook: seconds since the Unix epoch from
 * [System.currentTimeMillis]. The core corrects it per issuer with the server-time
 * offset it learns at activation, so a phone clock that is minutes off still gives
 * accepted PINs. Uses only the JVM, so it is also tested on the desktop JVM.
 */
object SystemClock : Clock {
    override fun nowUnix(): ULong = (System.currentTimeMillis() / 1000L).coerceAtLeast(0L).toULong()
}
