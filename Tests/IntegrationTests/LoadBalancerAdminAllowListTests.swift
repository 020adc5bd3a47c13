// `--admin-allow`: the admin API answers only clients whose source address is in the list
// (which replaces the loopback default); routed traffic stays open to everyone.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class LoadBalancerAdminAllowListTests: IntegrationTestCase {
    func testAdminOutsideTheAllowListGets403WhileRoutingStaysOpen() throws {
        let lb = try startLoadBalancer([
            "--listen", "127.0.0.1:0", "--replicas", "3",
            "--admin-allow", "127.0.0.2/32",
        ])
        let initial = ["server-1", "server-2", "server-3"]

        // 127.0.0.3 is not in the list: every admin endpoint is forbidden.
        assertFailure(try lb.request("GET", "/rep", source: "127.0.0.3"), 403, "GET /rep from 127.0.0.3")
        assertFailure(try lb.admin("POST", "/add", source: "127.0.0.3"), 403, "POST /add from 127.0.0.3")
        assertFailure(try lb.admin("DELETE", "/rm?id=1", source: "127.0.0.3"), 403, "DELETE /rm?id=1 from 127.0.0.3")
        assertFailure(
            try lb.admin("DELETE", "/rm", json: ["n": 1, "hostnames": ["server-2"]], source: "127.0.0.3"),
            403, "DELETE /rm {n: 1, hostnames: [server-2]} from 127.0.0.3")
        // The list replaces the default, so 127.0.0.1 is not allowed either.
        assertFailure(
            try lb.request("GET", "/rep", source: "127.0.0.1"), 403,
            "GET /rep from 127.0.0.1 with --admin-allow 127.0.0.2/32")

        // Routed traffic from 127.0.0.3 works, on a keep-alive connection.
        let client = lb.client(source: "127.0.0.3")
        var rng = SeededRandom(seed: 3)
        for id in rng.sixDigitIDs(50) {
            let response = try client.get("/home?id=\(id)")
            XCTAssertEqual(response.status, 200, "routed GET /home?id=\(id) from 127.0.0.3: \(response)")
            XCTAssertNotNil(response.helloServerID, "\(response)")
            if response.status != 200 { break }
        }

        // 127.0.0.2 is allowed, and the forbidden commands changed nothing.
        assertReplicaState(try lb.request("GET", "/rep", source: "127.0.0.2"), initial, "GET /rep from 127.0.0.2")
        assertReplicaState(
            try lb.admin("POST", "/add", source: "127.0.0.2"), initial + ["server-4"],
            "POST /add from 127.0.0.2")
    }

    func testAdminAllowListTakesSeveralCIDRs() throws {
        let lb = try startLoadBalancer([
            "--listen", "127.0.0.1:0", "--replicas", "1",
            "--admin-allow", "127.0.0.2/32,127.0.0.8/29",
        ])
        for allowed in ["127.0.0.2", "127.0.0.8", "127.0.0.15"] {
            assertReplicaState(try lb.request("GET", "/rep", source: allowed), ["server-1"], "GET /rep from \(allowed)")
        }
        for denied in ["127.0.0.1", "127.0.0.3", "127.0.0.16"] {
            assertFailure(try lb.request("GET", "/rep", source: denied), 403, "GET /rep from \(denied)")
        }
    }
}
