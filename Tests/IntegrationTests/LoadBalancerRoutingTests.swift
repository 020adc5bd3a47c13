// ds-lb with three process replicas: routing by consistent hash of ?id=, keep-alive to
// clients, forwarding of any non-admin path, `ds-lb serve`, and chunked request bodies.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class LoadBalancerRoutingTests: IntegrationTestCase {
    /// 3,000 random 6-digit ids over 4 keep-alive connections reach all three replicas; a
    /// sample asked again (on other connections) reaches the same replica every time.
    func testThreeThousandRandomIDsReachAllReplicasConsistently() throws {
        let lb = try startLoadBalancer()
        var rng = SeededRandom(seed: 0x5EED_2024)
        let ids = rng.sixDigitIDs(3000)

        let (owners, reconnects) = try routeIDs(ids, through: lb, connections: 4)
        XCTAssertEqual(owners.count, ids.count, "every request answered by a replica")
        XCTAssertEqual(reconnects, 0, "ds-lb must keep client connections alive (4 connections for 3,000 requests)")
        let spread = distribution(owners)
        XCTAssertEqual(Set(spread.keys), [1, 2, 3], "ids must reach all three replicas; distribution \(spread)")

        // Same id → same replica: a sample of 300, asked twice more on fresh connections.
        let sample = Array(ids.shuffled(using: &rng).prefix(300))
        for round in 1...2 {
            let (again, _) = try routeIDs(sample, through: lb, connections: 3)
            let moved = sample.filter { again[$0] != owners[$0] }
            XCTAssertTrue(
                moved.isEmpty,
                "round \(round): ids answered by another replica than before: \(moved.prefix(10).map { "\($0): \(owners[$0] ?? -1) → \(again[$0] ?? -1)" })"
            )
        }
    }

    /// With `--hash-key query:id,client-ip`, a request without ?id= is keyed by the client
    /// address: repeated requests from one address, over new connections (new source ports),
    /// reach one replica.
    func testRequestWithoutIDIsStickyToClientAddressWithClientIPKey() throws {
        let lb = try startLoadBalancer(["--listen", "127.0.0.1:0", "--replicas", "3", "--hash-key", "query:id,client-ip"])
        for source in ["127.0.0.1", "127.0.0.5"] {
            var seen = Set<Int>()
            for _ in 0..<6 {
                let response = try lb.request("GET", "/home", source: source)
                XCTAssertEqual(response.status, 200, "GET /home from \(source): \(response)")
                if let server = response.helloServerID { seen.insert(server) }
            }
            XCTAssertEqual(seen.count, 1, "GET /home without ?id= from \(source) reached replicas \(seen.sorted())")
        }
    }

    /// Any non-admin path goes to the replica: its own 400 for an unknown endpoint and its
    /// empty /heartbeat come back through ds-lb.
    func testNonAdminPathsAreForwardedToTheReplica() throws {
        let lb = try startLoadBalancer()
        let client = lb.client()
        let unknown = try client.get("/foo?id=123456")
        assertFailure(
            unknown, 400, "GET /foo?id=123456 through ds-lb",
            message: "<Error> '/foo' endpoint does not exist in server replicas")
        let heartbeat = try client.get("/heartbeat?id=123456")
        XCTAssertEqual(heartbeat.status, 200, "GET /heartbeat?id=123456 through ds-lb: \(heartbeat)")
        XCTAssertTrue(heartbeat.body.isEmpty, "\(heartbeat)")
        let home = try client.get("/home?id=123456")
        XCTAssertEqual(home.status, 200, "\(home)")
        XCTAssertEqual(home.jsonStatus, "successful", "\(home)")
        XCTAssertNotNil(home.helloServerID, "GET /home?id=123456 through ds-lb: \(home)")
        XCTAssertEqual(home.header("Content-Type")?.lowercased().hasPrefix("application/json"), true, "\(home)")
    }

    /// `ds-lb serve ...` is the same as `ds-lb ...` (here also with `--workers 2`).
    func testServeSubcommandRunsTheSameBalancer() throws {
        let lb = try startLoadBalancer(["serve", "--listen", "127.0.0.1:0", "--replicas", "2", "--workers", "2"])
        assertReplicaState(try lb.request("GET", "/rep"), ["server-1", "server-2"], "GET /rep after `serve --replicas 2`")
        var rng = SeededRandom(seed: 77)
        let (owners, _) = try routeIDs(rng.sixDigitIDs(200), through: lb, connections: 4)
        XCTAssertEqual(Set(distribution(owners).keys), [1, 2], "distribution \(distribution(owners))")
    }

    /// Chunked request bodies go through as they came (their end found by the chunk framing),
    /// the connection stays usable, and bad chunk framing is 400 with JSON and a closed connection.
    func testChunkedRequestBodiesAreForwarded() throws {
        let lb = try startLoadBalancer()
        let connection = try HTTPConnection(port: lb.port)
        XCTAssertEqual(try connection.get("/home?id=1").status, 200)
        var rng = SeededRandom(seed: 99)
        var payload: [UInt8] = []
        var expected: [UInt8] = []
        for _ in 0..<50 {
            let size = Int(rng.next() % 5000) + 1
            let chunk = (0..<size).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            payload += Array(String(size, radix: 16).utf8) + [13, 10] + chunk + [13, 10]
            expected += chunk
        }
        payload += Array("0\r\nX-Checksum: none\r\n\r\n".utf8)
        try connection.send(
            HTTPConnection.requestBytes(
                "POST", "/echo?id=1", headers: [("Transfer-Encoding", "chunked")], body: payload))
        let response = try connection.readResponse(method: "POST")
        XCTAssertEqual(response.status, 200, "\(response)")
        XCTAssertTrue(response.body == expected, "the chunked body must arrive byte-identical")
        XCTAssertEqual(try connection.get("/home?id=1").status, 200, "the connection stays usable")

        let bad = try HTTPConnection(port: lb.port)
        try bad.send(
            HTTPConnection.requestBytes(
                "POST", "/home?id=1", headers: [("Transfer-Encoding", "chunked")], body: Array("zz\r\nhello\r\n0\r\n\r\n".utf8)))
        let refused = try bad.readResponse()
        assertFailure(refused, 400, "POST with an invalid chunk size through ds-lb")
        XCTAssertTrue(bad.isClosedByPeer(within: 30), "ds-lb must close the connection after bad chunk framing")
        XCTAssertEqual(try lb.request("GET", "/home?id=1").status, 200)
    }
}
