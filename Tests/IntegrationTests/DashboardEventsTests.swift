// The dashboard's data over plain HTTP: the server-sent event stream (/events), the key space
// shares (/keyspace), and a stream's end at graceful stop.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class DashboardEventsTests: IntegrationTestCase {
    /// Reads the stream on `connection` until its bytes contain `text` (`count` times); all bytes
    /// read so far.
    private func readStream(
        _ connection: HTTPConnection, until text: String, count: Int = 1, timeout: TimeInterval = 10
    ) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let received = String(decoding: connection.unconsumedBytes, as: UTF8.self)
            if received.components(separatedBy: text).count > count { return received }
            if connection.isClosedByPeer(within: 0.2) {
                throw HTTPClientError(kind: .closedByPeer("stream ended before '\(text)': \(received)"))
            }
            if Date() > deadline { throw HTTPClientError(kind: .timeout("'\(text)' not in the stream: \(received)")) }
        }
    }

    func testTheStreamCarriesCountersEverySecondAndTheSupervisorsEvents() throws {
        let lb = try startLoadBalancer(["--listen", "127.0.0.1:0", "--replicas", "2"])
        let stream = try HTTPConnection(port: lb.port)
        defer { stream.close() }
        try stream.send(HTTPConnection.requestBytes("GET", "/events"))
        let head = try readStream(stream, until: "\r\n\r\n")
        XCTAssertTrue(head.hasPrefix("HTTP/1.1 200 OK\r\n"), head)
        XCTAssertTrue(head.contains("Content-Type: text/event-stream"), head)
        XCTAssertFalse(head.contains("Content-Length"), head)
        // The first counters at once, the next a second later: the stream is live, not one answer.
        let first = try readStream(stream, until: "event: counters")
        XCTAssertTrue(first.contains("\"replicas\": [{\"name\": \"server-1\""), first)
        _ = try readStream(stream, until: "event: counters", count: 2)

        // A scale event reaches the open stream.
        assertReplicaState(try lb.admin("POST", "/add"), ["server-1", "server-2", "server-3"], "POST /add")
        let events = try readStream(stream, until: "\"type\": \"added\"")
        XCTAssertTrue(events.contains("event: replica\ndata: {\"type\": \"added\""), events)
        XCTAssertTrue(events.contains("\"backend\": \"server-3\""), events)

        // A stream opened later starts with what happened before it.
        let late = try HTTPConnection(port: lb.port)
        defer { late.close() }
        try late.send(HTTPConnection.requestBytes("GET", "/events"))
        XCTAssertTrue(try readStream(late, until: "event: counters").contains("event: history\ndata: {\"type\": \"added\""))

        // Not a method the stream takes.
        assertFailure(try lb.request("POST", "/events"), 405, "POST /events")
    }

    /// In cluster mode the stream carries the nodes joining and leaving.
    func testTheStreamCarriesNodesJoiningAndLeavingTheCluster() throws {
        let etcd = try startEtcdMember()
        func node(_ name: String) throws -> LoadBalancerUnderTest {
            try startLoadBalancer([
                "--listen", "127.0.0.1:0", "--etcd", etcd, "--node-name", name, "--replicas", "1", "--node-lease", "2s",
            ])
        }
        let n1 = try node("n1")
        let stream = try HTTPConnection(port: n1.port)
        defer { stream.close() }
        try stream.send(HTTPConnection.requestBytes("GET", "/events"))
        _ = try readStream(stream, until: "event: counters")
        let n2 = try node("n2")
        let joined = try readStream(stream, until: "Node n2 joined the cluster", timeout: 20)
        XCTAssertTrue(joined.contains("event: replica\ndata: {\"type\": \"node_joined\""), joined)
        XCTAssertTrue(n2.process.send(signal: SIGKILL))
        let lost = try readStream(stream, until: "Node n2 left the cluster", timeout: 20)
        XCTAssertTrue(lost.contains("\"type\": \"node_lost\""), lost)
    }

    func testKeyspaceGivesEachReplicasShareOfTheKeys() throws {
        let lb = try startLoadBalancer(["--listen", "127.0.0.1:0", "--replicas", "4", "--hash", "ring"])
        let response = try lb.request("GET", "/keyspace")
        XCTAssertEqual(response.status, 200, "\(response)")
        let message = response.jsonObject?["message"] as? [String: Any]
        XCTAssertEqual(message?["algorithm"] as? String, "ring")
        let replicas = message?["replicas"] as? [[String: Any]] ?? []
        XCTAssertEqual(replicas.compactMap { $0["name"] as? String }, ["server-1", "server-2", "server-3", "server-4"])
        let shares = replicas.compactMap { $0["share"] as? Double }
        XCTAssertEqual(shares.reduce(0, +), 1, accuracy: 0.0001, "\(shares)")
        for share in shares { XCTAssertEqual(share, 0.25, accuracy: 0.1, "\(shares)") }
        // Routed like the table while every replica is up.
        XCTAssertEqual(replicas.compactMap { $0["routed"] as? Double }, shares)
    }

    func testOpenStreamsEndAtGracefulStop() throws {
        let lb = try startLoadBalancer(["--listen", "127.0.0.1:0", "--replicas", "1", "--drain-timeout", "60s"])
        let stream = try HTTPConnection(port: lb.port)
        defer { stream.close() }
        try stream.send(HTTPConnection.requestBytes("GET", "/events"))
        _ = try readStream(stream, until: "event: counters")
        XCTAssertTrue(lb.process.send(signal: SIGTERM))
        // Closed by the drain, not left for its 60 s deadline.
        XCTAssertTrue(stream.isClosedByPeer(within: 20), "the stream outlived the drain")
        let termination = lb.process.waitForExit(timeout: 20)
        XCTAssertEqual(termination, .exited(0), "ds-lb after SIGTERM with a stream open")
    }
}
