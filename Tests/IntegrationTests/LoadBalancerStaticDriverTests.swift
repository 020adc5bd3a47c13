// `--driver static`: ds-lb routes to replicas run by someone else (here: by the test).

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class LoadBalancerStaticDriverTests: IntegrationTestCase {
    func testStaticBackendsReceiveRoutedTraffic() throws {
        let a = try startServer(id: 1)
        let b = try startServer(id: 2)
        let lb = try startLoadBalancer([
            "--listen", "127.0.0.1:0", "--driver", "static",
            "--backend", "a=127.0.0.1:\(a.port)",
            "--backend", "b=127.0.0.1:\(b.port)",
        ])
        XCTAssertEqual(
            ProcFS.children(of: lb.process.pid).map(ProcFS.describe), [],
            "the static driver spawns no replica")
        assertReplicaState(try lb.request("GET", "/rep"), ["a", "b"], "GET /rep with --backend a=... --backend b=...")
        // Each backend has its own number in the log (they were all "Server 0").
        try lb.process.waitForStderrLine(matching: #"\[\+\] Server 1 started: a at "#, timeout: 5)
        try lb.process.waitForStderrLine(matching: #"\[\+\] Server 2 started: b at "#, timeout: 5)

        var rng = SeededRandom(seed: 0xA_B)
        let ids = rng.sixDigitIDs(500)
        let (owners, reconnects) = try routeIDs(ids, through: lb, connections: 2)
        XCTAssertEqual(Set(distribution(owners).keys), [1, 2], "both backends get traffic; distribution \(distribution(owners))")
        XCTAssertEqual(reconnects, 0)
        let (again, _) = try routeIDs(Array(ids.prefix(100)), through: lb, connections: 1)
        XCTAssertTrue(ids.prefix(100).allSatisfy { again[$0] == owners[$0] }, "same id, same backend")

        // The backends are not ds-lb's: stopping ds-lb leaves them running.
        XCTAssertTrue(lb.process.send(signal: SIGTERM))
        XCTAssertEqual(lb.process.waitForExit(timeout: 10), .exited(0))
        XCTAssertTrue(a.process.isRunning && b.process.isRunning, "ds-lb must not stop static backends")
    }
}
