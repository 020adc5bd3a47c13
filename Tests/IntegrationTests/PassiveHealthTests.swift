// Passive health: a replica that answers its heartbeats but fails the requests themselves is
// taken out of rotation after --max-fails failures within --fail-window, and its heartbeats
// put it back; an idempotent request that met an invalid response goes to the next replica.
// The replicas are ScriptedReplicas behind `--driver static` (their /heartbeat always passes).

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class PassiveHealthTests: IntegrationTestCase {
    /// Whether the scripted replica answers validly; flipped by the test.
    private final class Switch: @unchecked Sendable {
        private let lock = NSLock()
        private var value: Bool
        init(_ value: Bool) { self.value = value }
        var isOn: Bool {
            get { lock.withLock { value } }
            set { lock.withLock { value = newValue } }
        }
    }

    private static let invalid = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nbad"

    private func replicas(brokenFirst: Switch) throws -> (ScriptedReplica, ScriptedReplica) {
        let broken = try ScriptedReplica { _ in
            brokenFirst.isOn ? .init(Self.invalid, close: true) : .init("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfixed")
        }
        let good = try ScriptedReplica { _ in .init("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood") }
        return (broken, good)
    }

    /// ds-lb (one worker) in front of `a` and `b`, with `options`.
    private func startLoadBalancer(
        _ a: ScriptedReplica, _ b: ScriptedReplica, _ options: [String]
    ) throws -> LoadBalancerUnderTest {
        try startLoadBalancer(
            [
                "--listen", "127.0.0.1:0", "--driver", "static", "--workers", "1",
                "--backend", "a=127.0.0.1:\(a.port)", "--backend", "b=127.0.0.1:\(b.port)",
            ] + options)
    }

    private func replicaStatus(_ lb: LoadBalancerUnderTest, _ name: String) throws -> [String: Any] {
        let response = try lb.request("GET", "/status")
        let message = try XCTUnwrap(response.jsonObject?["message"] as? [String: Any], "\(response)")
        let replicas = try XCTUnwrap(message["replicas"] as? [[String: Any]], "\(response)")
        return try XCTUnwrap(replicas.first { $0["name"] as? String == name }, "\(name) not in \(response)")
    }

    func testReplicaFailingRequestsIsTakenOutUntilItsHeartbeatsPass() throws {
        let broken = Switch(true)
        let (a, b) = try replicas(brokenFirst: broken)
        defer { a.stop(); b.stop() }
        // rise 4 at 1 s: out for at least 3 s once marked down, time enough to look.
        let lb = try startLoadBalancer(
            a, b,
            [
                "--retries", "0", "--max-fails", "3", "--fail-window", "5s",
                "--heartbeat-interval", "1s", "--rise", "4",
            ])
        // With no retry, the ids a owns get 502s, until a is marked down.
        var idsOfA: [Int] = []
        for id in 0..<40 {
            let response = try lb.request("GET", "/home?id=\(id)")
            if response.status == 502 { idsOfA.append(id) } else { XCTAssertEqual(response.bodyString, "good", "\(response)") }
        }
        XCTAssertGreaterThanOrEqual(idsOfA.count, 3, "a owns too few of the ids to fail 3 times")
        let marked = try lb.process.waitForStderrLine(
            matching: #"\[!\] Server ([0-9]+) marked down: ([0-9]+) errors in 5s"#, timeout: 10)
        XCTAssertGreaterThanOrEqual(Int(marked[2]) ?? 0, 3, marked[0])
        let status = try replicaStatus(lb, "a")
        XCTAssertEqual(status["state"] as? String, "DOWN", "\(status)")
        XCTAssertEqual(status["marked_down"] as? Bool, true, "\(status)")
        XCTAssertGreaterThanOrEqual(status["failed_requests"] as? Int ?? 0, idsOfA.count, "\(status)")
        // Out of rotation: its ids go to b (once the worker has taken the new snapshot, a
        // moment after the log line).
        let switched = Date().addingTimeInterval(10)
        while Date() < switched, try lb.request("GET", "/home?id=\(idsOfA[0])").bodyString != "good" { usleep(20_000) }
        let servedByA = a.requests
        for id in idsOfA {
            XCTAssertEqual(try lb.request("GET", "/home?id=\(id)").bodyString, "good", "id \(id) while a is marked down")
        }
        XCTAssertEqual(a.requests, servedByA, "a got requests while marked down")

        // Repaired: its heartbeats (which passed all along) put it back, and it gets its ids again.
        broken.isOn = false
        try lb.process.waitForStderrLine(matching: #"\[\+\] Server \#(marked[1]) is back up"#, timeout: 20)
        // The workers take the new snapshot a moment after the log line.
        let deadline = Date().addingTimeInterval(10)
        var body = ""
        while Date() < deadline {
            body = try lb.request("GET", "/home?id=\(idsOfA[0])").bodyString
            if body == "fixed" { break }
            usleep(20_000)
        }
        XCTAssertEqual(body, "fixed", "a is back in rotation")
        XCTAssertEqual(try replicaStatus(lb, "a")["marked_down"] as? Bool, false)
    }

    func testIdempotentRequestsThatMetAnInvalidResponseGoToTheNextReplica() throws {
        let broken = Switch(true)
        let (a, b) = try replicas(brokenFirst: broken)
        defer { a.stop(); b.stop() }
        let lb = try startLoadBalancer(a, b, ["--max-fails", "0", "--heartbeat-interval", "1m"])
        var retried = 0
        for id in 0..<40 {
            let before = a.requests
            let response = try lb.request("GET", "/home?id=\(id)")
            XCTAssertEqual(response.status, 200, "GET id \(id): \(response)")
            XCTAssertEqual(response.bodyString, "good", "GET id \(id): \(response)")
            guard a.requests > before else { continue }
            retried += 1
            // The same id with a method that is not idempotent is not sent twice: 502.
            let post = try lb.request("POST", "/home?id=\(id)")
            XCTAssertEqual(post.status, 502, "POST id \(id): \(post)")
            XCTAssertEqual(try lb.request("DELETE", "/home?id=\(id)").status, 200, "DELETE is idempotent")
        }
        XCTAssertGreaterThan(retried, 0, "no id went to a first")
        // --max-fails 0: never taken out, however many failed.
        XCTAssertEqual(try replicaStatus(lb, "a")["state"] as? String, "UP")
    }

    /// A replica out for failed requests whose heartbeats then fail too is handled as any
    /// replica failing its heartbeats (with the process driver: restarted).
    func testReplicaMarkedDownThatThenFailsItsHeartbeatsIsTreatedAsDown() throws {
        let (a, b) = try replicas(brokenFirst: Switch(true))
        defer { a.stop(); b.stop() }
        let lb = try startLoadBalancer(
            a, b,
            [
                "--retries", "0", "--max-fails", "3", "--fail-window", "5s",
                "--heartbeat-interval", "1s", "--fall", "2", "--rise", "100",
            ])
        for id in 0..<40 { _ = try lb.request("GET", "/home?id=\(id)") }
        let marked = try lb.process.waitForStderrLine(matching: #"\[!\] Server ([0-9]+) marked down"#, timeout: 10)
        a.stop()
        try lb.process.waitForStderrLine(matching: #"\[!\] Server \#(marked[1]) failed heartbeat: L4CON"#, timeout: 15)
        let status = try replicaStatus(lb, "a")
        XCTAssertEqual(status["state"] as? String, "DOWN", "\(status)")
        XCTAssertEqual(status["marked_down"] as? Bool, false, "down for its heartbeats now: \(status)")
    }

    /// Refused connections count as failures too, even those a request fails over from for free;
    /// `--fall 100` keeps its heartbeats from taking it out first.
    func testRefusedConnectionsCountAgainstTheReplica() throws {
        let (a, b) = try replicas(brokenFirst: Switch(false))
        defer { b.stop() }
        a.stop()
        let lb = try startLoadBalancer(
            a, b,
            [
                "--retries", "1", "--max-fails", "3", "--fail-window", "10s",
                "--heartbeat-interval", "1m", "--fall", "100",
            ])
        for id in 0..<40 {
            XCTAssertEqual(try lb.request("GET", "/home?id=\(id)").bodyString, "good", "id \(id) fails over to b")
        }
        try lb.process.waitForStderrLine(matching: #"\[!\] Server [0-9]+ marked down: [0-9]+ errors in 10s"#, timeout: 10)
        let status = try replicaStatus(lb, "a")
        XCTAssertGreaterThanOrEqual(status["failed_requests"] as? Int ?? 0, 3, "\(status)")
        XCTAssertEqual(status["marked_down"] as? Bool, true, "\(status)")
    }

    /// Requests that time out count as failures too.
    func testResponseTimeoutsCountAgainstTheReplica() throws {
        let slow = try ScriptedReplica { _ in
            usleep(1_000_000)
            return .init("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow")
        }
        defer { slow.stop() }
        let lb = try startLoadBalancer([
            "--listen", "127.0.0.1:0", "--driver", "static", "--workers", "1",
            "--backend", "s=127.0.0.1:\(slow.port)", "--response-timeout", "50ms",
            "--max-fails", "3", "--fail-window", "10s", "--heartbeat-interval", "1m",
        ])
        for id in 0..<3 {
            XCTAssertEqual(try lb.request("GET", "/home?id=\(id)").status, 504)
        }
        try lb.process.waitForStderrLine(matching: #"\[!\] Server [0-9]+ marked down: 3 errors in 10s"#, timeout: 10)
        XCTAssertEqual(try replicaStatus(lb, "s")["failed_requests"] as? Int, 3)
    }
}
