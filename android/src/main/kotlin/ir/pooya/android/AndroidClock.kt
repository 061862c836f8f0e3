package ir.pooya.android

import android.content.Context
import android.provider.Settings
import ir.pooya.core.BootTime
import ir.pooya.core.Clock

/**
 * The phone's [Clock] hook: the wall clock of [SystemClock], and the boot clock from
 * `android.os.SystemClock.elapsedRealtime()` (milliseconds since boot, counted through deep
 * sleep, not settable by the user or apps). The boot id is `Settings.Global.BOOT_COUNT`
 * (API 24+), which the system increments at every boot. The core measures its wrong-password
 * delays on this clock (docs/security.md, "Lockout clock"), so moving the phone's date forward
 * does not shorten them.
 */
class AndroidClock(context: Context) : Clock {
    private val resolver = context.applicationContext.contentResolver

    override fun nowUnix(): ULong = SystemClock.nowUnix()

    override fun bootTime(): BootTime? {
        val count = Settings.Global.getInt(resolver, Settings.Global.BOOT_COUNT, -1)
        if (count < 0) return SystemClock.bootTime()
        val ms = android.os.SystemClock.elapsedRealtime().coerceAtLeast(0L).toULong()
        return BootTime("android-boot-$count", ms)
    }
}
