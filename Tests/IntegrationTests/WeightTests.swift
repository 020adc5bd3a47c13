// Weighted replicas end to end: `--backend …,weight=W`, `/add`'s `weight`, `PATCH /weight`,
// `/status`, and the saved pool across a restart of ds-lb.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class WeightTests: IntegrationTestCase {
    /// `/status`'s weight per replica name.
    private func weights(_ lb: LoadBalancerUnderTest, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Int]
    {
        let status = try lb.request("GET", "/status")
        XCTAssertEqual(status.status, 200, "\(status)", file: file, line: line)
        let message = try XCTUnwrap(status.jsonObject?["message"] as? [String: Any], "\(status)", file: file, line: line)
        let replicas = try XCTUnwrap(message["replicas"] as? [[String: Any]], "\(status)", file: file, line: line)
        var out: [String: Int] = [:]
        for replica in replicas {
            if let name = replica["name"] as? String, let weight = replica["weight"] as? Int { out[name] = weight }
        }
        XCTAssertEqual(out.count, replicas.count, "every replica in /status has a weight: \(status)", file: file, line: line)
        return out
    }

    /// Four static backends, one at weight 4, the default algorithm: the weight-4 one serves
    /// 4/7 of 10,000 random ids, the others 1/7 each.
    func testAReplicaAtWeightFourServesFourSeventhsOfTheKeys() throws {
        let servers = try (1...4).map { try startServer(id: $0) }
        let lb = try startLoadBalancer([
            "--listen", "127.0.0.1:0", "--driver", "static",
            "--backend", "big=127.0.0.1:\(servers[0].port),weight=4",
            "--backend", "b=127.0.0.1:\(servers[1].port)",
            "--backend", "c=127.0.0.1:\(servers[2].port),weight=1",
            "--backend", "d=127.0.0.1:\(servers[3].port)",
        ])
        XCTAssertEqual(try weights(lb), ["big": 4, "b": 1, "c": 1, "d": 1])
        assertReplicaState(try lb.request("GET", "/rep"), ["big", "b", "c", "d"], "/rep lists names only")
        // `ds-lb status` has a WEIGHT column after STATE.
        let cli = try launch("ds-lb", ["status", "--address", "127.0.0.1:\(lb.port)"])
        XCTAssertNotNil(cli.waitForExit(timeout: 10))
        var table = cli.stdout.allLines
        for _ in 0..<200 where table.count < 6 {
            usleep(10_000)
            table = cli.stdout.allLines
        }
        let fields = table.map { $0.split(separator: " ").map(String.init) }
        XCTAssertTrue(fields.contains { Array($0.prefix(5)) == ["NAME", "ID", "ADDRESS", "STATE", "WEIGHT"] }, "\(table)")
        XCTAssertTrue(fields.contains { $0.first == "big" && $0.count > 4 && $0[4] == "4" }, "\(table)")

        var rng = SeededRandom(seed: 0x3E16_4700)
        let ids = rng.sixDigitIDs(10_000)
        let (owners, _) = try routeIDs(ids, through: lb, connections: 4)
        let counts = distribution(owners)
        let share = Double(counts[1] ?? 0) / Double(ids.count)
        XCTAssertEqual(share, 4.0 / 7.0, accuracy: 0.03 * 4.0 / 7.0, "weight 4 of 7: \(counts)")
        for server in 2...4 {
            XCTAssertEqual(Double(counts[server] ?? 0) / Double(ids.count), 1.0 / 7.0, accuracy: 0.03, "\(counts)")
        }
    }

    func testABadWeightForABackendIsRefused() throws {
        for option in ["a=127.0.0.1:9,weight=257", "a=127.0.0.1:9,weight=x", "a=127.0.0.1:9,size=2"] {
            let process = try launch("ds-lb", ["--listen", "127.0.0.1:0", "--driver", "static", "--backend", option])
            XCTAssertNotNil(process.waitForExit(timeout: 10), option)
            var output = process.stderr.allLines.joined(separator: "\n")
            for _ in 0..<100 where !output.contains("--backend") {
                usleep(10_000)
                output = process.stderr.allLines.joined(separator: "\n")
            }
            XCTAssertTrue(output.contains("--backend") && output.contains("weight=W"), "\(option): \(output)")
        }
    }

    /// At weight 0 a replica takes no new keys, keeps its heartbeats, and finishes the request it
    /// has in flight; only its keys moved. Back at 1, every key is where it was.
    func testWeightZeroTakesNoNewKeysWhileItsInFlightRequestFinishes() throws {
        let lb = try startLoadBalancer()
        var rng = SeededRandom(seed: 23)
        let ids = rng.sixDigitIDs(300)
        let (owners, _) = try routeIDs(ids, through: lb, connections: 2)
        let id = try XCTUnwrap(ids.first { owners[$0] == 3 }, "no id owned by server 3")
        XCTAssertTrue(lb.waitForNoneInFlight(), "the routing requests still count as in flight")
        let slow = lb.getInBackground("/slow?ms=3000&id=\(id)")
        XCTAssertTrue(lb.waitForInFlight(replica: "server-3"), "the slow request never reached server 3")

        let drained = try lb.admin("PATCH", "/weight", json: ["hostnames": ["server-3"], "weight": 0])
        assertReplicaState(drained, ["server-1", "server-2", "server-3"], "PATCH /weight answers with the pool")
        let (after, _) = try routeIDs(ids, through: lb, connections: 2)
        XCTAssertFalse(after.values.contains(3), "server 3 at weight 0 took new keys: \(distribution(after))")
        for id in ids where owners[id] != 3 {
            XCTAssertEqual(after[id], owners[id], "id \(id) moved though it was not on server 3")
        }
        let result = try XCTUnwrap(slow(), "the slow request was not answered")
        XCTAssertNil(result.error, "the in-flight request failed: \(String(describing: result.error))")
        XCTAssertEqual(result.response?.status, 200, "\(String(describing: result.response))")
        XCTAssertEqual(result.response?.helloServerID, 3, "it is answered by the replica it was sent to")
        XCTAssertEqual(try weights(lb), ["server-1": 1, "server-2": 1, "server-3": 0])
        let status = try lb.request("GET", "/status").bodyString
        XCTAssertTrue(status.contains(#""name": "server-3""#) && !status.contains(#""state": "DOWN""#), status)

        XCTAssertEqual(try lb.admin("POST", "/weight", json: ["hostnames": ["server-3"], "weight": 1]).status, 200)
        XCTAssertEqual(try routeIDs(ids, through: lb, connections: 2).owners, owners, "back at weight 1, every key is back")
    }

    func testBadWeightsAreRefusedWithTheUsualErrorJSON() throws {
        let lb = try startLoadBalancer()
        let pool = try lb.replicaState().replicas
        let cases: [(String, String, Int, String)] = [
            (
                "PATCH", #"{"hostnames": ["server-1"], "weight": -1}"#, 400,
                "<Error> 'weight' must be an integer from 0 to 256, got -1"
            ),
            (
                "PATCH", #"{"hostnames": ["server-1"], "weight": 257}"#, 400,
                "<Error> 'weight' must be an integer from 0 to 256, got 257"
            ),
            ("PATCH", #"{"hostnames": ["server-1"], "weight": "x"}"#, 400, "<Error> 'weight' must be an integer from 0 to 256"),
            ("PATCH", #"{"hostnames": ["server-1"], "weight": null}"#, 400, "<Error> 'weight' must be an integer from 0 to 256"),
            ("POST", #"{"hostnames": ["nope"], "weight": 2}"#, 404, "<Error> Hostname 'nope' is not in the pool"),
        ]
        for (method, body, status, message) in cases {
            assertFailure(try lb.admin(method, "/weight", rawBody: body), status, "\(method) /weight \(body)", message: message)
        }
        assertFailure(
            try lb.admin("POST", "/add", rawBody: #"{"n": 1, "weight": 257}"#), 400, "/add at weight 257",
            message: "<Error> 'weight' must be an integer from 0 to 256, got 257")
        let over = assertFailure(
            try lb.admin("POST", "/add", rawBody: #"{"n": 300, "weight": 256}"#), 400, "/add beyond the weight total")
        XCTAssertTrue(over?.contains("more than 65535") == true, over ?? "")
        assertFailure(try lb.request("GET", "/weight"), 405, "GET /weight")
        XCTAssertEqual(try lb.replicaState().replicas, pool, "a refused command changes nothing")
        XCTAssertEqual(try weights(lb), ["server-1": 1, "server-2": 1, "server-3": 1])
    }

    /// The saved pool keeps weights: `/add`'s and `PATCH /weight`'s survive a restart of ds-lb,
    /// and every key is on the replica it was on.
    func testWeightsSurviveARestart() throws {
        let stateDir = try temporaryDirectory()
        let environment: [String: String?] = ["STATE_DIRECTORY": stateDir]
        let first = try startLoadBalancer(environment: environment)
        XCTAssertEqual(try first.admin("POST", "/add", json: ["hostnames": ["big"], "weight": 4]).status, 200)
        XCTAssertEqual(try first.admin("PATCH", "/weight", json: ["hostnames": ["server-1"], "weight": 2]).status, 200)
        let expected = ["server-1": 2, "server-2": 1, "server-3": 1, "big": 4]
        XCTAssertEqual(try weights(first), expected)
        var rng = SeededRandom(seed: 29)
        let ids = rng.sixDigitIDs(300)
        let (owners, _) = try routeIDs(ids, through: first, connections: 2)

        XCTAssertTrue(first.process.send(signal: SIGTERM))
        XCTAssertEqual(first.process.waitForExit(timeout: 10), .exited(0))
        let second = try startLoadBalancer(environment: environment)
        XCTAssertEqual(try weights(second), expected)
        XCTAssertEqual(try routeIDs(ids, through: second, connections: 2).owners, owners, "same weights, same keys")
    }
}
