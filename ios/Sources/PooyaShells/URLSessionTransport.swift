import Foundation
import PooyaCore

/// The core's `Transport` hook on `URLSession` (system trust store; add pinning through the
/// session delegate if the app pins certificates).
///
/// - `https` only; plain `http` only to loopback addresses (tests, the simulator against a
///   local issuer).
/// - `timeoutMs` bounds the whole request.
/// - Any HTTP status is an answer returned with its body; only the absence of an answer throws
///   `HostError.Failed`. The core checks every answer itself.
/// - Redirects are refused, as the Android shell's `instanceFollowRedirects = false` does: a
///   3xx is returned as the answer (which the core rejects), never followed, so a redirect
///   cannot move the request, its body or the pinned issuer to another URL. Each task gets a
///   `RedirectRefuser` as its task delegate (iOS 15 / macOS 12, the package's minimum), which
///   also covers a `session` the app passes in.
/// - `async`, on URLSession's async API: the library awaits it (from `addCard` and `syncTime`,
///   themselves `async`) without blocking any thread, so they may be called from the main
///   actor. Cancelling the calling task cancels the request.
public final class URLSessionTransport: Transport, @unchecked Sendable {
    private let session: URLSession
    private let maxBodyBytes: Int

    public init(session: URLSession = URLSession(configuration: .ephemeral), maxBodyBytes: Int = 1 << 20) {
        self.session = session
        self.maxBodyBytes = maxBodyBytes
    }

    public func postJson(url: String, body: Data, timeoutMs: UInt64) async throws -> HttpResponse {
        guard let target = URL(string: url), let scheme = target.scheme?.lowercased() else {
            throw HostError.Failed(details: "malformed URL")
        }
        switch scheme {
        case "https":
            break
        case "http":
            guard Self.isLoopback(target.host ?? "") else {
                throw HostError.Failed(details: "plain http is only allowed to loopback addresses")
            }
        default:
            throw HostError.Failed(details: "unsupported URL scheme \(scheme)")
        }

        var request = URLRequest(url: target)
        request.httpMethod = "POST"
        request.httpBody = body
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.setValue("application/json", forHTTPHeaderField: "Accept")
        request.timeoutInterval = TimeInterval(min(timeoutMs, 3_600_000)) / 1000.0
        request.cachePolicy = .reloadIgnoringLocalAndRemoteCacheData

        // URLSession's async API (iOS 15 / macOS 12): the caller's task is suspended, no
        // thread waits. A cancelled task cancels the request (URLError.cancelled), and the
        // library then drops the call, storing nothing.
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await session.data(for: request, delegate: RedirectRefuser.shared)
        } catch let error as URLError {
            throw HostError.Failed(details: error.code == .timedOut ? "timed out" : "URLError \(error.code.rawValue)")
        } catch {
            throw HostError.Failed(details: String(describing: error))
        }
        guard let http = response as? HTTPURLResponse, let status = UInt16(exactly: http.statusCode) else {
            throw HostError.Failed(details: "not an HTTP response")
        }
        guard data.count <= maxBodyBytes else {
            throw HostError.Failed(details: "response body larger than \(maxBodyBytes) bytes")
        }
        return HttpResponse(status: status, body: data)
    }

    /// Literal loopback addresses and `localhost` only: no DNS lookup decides about cleartext.
    static func isLoopback(_ host: String) -> Bool {
        let bare = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        if bare == "localhost" || bare == "::1" { return true }
        let parts = bare.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { UInt8($0) != nil } && parts[0] == "127"
    }
}

/// A task delegate that refuses every HTTP redirect: the 3xx response itself completes the task.
public final class RedirectRefuser: NSObject, URLSessionTaskDelegate, @unchecked Sendable {
    public static let shared = RedirectRefuser()

    public func urlSession(
        _ session: URLSession,
        task: URLSessionTask,
        willPerformHTTPRedirection response: HTTPURLResponse,
        newRequest request: URLRequest,
        completionHandler: @escaping (URLRequest?) -> Void
    ) {
        completionHandler(nil)
    }
}
