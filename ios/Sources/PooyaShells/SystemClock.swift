import Foundation
import PooyaCore

/// The wall clock for the core's `Clock` hook: seconds since the Unix epoch. The core corrects
/// it per issuer with the server-time offset learnt at activation.
public final class SystemClock: Clock {
    public init() {}

    public func nowUnix() -> UInt64 {
        UInt64(max(0, Date().timeIntervalSince1970))
    }
}
