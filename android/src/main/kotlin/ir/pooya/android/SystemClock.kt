package ir.pooya.android

import ir.pooya.core.BootTime
import ir.pooya.core.Clock
import java.io.File

/**
 * The wall clock for the core's [Clock] hook: seconds since the Unix epoch from
 * [System.currentTimeMillis]. The core corrects it per issuer with the server-time
 * offset it learns at activation, so a phone clock that is minutes off still gives
 * accepted PINs. Uses only the JVM, so it is also tested on the desktop JVM.
 *
 * [bootTime] reads the Linux boot clock (`/proc/uptime`, which is `CLOCK_BOOTTIME` and counts
 * through sleep, and `/proc/sys/kernel/random/boot_id`); it answers `null` where those cannot
 * be read. On a phone, use [AndroidClock], which takes the same clock from
 * `SystemClock.elapsedRealtime()` through the documented API.
 */
object SystemClock : Clock {
    override fun nowUnix(): ULong = (System.currentTimeMillis() / 1000L).coerceAtLeast(0L).toULong()

    override fun bootTime(): BootTime? = try {
        val id = File("/proc/sys/kernel/random/boot_id").readText().trim()
        val uptime = File("/proc/uptime").readText().trim().split(' ').first()
        val ms = java.math.BigDecimal(uptime).movePointRight(3).toLong()
        if (id.isEmpty() || id.length > 128 || ms < 0) null else BootTime(id, ms.toULong())
    } catch (e: Exception) {
        null
    }
}
