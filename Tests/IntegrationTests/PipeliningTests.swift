// Pipelined requests end to end. ds-lb holds a pipelined request back until its worker's other
// I/O of the loop iteration is done (PipelineQueue, issue #9's pipelining non-readers), with a
// limit of 2 in progress per worker: these tests check that holding back loses, reorders and
// mixes up nothing, with far more pipelining connections than slots.

#if canImport(Glibc)
import Glibc
#endif
import Foundation
import XCTest

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
                bytes += Array("POST /echo?id=\(c * depth + i) HTTP/1.1\r\nHost: lb\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8)
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
