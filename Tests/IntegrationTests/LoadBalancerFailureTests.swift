// A replica that dies while ds-lb keeps it in rotation: with `--retries 0` the ids it owned get
// 502 JSON (never a hang) while every other id keeps reaching its own replica; with the default
// `--retries 1` they are served by the next replica for their key instead. Static backends are
// used so nothing restarts the dead one, and `--fall 100` keeps it in rotation for the test.

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest

final class LoadBalancerFailureTests: IntegrationTestCase {
    private func startPair(retries: Int) throws -> (LoadBalancerUnderTest, ServerUnderTest, ServerUnderTest) {
        let a = try startServer(id: 1)
        let b = try startServer(id: 2)
        let lb = try startLoadBalancer(["--listen", "127.0.0.1:0", "--driver", "static",
                                        "--backend", "server-1=127.0.0.1:\(a.port)", "--backend", "server-2=127.0.0.1:\(b.port)",
                                        "--retries", "\(retries)", "--fall", "100", "--heartbeat-interval", "1m"])
        return (lb, a, b)
    }

    private func kill(_ server: ServerUnderTest) throws {
        XCTAssertTrue(server.process.send(signal: SIGKILL))
        XCTAssertNotNil(server.process.waitForExit(timeout: 5), "replica did not die")
    }

    func testKilledReplicaAnswers502WhileOthersKeepWorking() throws {
        let (lb, _, b) = try startPair(retries: 0)
        var rng = SeededRandom(seed: 502)
        let ids = rng.sixDigitIDs(400)
        let (owners, _) = try routeIDs(ids, through: lb, connections: 2)
        XCTAssertEqual(Set(distribution(owners).keys), [1, 2], "distribution \(distribution(owners))")
        try kill(b)

        // Keep-alive clients that were idle while the replica died; ds-lb may close them
        // after a 502, the client then reconnects.
        let clients = [lb.client(), lb.client()]
        var failures: [String] = []
        for (i, id) in ids.enumerated() {
            let response = try clients[i % 2].get("/home?id=\(id)")
            if owners[id] == 2 {
                if response.status != 502 || response.jsonStatus != "failure" || (response.messageString ?? "").isEmpty {
                    failures.append("id \(id) (owned by the killed server 2): expected 502 JSON failure, got \(response)")
                }
            } else if response.status != 200 || response.helloServerID != owners[id] {
                failures.append("id \(id) (owned by server \(owners[id] ?? -1)): expected 200 Hello from Server: \(owners[id] ?? -1), got \(response)")
            }
        }
        XCTAssertTrue(failures.isEmpty, "\(failures.count) of \(ids.count) answers wrong after SIGKILL of replica 2:\n\(failures.prefix(8).joined(separator: "\n"))")
        XCTAssertTrue(lb.process.isRunning, "ds-lb must survive a replica's death")
        assertReplicaState(try lb.request("GET", "/rep"), ["server-1", "server-2"], "GET /rep after the kill")
    }

    func testRetryMovesRequestsOfADeadReplicaToTheNextOne() throws {
        let (lb, _, b) = try startPair(retries: 1)
        var rng = SeededRandom(seed: 503)
        let ids = rng.sixDigitIDs(300)
        let (owners, _) = try routeIDs(ids, through: lb, connections: 2)
        XCTAssertEqual(Set(distribution(owners).keys), [1, 2])
        try kill(b)
        let client = lb.client()
        for id in ids {
            let response = try client.get("/home?id=\(id)")
            XCTAssertEqual(response.status, 200, "id \(id): \(response)")
            XCTAssertEqual(response.helloServerID, 1, "id \(id) must fail over to the only live replica")
        }
    }
}
