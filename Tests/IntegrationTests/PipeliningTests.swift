// Pipelined requests end to end. ds-lb holds a pipelined request back until its worker's other
// I/O of the loop iteration is done (PipelineQueue, so pipelining non-readers cannot starve the
// rest), with a limit of 2 in progress per worker (`--pipeline-slots`; 0: no queue): these tests
// check that holding back loses, reorders and mixes up nothing, with far more pipelining
// connections than slots, and that the option sets how many pipelined requests reach the replica
// at once.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class PipeliningTests: IntegrationTestCase {
    func testManyPipeliningConnectionsGetEveryAnswerInOrder() throws {
        let lb = try startLoadBalancer(["--listen", "127.0.0.1:0", "--replicas", "2", "--workers", "2"])
        let connectionCount = 40
        let depth = 50
        let connections = try (0..<connectionCount).map { _ in try HTTPConnection(port: lb.port, timeout: 30) }
        defer { connections.forEach { $0.close() } }
        // Every connection sends its whole pipeline in one write before anyone reads: all 40 are
        // queued at once, ten times the slots of both workers together.
        for (c, connection) in connections.enumerated() {
            var bytes: [UInt8] = []
            for i in 0..<depth {
                let body = "connection \(c) request \(i)"
                bytes += Array(
                    "POST /echo?id=\(c * depth + i) HTTP/1.1\r\nHost: lb\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
                        .utf8)
            }
            try connection.send(bytes)
        }
        // A fresh request on another connection is served meanwhile.
        let fresh = try HTTPConnection(port: lb.port)
        defer { fresh.close() }
        XCTAssertEqual(try fresh.request("GET", "/home?id=1").status, 200)
        for (c, connection) in connections.enumerated() {
            for i in 0..<depth {
                let response = try connection.readResponse(method: "POST")
                XCTAssertEqual(response.status, 200, "connection \(c) request \(i): \(response)")
                XCTAssertEqual(response.bodyString, "connection \(c) request \(i)")
            }
        }
        // The connections stay usable, one request at a time.
        for connection in connections.prefix(4) {
            XCTAssertEqual(try connection.request("GET", "/home?id=2").status, 200)
        }
    }

    /// `--pipeline-slots N`: at most N pipelined requests per worker at the replica at once;
    /// 0: no queue, each goes on as it arrives. Every answer still arrives, in order.
    func testPipelineSlotsSetHowManyPipelinedRequestsReachTheReplicaAtOnce() throws {
        for (slots, expected) in [(1, 1), (2, 2), (0, 3)] {
            let gate = Gate()
            let replica = try Self.gatedReplica(gate)
            defer { replica.stop() }
            defer { gate.open() }
            let lb = try startLoadBalancer([
                "--listen", "127.0.0.1:0", "--driver", "static", "--workers", "1",
                "--backend", "s=127.0.0.1:\(replica.port)", "--pipeline-slots", "\(slots)",
            ])
            try heldAtOnce(lb, gate, expected: expected, "--pipeline-slots \(slots)")
        }
    }

    /// `pipeline-slots` is a live key: a reload (SIGHUP) changes the limit of running workers,
    /// from 1 to none and from none to 2.
    func testAReloadChangesThePipelineSlots() throws {
        let gate = Gate()
        let replica = try Self.gatedReplica(gate)
        defer { replica.stop() }
        defer { gate.open() }
        let directory = try temporaryDirectory()
        let path = directory + "/ds-lb.toml"
        let base = "listen = \"127.0.0.1:0\"\ndriver = \"static\"\nworkers = 1\nbackend = [\"s=127.0.0.1:\(replica.port)\"]\n"
        try (base + "pipeline-slots = 1\n").write(toFile: path, atomically: true, encoding: .utf8)
        let lb = try startLoadBalancer(["--config", path])
        try heldAtOnce(lb, gate, expected: 1, "pipeline-slots = 1")
        for (old, new, expected) in [("1", "0", 3), ("0", "2", 2)] {
            try (base + "pipeline-slots = \(new)\n").write(toFile: path, atomically: true, encoding: .utf8)
            XCTAssertTrue(lb.process.send(signal: SIGHUP))
            try lb.process.waitForStderrLine(
                matching: #"^\[i\] Reloaded .*: applied pipeline-slots "# + old + " → " + new + ";", timeout: 10)
            gate.close()
            try heldAtOnce(lb, gate, expected: expected, "reloaded to pipeline-slots = \(new)")
        }
    }

    /// Answers `/held...` only once `gate` opens, anything else at once; the body is the target.
    static func gatedReplica(_ gate: Gate) throws -> ScriptedReplica {
        try ScriptedReplica { request in
            if request.target.hasPrefix("/held") { gate.pass() }
            return .init("HTTP/1.1 200 OK\r\nContent-Length: \(request.target.utf8.count)\r\n\r\n\(request.target)")
        }
    }

    /// Three new clients each send a fresh request and a pipelined one in one write; the fresh
    /// ones are answered, and `expected` pipelined ones (no more) reach the gated replica. Then
    /// the gate opens and every client gets both answers, in order.
    func heldAtOnce(
        _ lb: LoadBalancerUnderTest, _ gate: Gate, expected: Int, _ label: String,
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let clients = try (0..<3).map { _ in try HTTPConnection(port: lb.port, timeout: 20) }
        defer { clients.forEach { $0.close() } }
        for (c, client) in clients.enumerated() {
            try client.send("GET /fresh?id=\(c) HTTP/1.1\r\nHost: lb\r\n\r\nGET /held?id=\(c) HTTP/1.1\r\nHost: lb\r\n\r\n")
        }
        XCTAssertTrue(
            gate.waitUntilHeld(expected, timeout: 10), "\(label): \(gate.held) held, expected \(expected)", file: file, line: line
        )
        // Time for a request beyond the limit to arrive, were it let through.
        usleep(300_000)
        XCTAssertEqual(gate.held, expected, label, file: file, line: line)
        gate.open()
        for (c, client) in clients.enumerated() {
            for target in ["/fresh?id=\(c)", "/held?id=\(c)"] {
                let response = try client.readResponse()
                XCTAssertEqual(response.status, 200, "\(label), \(target): \(response)", file: file, line: line)
                XCTAssertEqual(response.bodyString, target, label, file: file, line: line)
            }
        }
        XCTAssertEqual(gate.most, expected, "\(label): most pipelined requests held at once", file: file, line: line)
    }

    /// Holds the replica's threads until opened, counting them.
    final class Gate: @unchecked Sendable {
        private let condition = NSCondition()
        private var holding = 0
        private var mostHeld = 0
        private var isOpen = false

        var held: Int { condition.withLock { holding } }
        var most: Int { condition.withLock { mostHeld } }

        /// Waits until the gate opens (at most 20 s, so a failed test does not leave threads).
        func pass() {
            condition.withLock {
                holding += 1
                mostHeld = max(mostHeld, holding)
                condition.broadcast()
                let deadline = Date().addingTimeInterval(20)
                while !isOpen && condition.wait(until: deadline) {}
                holding -= 1
            }
        }

        func open() {
            condition.withLock {
                isOpen = true
                condition.broadcast()
            }
        }

        /// For the next round: closed again, nothing held so far.
        func close() {
            condition.withLock {
                isOpen = false
                mostHeld = holding
            }
        }

        func waitUntilHeld(_ count: Int, timeout: TimeInterval) -> Bool {
            condition.withLock {
                let deadline = Date().addingTimeInterval(timeout)
                while holding < count && condition.wait(until: deadline) {}
                return holding >= count
            }
        }
    }

    /// Pipelined requests a client does not read must not hold the slots: here 24 connections
    /// each pipeline 64 requests for 256 KiB answers and read nothing. The first answers fit
    /// in the socket buffers, so later ones are pipelined requests that block on a full buffer,
    /// twelve times as many as there are slots; a well-behaved pipelining client is still
    /// answered in full.
    func testNonReadingPipelinersDoNotStallOtherPipeliningClients() throws {
        let lb = try startLoadBalancer(["--listen", "127.0.0.1:0", "--replicas", "1", "--workers", "1"])
        let body = "0123456789abcdef"
        var hogs: [HTTPConnection] = []
        defer { hogs.forEach { $0.close() } }
        for _ in 0..<24 {
            let hog = try HTTPConnection(port: lb.port)
            var bytes: [UInt8] = []
            for i in 0..<64 { bytes += Array("GET /bytes?n=262144&id=\(i) HTTP/1.1\r\nHost: lb\r\n\r\n".utf8) }
            try hog.send(bytes)
            hogs.append(hog)
        }
        let client = try HTTPConnection(port: lb.port, timeout: 20)
        defer { client.close() }
        var bytes: [UInt8] = []
        for i in 0..<20 {
            bytes += Array("POST /echo?id=\(i) HTTP/1.1\r\nHost: lb\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8)
        }
        try client.send(bytes)
        for i in 0..<20 {
            let response = try client.readResponse(method: "POST")
            XCTAssertEqual(response.status, 200, "request \(i): \(response)")
            XCTAssertEqual(response.bodyString, body)
        }
    }
}
