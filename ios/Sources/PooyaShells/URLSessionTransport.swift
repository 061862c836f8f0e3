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
/// - Blocking: the core calls it on the thread the app called the core on, which must not be
///   the main thread.
public final class URLSessionTransport: Transport, @unchecked Sendable {
    private let session: URLSession
    private let maxBodyBytes: Int

    public init(session: URLSession = URLSession(configuration: .ephemeral), maxBodyBytes: Int = 1 << 20) {
        self.session = session
        self.maxBodyBytes = maxBodyBytes
    }

    public func postJson(url: String, body: Data, timeoutMs: UInt64) throws -> HttpResponse {
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

        let done = DispatchSemaphore(value: 0)
        var outcome: Result<HttpResponse, HostError> = .failure(.Failed(details: "no answer"))
        let limit = maxBodyBytes
        let task = session.dataTask(with: request) { data, response, error in
            defer { done.signal() }
            if let error = error as? URLError {
                outcome = .failure(.Failed(details: error.code == .timedOut ? "timed out" : "URLError \(error.code.rawValue)"))
                return
            }
            if let error {
                outcome = .failure(.Failed(details: String(describing: error)))
                return
            }
            guard let http = response as? HTTPURLResponse, let status = UInt16(exactly: http.statusCode) else {
                outcome = .failure(.Failed(details: "not an HTTP response"))
                return
            }
            let bytes = data ?? Data()
            guard bytes.count <= limit else {
                outcome = .failure(.Failed(details: "response body larger than \(limit) bytes"))
                return
            }
            outcome = .success(HttpResponse(status: status, body: bytes))
        }
        task.delegate = RedirectRefuser.shared
        task.resume()
        done.wait()
        return try outcome.get()
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
