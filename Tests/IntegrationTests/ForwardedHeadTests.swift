// What of a client's head reaches the replica, end to end against ds-server's /debug/head (the
// head exactly as it received it): an absolute-form target in origin-form with its authority as
// Host, and the client's X-Forwarded-For / X-Forwarded-Proto replaced unless it is a trusted
// proxy (`--trusted-proxies`).

import Foundation
import XCTest

final class ForwardedHeadTests: IntegrationTestCase {
    /// The head the replica received for `raw`, sent by a client on 127.0.0.1.
    private func received(_ lb: LoadBalancerUnderTest, _ raw: String) throws -> String {
        let connection = try HTTPConnection(port: lb.port)
        defer { connection.close() }
        try connection.send(raw)
        let response = try connection.readResponse()
        XCTAssertEqual(response.status, 200, "\(raw.debugDescription): \(response)")
        return response.bodyString
    }

    func testAbsoluteFormGoesToTheReplicaInOriginFormWithItsAuthorityAsHost() throws {
        let lb = try startLoadBalancer(["--listen", "127.0.0.1:0", "--replicas", "1"])
        let head = try received(lb, "GET http://Example.test:8080/debug/head?id=7 HTTP/1.1\r\nHost: lb\r\nAccept: */*\r\n\r\n")
        XCTAssertTrue(head.hasPrefix("GET /debug/head?id=7 HTTP/1.1\r\n"), "the request line in origin-form: \(head)")
        XCTAssertTrue(head.contains("\r\nHost: Example.test:8080\r\n"), "the authority is the Host: \(head)")
        XCTAssertFalse(head.contains("Host: lb"), "the client's Host must not go on: \(head)")
        XCTAssertTrue(head.contains("\r\nAccept: */*\r\n"), head)
    }

    func testClientForwardedFieldsAreReplaced() throws {
        let lb = try startLoadBalancer(["--listen", "127.0.0.1:0", "--replicas", "1"])
        let head = try received(
            lb,
            "GET /debug/head?id=1 HTTP/1.1\r\nHost: lb\r\nX-Forwarded-For: 6.6.6.6\r\n"
                + "x-forwarded-proto: https\r\nX-Forwarded-For: 7.7.7.7\r\n\r\n")
        XCTAssertFalse(head.contains("6.6.6.6") || head.contains("7.7.7.7"), "a client's X-Forwarded-For went on: \(head)")
        XCTAssertFalse(head.lowercased().contains("https"), "a client's X-Forwarded-Proto went on: \(head)")
        XCTAssertEqual(head.lowercased().components(separatedBy: "x-forwarded-for:").count, 2, head)
        XCTAssertTrue(head.contains("X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\n"), head)
    }

    func testTrustedProxyForwardedFieldsAreKeptAndAppendedTo() throws {
        let lb = try startLoadBalancer([
            "--listen", "127.0.0.1:0", "--replicas", "1", "--trusted-proxies", "10.0.0.0/8, 127.0.0.0/8",
        ])
        let head = try received(
            lb,
            "GET /debug/head?id=1 HTTP/1.1\r\nHost: lb\r\nX-Forwarded-For: 6.6.6.6\r\n"
                + "X-Forwarded-Proto: https\r\n\r\n")
        XCTAssertTrue(
            head.contains("\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nX-Forwarded-For: 127.0.0.1\r\n"),
            "the proxy's fields first, then the address ds-lb saw: \(head)")
        XCTAssertFalse(
            head.contains("X-Forwarded-Proto: http\r\n"), "ds-lb's own X-Forwarded-Proto would contradict the proxy's: \(head)")
        // Without fields of its own, the trusted client gets ds-lb's, as anyone.
        let plain = try received(lb, "GET /debug/head?id=1 HTTP/1.1\r\nHost: lb\r\n\r\n")
        XCTAssertTrue(plain.contains("X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: http\r\n"), plain)
    }

    func testATrustListWithoutTheClientReplacesItsFields() throws {
        let lb = try startLoadBalancer(["--listen", "127.0.0.1:0", "--replicas", "1", "--trusted-proxies", "10.0.0.0/8"])
        let head = try received(lb, "GET /debug/head?id=1 HTTP/1.1\r\nHost: lb\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n")
        XCTAssertFalse(head.contains("6.6.6.6"), head)
        XCTAssertTrue(head.contains("X-Forwarded-For: 127.0.0.1\r\n"), head)
    }

    func testAnInvalidTrustedProxiesValueIsRefused() throws {
        let process = try launch("ds-lb", ["--listen", "127.0.0.1:0", "--replicas", "1", "--trusted-proxies", "10.0.0.0/99"])
        XCTAssertNoThrow(
            try process.waitForStderrLine(matching: "--trusted-proxies: .*99", timeout: 10),
            "a one-line error naming the option and the bad value")
        XCTAssertNotNil(process.waitForExit(timeout: 10), "ds-lb must refuse to start")
    }
}
