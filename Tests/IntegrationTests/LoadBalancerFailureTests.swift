// A replica that dies: the ids it owned get 502 JSON while every other id keeps reaching its
// own replica (there is no automatic restart yet).

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest

final class LoadBalancerFailureTests: IntegrationTestCase {
    func testKilledReplicaAnswers502WhileOthersKeepWorking() throws {
        let lb = try startLoadBalancer()
        var rng = SeededRandom(seed: 502)
        let ids = rng.sixDigitIDs(600)
        let (owners, _) = try routeIDs(ids, through: lb, connections: 2)
        XCTAssertEqual(Set(distribution(owners).keys), [1, 2, 3], "distribution \(distribution(owners))")

        // Find server 2 among ds-lb's children by `--id 2` in its command line.
        let pids = lb.replicaPIDsByID()
        let victim = try XCTUnwrap(pids[2], "no child of ds-lb runs with --id 2: \(ProcFS.children(of: lb.process.pid).map(ProcFS.describe))")
        let identity = try XCTUnwrap(ProcFS.identity(victim))
        XCTAssertEqual(kill(victim, SIGKILL), 0)
        XCTAssertEqual(ProcFS.waitUntilGone([identity], timeout: 5), [], "replica 2 did not die: \(ProcFS.describe(victim))")

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
        // No restart yet: the pool still lists server-2.
        assertReplicaState(try lb.request("GET", "/rep"), ["server-1", "server-2", "server-3"], "GET /rep after the kill")
    }
}
