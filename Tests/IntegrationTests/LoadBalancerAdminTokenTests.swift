// `--admin-token-file`: admin endpoints also need `Authorization: Bearer <token>`; routed
// traffic does not. Every admin request is logged with the client's address, and a burst of
// admin requests does not hold up routed traffic.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class LoadBalancerAdminTokenTests: IntegrationTestCase {
    let secret = "Zm9vYmFyLWFkbWluLXRva2VuLTIwMjY="

    private func tokenFile(_ contents: String) throws -> String {
        let path = try temporaryDirectory() + "/admin-token"
        try contents.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testAdminNeedsTheBearerTokenAndRoutingDoesNot() throws {
        let lb = try startLoadBalancer([
            "--listen", "127.0.0.1:0", "--replicas", "2",
            "--admin-token-file", try tokenFile(secret + "\n"),
        ])
        let cases: [(String, [(String, String)])] = [
            ("no Authorization", []),
            ("wrong token", [("Authorization", "Bearer \(secret.dropLast())x")]),
            ("other scheme", [("Authorization", "Basic \(secret)")]),
            ("token as a prefix", [("Authorization", "Bearer \(secret)extra")]),
            ("two Authorization fields", [("Authorization", "Bearer \(secret)"), ("Authorization", "Bearer \(secret)")]),
        ]
        for (what, headers) in cases {
            for (method, target) in [("GET", "/rep"), ("POST", "/add"), ("DELETE", "/rm?id=1")] {
                let connection = try HTTPConnection(port: lb.port)
                defer { connection.close() }
                let response = try connection.request(method, target, headers: headers)
                assertFailure(response, 401, "\(method) \(target) with \(what)")
                XCTAssertEqual(response.reason, "Unauthorized", "\(method) \(target) with \(what): status line")
                XCTAssertEqual(response.header("WWW-Authenticate")?.hasPrefix("Bearer"), true, "\(what): \(response)")
                XCTAssertTrue(
                    connection.isClosedByPeer(within: 30), "\(method) \(target) with \(what): connection left open after 401")
            }
        }
        // Nothing changed: the refused commands did not reach the supervisor.
        let good = [("Authorization", "Bearer \(secret)")]
        let client = lb.client()
        assertReplicaState(try client.request("GET", "/rep", headers: good), ["server-1", "server-2"], "GET /rep with the token")
        assertReplicaState(
            try client.request("POST", "/add", headers: good), ["server-1", "server-2", "server-3"],
            "POST /add with the token")
        assertReplicaState(
            try client.request("GET", "/rep", headers: [("authorization", "bearer \(secret)")]),
            ["server-1", "server-2", "server-3"], "scheme and field name in lower case")

        // Routed requests need no token.
        let routed = try lb.client().get("/home?id=12")
        XCTAssertEqual(routed.status, 200, "\(routed)")
        XCTAssertNotNil(routed.helloServerID, "\(routed)")

        // Each admin request is logged with the client's address and its result.
        try lb.process.waitForStderrLine(matching: #"\[admin\] GET /rep from 127\.0\.0\.1: 401"#, timeout: 5)
        try lb.process.waitForStderrLine(matching: #"\[admin\] POST /add from 127\.0\.0\.1: 200"#, timeout: 5)
    }

    func testAWeakOrMissingTokenFileStopsStartUpWithAOneLineError() throws {
        for (contents, expected) in [("short\n", "at least 16"), ("has spaces in the middle of it\n", "b64token")] {
            let path = try tokenFile(contents)
            let process = try launch(
                "ds-lb", ["serve", "--listen", "127.0.0.1:0", "--replicas", "1", "--admin-token-file", path],
                environment: ["STATE_DIRECTORY": try temporaryDirectory()])
            try process.waitForStderrLine(
                matching: "--admin-token-file: \(NSRegularExpression.escapedPattern(for: path)): .*\(expected)",
                timeout: 10)
            let termination = process.waitForExit(timeout: 10)
            XCTAssertNotNil(termination, "ds-lb must exit with \(contents.debugDescription)")
            XCTAssertNotEqual(termination, .exited(0), "ds-lb must refuse to start with \(contents.debugDescription)")
        }
        let missing = try temporaryDirectory() + "/no-such-token"
        let process = try launch(
            "ds-lb", ["serve", "--listen", "127.0.0.1:0", "--replicas", "1", "--admin-token-file", missing],
            environment: ["STATE_DIRECTORY": try temporaryDirectory()])
        try process.waitForStderrLine(
            matching: "--admin-token-file: cannot read admin token file \(NSRegularExpression.escapedPattern(for: missing))",
            timeout: 10)
        let termination = process.waitForExit(timeout: 10)
        XCTAssertNotNil(termination)
        XCTAssertNotEqual(termination, .exited(0))
    }

    func testABurstOfAdminRequestsDoesNotStallRouting() throws {
        let lb = try startLoadBalancer(["--listen", "127.0.0.1:0", "--replicas", "3"])
        // 16 threads hammer /rep and /status (and refused /add bodies over the limit) while the
        // main thread routes requests: every routed request must still be answered.
        let stop = Locked(false)
        let adminAnswers = Locked(0)
        let group = DispatchGroup()
        for t in 0..<16 {
            DispatchQueue.global().async(group: group) {
                while !stop.value {
                    guard let connection = try? HTTPConnection(port: lb.port) else { continue }
                    let response: HTTPResponse?
                    if t % 4 == 0 {
                        response = try? connection.request(
                            "POST", "/add", body: [UInt8](repeating: UInt8(ascii: "x"), count: 70_000))
                    } else {
                        response = try? connection.request("GET", t % 2 == 0 ? "/rep" : "/status")
                    }
                    connection.close()
                    if response != nil { adminAnswers.update { $0 += 1 } }
                }
            }
        }
        let client = lb.client()
        var rng = SeededRandom(seed: 9)
        for id in rng.sixDigitIDs(300) {
            let response = try client.get("/home?id=\(id)")
            XCTAssertEqual(response.status, 200, "routed request during an admin burst: \(response)")
            if response.status != 200 { break }
        }
        stop.update { $0 = true }
        XCTAssertEqual(group.wait(timeout: .now() + 20), .success, "admin clients did not finish")
        XCTAssertGreaterThan(adminAnswers.value, 16, "the admin burst did not get answers")
        XCTAssertEqual(try lb.replicaState().n, 3, "oversized /add bodies changed the pool")
    }
}
