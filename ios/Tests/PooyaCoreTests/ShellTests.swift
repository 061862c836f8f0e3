import Foundation
import PooyaCore
import PooyaShells
import XCTest

/// Mirrors JvmShellsTest.kt for the URLSession transport and the clock.
final class ShellTests: XCTestCase {
    func testRefusesCleartextOffLoopbackBeforeConnecting() async {
        // 192.0.2.0/24 is TEST-NET-1: refused before any connection is attempted.
        do {
            _ = try await URLSessionTransport().postJson(url: "http://192.0.2.1/v1/activate", body: Data("{}".utf8), timeoutMs: 100)
            XCTFail("cleartext off loopback was sent")
        } catch let HostError.Failed(details) {
            XCTAssertTrue(details.contains("loopback"), details)
        } catch {
            XCTFail("\(error)")
        }
        do {
            _ = try await URLSessionTransport().postJson(url: "ftp://127.0.0.1/x", body: Data(), timeoutMs: 100)
            XCTFail("ftp was sent")
        } catch {
        }
    }

    func testNoAnswerThrowsHostError() async {
        // Port 9 (discard) on loopback: nothing listens in a test run.
        do {
            _ = try await URLSessionTransport().postJson(url: "http://127.0.0.1:9/x", body: Data("{}".utf8), timeoutMs: 2_000)
            XCTFail("an answer from port 9")
        } catch HostError.Failed {
        } catch {
            XCTFail("\(error)")
        }
    }

    func testSystemClockIsTheWallClock() {
        let now = UInt64(Date().timeIntervalSince1970)
        let t = SystemClock().nowUnix()
        XCTAssertTrue(t + 2 >= now && t <= now + 2, "\(t) vs \(now)")
    }

    func testRedirectsAreRefused() {
        let from = URL(string: "https://issuer.example/v1/activations")!
        let response = HTTPURLResponse(url: from, statusCode: 307, httpVersion: "HTTP/1.1",
                                       headerFields: ["Location": "https://elsewhere.example/x"])!
        let task = URLSession(configuration: .ephemeral).dataTask(with: from)
        var followed: URLRequest? = URLRequest(url: from)
        RedirectRefuser.shared.urlSession(URLSession.shared, task: task, willPerformHTTPRedirection: response,
                                          newRequest: URLRequest(url: URL(string: "https://elsewhere.example/x")!)) {
            followed = $0
        }
        XCTAssertNil(followed)
    }

    func testSystemClockHasABootClock() throws {
        let a = try XCTUnwrap(SystemClock().bootTime())
        Thread.sleep(forTimeInterval: 0.02)
        let b = try XCTUnwrap(SystemClock().bootTime())
        XCTAssertEqual(a.bootId, b.bootId)
        XCTAssertGreaterThanOrEqual(b.sinceBootMs, a.sinceBootMs)
    }
}
