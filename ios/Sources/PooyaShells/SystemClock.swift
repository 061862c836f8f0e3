import Foundation
import PooyaCore

/// The wall clock for the core's `Clock` hook: seconds since the Unix epoch. The core corrects
/// it per issuer with the server-time offset learnt at activation.
///
/// `bootTime()` is the boot clock the user cannot set: `ProcessInfo.systemUptime` counts from
/// boot (it is not changed by setting the date), and the boot id is the kernel's
/// `kern.boottime` (seconds and microseconds of the boot instant), which changes at every
/// restart. The core measures its wrong-password delays on it (docs/security.md, "Lockout
/// clock"). Note: `systemUptime` does not count time asleep; that only makes a delay last
/// longer, never shorter.
public final class SystemClock: Clock {
    public init() {}

    public func nowUnix() -> UInt64 {
        UInt64(max(0, Date().timeIntervalSince1970))
    }

    public func bootTime() -> BootTime? {
        var tv = timeval()
        var size = MemoryLayout<timeval>.stride
        var mib: [Int32] = [CTL_KERN, KERN_BOOTTIME]
        guard sysctl(&mib, 2, &tv, &size, nil, 0) == 0, tv.tv_sec > 0 else { return nil }
        let uptime = max(0, ProcessInfo.processInfo.systemUptime)
        return BootTime(bootId: "ios-boot-\(tv.tv_sec).\(tv.tv_usec)",
                        sinceBootMs: UInt64(uptime * 1000))
    }
}
