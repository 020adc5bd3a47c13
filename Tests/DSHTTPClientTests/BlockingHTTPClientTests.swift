import DSHTTP1
import DSReactor
import DSSystem
import Dispatch
import Foundation
import XCTest

@testable import DSHTTPClient

#if canImport(Glibc)
import Glibc
#endif

/// The blocking facade: an answer, each way a blocking call ends without one, calls from
/// several threads at once, and its loop thread ending with it.
final class BlockingHTTPClientTests: XCTestCase {
    func testAnswerIsReturnedAndTheConnectionKeptForTheNextRequest() throws {
        let server = try ScriptedServer { peer in
            while let request = peer.readRequest() {
                let body = "\(request.head.split(separator: " ")[1]) \(request.body)"
                peer.write("HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
            }
        }
        defer { server.stop() }
        let client = try BlockingHTTPClient(address: server.address, threadName: "test-blocking")
        let request = HTTPClientRequest(method: "POST", target: "/add", host: "test", body: Array("{\"n\": 1}".utf8))
        let first = try client.send(request, timeout: .seconds(10))
        XCTAssertEqual(first.status, 200)
        XCTAssertEqual(String(decoding: first.body, as: UTF8.self), "/add {\"n\": 1}")
        let second = try client.send(.get("/status"), timeout: .seconds(10))
        XCTAssertEqual(String(decoding: second.body, as: UTF8.self), "/status ")
        XCTAssertEqual(server.accepted.withLock { $0 }, 1, "the kept-alive connection was not reused")
    }

    func testASilentServerTimesOut() throws {
        let server = try ScriptedServer { peer in
            _ = peer.readRequest()
            peer.waitForClose(seconds: 20)
        }
        defer { server.stop() }
        let client = try BlockingHTTPClient(address: server.address, threadName: "test-blocking")
        XCTAssertThrowsError(try client.send(.get("/"), timeout: .milliseconds(200))) { error in
            guard case .timedOut(headReceived: false) = error as? HTTPClientError else { return XCTFail("\(error)") }
        }
    }

    func testARefusedConnectionFails() throws {
        let refusing = try RefusingPort()
        defer { refusing.close() }
        let client = try BlockingHTTPClient(address: refusing.address, threadName: "test-blocking")
        XCTAssertThrowsError(try client.send(.get("/"), timeout: .seconds(10))) { error in
            guard case .connectFailed(let cause) = error as? HTTPClientError else { return XCTFail("\(error)") }
            XCTAssertEqual(cause.errno, ECONNREFUSED)
        }
    }

    func testCallsFromSeveralThreadsAtOnceEachGetTheirOwnAnswer() throws {
        let server = try ScriptedServer { peer in
            while let request = peer.readRequest() {
                let target = String(request.head.split(separator: " ")[1])
                peer.write("HTTP/1.1 200 OK\r\nContent-Length: \(target.utf8.count)\r\n\r\n\(target)")
            }
        }
        defer { server.stop() }
        let client = try BlockingHTTPClient(address: server.address, threadName: "test-blocking")
        let answers = Locked<[String: String]>([:])
        DispatchQueue.concurrentPerform(iterations: 8) { index in
            let target = "/call-\(index)"
            let answer: String
            do { answer = String(decoding: try client.send(.get(target), timeout: .seconds(10)).body, as: UTF8.self) } catch {
                answer = "\(error)"
            }
            answers.withLock { $0[target] = answer }
        }
        let expected = Dictionary(uniqueKeysWithValues: (0..<8).map { ("/call-\($0)", "/call-\($0)") })
        XCTAssertEqual(answers.withLock { $0 }, expected)
    }

    func testDroppingTheClientEndsItsLoopThreadAndClosesItsConnections() throws {
        let closed = DispatchSemaphore(value: 0)
        let server = try ScriptedServer { peer in
            // Longer than the test waits: a nil here in time means the client closed its connection.
            while peer.readRequest(seconds: 60) != nil {
                peer.write("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            }
            closed.signal()
        }
        defer { server.stop() }
        let name = "tb-\(UInt32.random(in: 10_000...99_999))"
        var client: BlockingHTTPClient? = try BlockingHTTPClient(address: server.address, threadName: name)
        XCTAssertEqual(try client?.send(.get("/"), timeout: .seconds(10)).status, 200)
        XCTAssertTrue(Self.threadNames().contains(name), "the loop thread is not running as \(name)")
        client = nil
        let deadline = monotonicNanoseconds() + 10_000_000_000
        while Self.threadNames().contains(name) && monotonicNanoseconds() < deadline { usleep(10_000) }
        XCTAssertFalse(Self.threadNames().contains(name), "the loop thread outlived its client")
        XCTAssertEqual(closed.wait(timeout: .now() + 10), .success, "the kept-alive connection was not closed")
    }

    /// The names of this process's threads.
    private static func threadNames() -> Set<String> {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        return Set(
            tasks.compactMap { task in
                (try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8))?.trimmingCharacters(
                    in: .whitespacesAndNewlines)
            })
    }
}
