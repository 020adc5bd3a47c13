// Idle keep-alive connections from ds-lb to a replica do not outlast a burst: they expire
// after `--upstream-idle-timeout`, and at most `--upstream-max-idle` per replica are kept over
// all workers. The replica is a ScriptedReplica behind `--driver static` that counts the
// connections it has open; its answers take a moment, so a burst of clients needs one
// connection each.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class UpstreamIdleTests: IntegrationTestCase {
    private let burst = 24
    private let gate = PipeliningTests.Gate()

    /// Holds every request of the burst until the whole burst is in, so that each client needs
    /// a replica connection of its own however slowly the burst arrives.
    private func slowReplica() throws -> ScriptedReplica {
        let gate = self.gate
        return try ScriptedReplica { _ in
            gate.pass()
            return .init("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        }
    }

    /// `burst` clients with a request in flight at once, each answered 200.
    private func sendBurst(to lb: LoadBalancerUnderTest) throws {
        var clients: [HTTPConnection] = []
        defer { clients.forEach { $0.close() } }
        for i in 0..<burst {
            let client = try HTTPConnection(port: lb.port, timeout: 15)
            try client.send("GET /home?id=\(i) HTTP/1.1\r\nHost: burst\r\n\r\n")
            clients.append(client)
        }
        XCTAssertTrue(gate.waitUntilHeld(burst, timeout: 30), "\(gate.held) of \(burst) requests reached the replica at once")
        gate.open()
        for client in clients {
            let response = try client.readResponse()
            XCTAssertEqual(response.status, 200, "\(response)")
        }
    }

    /// ds-lb in front of `replica` alone, with `options`, after a burst through it.
    private func startBurst(at replica: ScriptedReplica, _ options: [String]) throws -> LoadBalancerUnderTest {
        let lb = try startLoadBalancer(
            [
                "--listen", "127.0.0.1:0", "--driver", "static", "--heartbeat-interval", "1m",
                "--backend", "s=127.0.0.1:\(replica.port)",
            ] + options)
        try sendBurst(to: lb)
        return lb
    }

    private func open(_ replica: ScriptedReplica) -> Int { replica.accepted - replica.closed }

    func testIdleReplicaConnectionsExpireAfterTheIdleTimeout() throws {
        let replica = try slowReplica()
        defer { replica.stop() }
        let lb = try startBurst(at: replica, ["--workers", "1", "--upstream-idle-timeout", "300ms"])
        // Every client of the burst was held at the replica at once, each on its own connection.
        XCTAssertGreaterThan(replica.accepted, burst / 2, "replica connections opened for the burst")
        // Nothing uses them any more: all are closed once idle for the timeout.
        XCTAssertTrue(
            replica.wait(timeout: 10) { self.open($0) == 0 },
            "\(open(replica)) replica connections still open, idle since the burst")
        // And the next request opens a fresh one.
        XCTAssertEqual(try lb.request("GET", "/home?id=1").status, 200)
    }

    func testIdleReplicaConnectionsAreCappedOverAllWorkers() throws {
        let replica = try slowReplica()
        defer { replica.stop() }
        let lb = try startBurst(at: replica, ["--workers", "2", "--upstream-max-idle", "4"])
        XCTAssertGreaterThan(replica.accepted, burst / 2, "replica connections opened for the burst")
        // Two per worker are kept; the rest are closed as their exchanges end.
        XCTAssertTrue(
            replica.wait(timeout: 10) { self.open($0) <= 4 },
            "\(open(replica)) idle replica connections kept, over --upstream-max-idle 4")
        // The ones kept are reused (idle timeout 30 s by default).
        let accepted = replica.accepted
        XCTAssertEqual(try lb.request("GET", "/home?id=1").status, 200)
        XCTAssertEqual(replica.accepted, accepted, "a kept connection serves the next request")
    }
}
