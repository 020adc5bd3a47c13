// Requests without a key: the default chain `query:id,random` gives each a random 6-digit id, so
// keyless load from one client spreads over the pool (LoadBalancerRoutingTests covers
// `query:id,client-ip`, which pins it to the client's address).

import Foundation
import XCTest

final class KeylessRoutingTests: IntegrationTestCase {
    private let requests = 10_000
    private let connections = 64

    /// Server number → requests answered, for `requests` keyless `GET /home` from one client.
    private func keylessSplit(_ lb: LoadBalancerUnderTest) throws -> [Int: Int] {
        let (servers, _) = try route(Array(repeating: "/home", count: requests), through: lb, connections: connections)
        return servers.reduce(into: [:]) { split, server in split[server ?? 0, default: 0] += 1 }
    }

    func testKeylessRequestsSpreadEvenlyByDefault() throws {
        let lb = try startLoadBalancer(["--listen", "127.0.0.1:0", "--replicas", "3", "--hash", "rendezvous"])
        try lb.process.waitForStderrLine(matching: #"Listening on .*key: query:id,random\)"#, timeout: 5)
        let split = try keylessSplit(lb)
        // 3,333 ± 7 %: five standard deviations of a fair three-way split of 10,000.
        for server in 1...3 {
            let count = split[server] ?? 0
            XCTAssertLessThanOrEqual(abs(count - requests / 3), requests / 3 * 7 / 100, "server \(server): \(split)")
        }
        XCTAssertEqual(split.keys.sorted(), [1, 2, 3], "\(split)")
    }

    /// The course's hash over random 6-digit ids sends about 84 % to server 1.
    func testKeylessRequestsFollowTheAssignmentSplit() throws {
        let lb = try startLoadBalancer(["--listen", "127.0.0.1:0", "--replicas", "3", "--hash", "assignment"])
        let split = try keylessSplit(lb)
        let first = split[1] ?? 0
        XCTAssertTrue((requests * 80 / 100...requests * 88 / 100).contains(first), "server 1 got \(first): \(split)")
        XCTAssertEqual(split.values.reduce(0, +), requests, "\(split)")
        XCTAssertNil(split[0], "some requests were not answered by a replica: \(split)")
    }
}
