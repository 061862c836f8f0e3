import Foundation
import PooyaCore

/// The wall clock for the core's `Clock` hook: seconds since the Unix epoch. The core corrects
/// it per issuer with the server-time offset learnt at activation.
///
/// `bootTime()` is the boot clock the user cannot set: `ProcessInfo.systemUptime` counts from
/// boot (it is not changed by setting the date), and the boot id is the kernel's
/// `kern.bootsessionuuid`, a random UUID made at every boot. (Not `kern.boottime`: XNU moves
/// that instant when the date is set, so a boot id made from it would change with the date and
/// the core would take it for a reboot, crediting the whole uptime to a lockout delay.) The core measures its wrong-password delays on it (docs/security.md, "Lockout
/// clock"). Note: `systemUptime` does not count time asleep; that only makes a delay last
/// longer, never shorter.
public final class SystemClock: Clock {
    public init() {}

    public func nowUnix() -> UInt64 {
        UInt64(max(0, Date().timeIntervalSince1970))
    }

    public func bootTime() -> BootTime? {
        var size = 0
        guard sysctlbyname("kern.bootsessionuuid", nil, &size, nil, 0) == 0, size > 1 else {
            return nil
        }
        var buf = [CChar](repeating: 0, count: size)
        guard sysctlbyname("kern.bootsessionuuid", &buf, &size, nil, 0) == 0 else { return nil }
        let id = String(cString: buf)
        guard !id.isEmpty else { return nil }
        let uptime = max(0, ProcessInfo.processInfo.systemUptime)
        return BootTime(bootId: "ios-boot-\(id)", sinceBootMs: UInt64(uptime * 1000))
    }
}
