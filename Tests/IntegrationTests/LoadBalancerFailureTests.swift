// A replica that dies while ds-lb keeps it in rotation: with `--retries 0` the ids it owned get
// 502 JSON (never a hang) while every other id keeps reaching its own replica; with the default
// `--retries 1` they are served by the next replica for their key instead. Static backends are
// used so nothing restarts the dead one, and `--fall 100` with `--max-fails 0` keeps it in
// rotation for the test (its failures would otherwise take it out, passive health, at whatever
// moment the supervisor samples them: part of the way through the ids).
// And the other failure policy: `--on-failure replace --max-restarts 0` replaces a failed
// replica under a new name instead of restarting it.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class LoadBalancerFailureTests: IntegrationTestCase {
    private func startPair(retries: Int) throws -> (LoadBalancerUnderTest, ServerUnderTest, ServerUnderTest) {
        let a = try startServer(id: 1)
        let b = try startServer(id: 2)
        let lb = try startLoadBalancer([
            "--listen", "127.0.0.1:0", "--driver", "static",
            "--backend", "server-1=127.0.0.1:\(a.port)", "--backend", "server-2=127.0.0.1:\(b.port)",
            "--retries", "\(retries)", "--fall", "100", "--max-fails", "0", "--heartbeat-interval", "1m",
        ])
        return (lb, a, b)
    }

    private func kill(_ server: ServerUnderTest) throws {
        XCTAssertTrue(server.process.send(signal: SIGKILL))
        XCTAssertNotNil(server.process.waitForExit(timeout: 5), "replica did not die")
    }

    func testKilledReplicaAnswers502WhileOthersKeepWorking() throws {
        let (lb, _, b) = try startPair(retries: 0)
        var rng = SeededRandom(seed: 502)
        let ids = rng.sixDigitIDs(400)
        let (owners, _) = try routeIDs(ids, through: lb, connections: 2)
        XCTAssertEqual(Set(distribution(owners).keys), [1, 2], "distribution \(distribution(owners))")
        try kill(b)

        // Keep-alive clients that were idle while the replica died; ds-lb may close them
        // after a 502, the client then reconnects.
        let clients = [lb.client(), lb.client()]
        var failures: [String] = []
        for (i, id) in ids.enumerated() {
            let response = try clients[i % 2].get("/home?id=\(id)")
            if owners[id] == 2 {
                if response.status != 502 || response.jsonStatus != "failure" || (response.messageString ?? "").isEmpty {
                    failures.append("id \(id) (owned by the killed server 2): expected 502 JSON failure, got \(response)")
                }
            } else if response.status != 200 || response.helloServerID != owners[id] {
                failures.append(
                    "id \(id) (owned by server \(owners[id] ?? -1)): expected 200 Hello from Server: \(owners[id] ?? -1), got \(response)"
                )
            }
        }
        XCTAssertTrue(
            failures.isEmpty,
            "\(failures.count) of \(ids.count) answers wrong after SIGKILL of replica 2:\n\(failures.prefix(8).joined(separator: "\n"))"
        )
        XCTAssertTrue(lb.process.isRunning, "ds-lb must survive a replica's death")
        assertReplicaState(try lb.request("GET", "/rep"), ["server-1", "server-2"], "GET /rep after the kill")
    }

    func testRetryMovesRequestsOfADeadReplicaToTheNextOne() throws {
        let (lb, _, b) = try startPair(retries: 1)
        var rng = SeededRandom(seed: 503)
        let ids = rng.sixDigitIDs(300)
        let (owners, _) = try routeIDs(ids, through: lb, connections: 2)
        XCTAssertEqual(Set(distribution(owners).keys), [1, 2])
        try kill(b)
        let client = lb.client()
        for id in ids {
            let response = try client.get("/home?id=\(id)")
            XCTAssertEqual(response.status, 200, "id \(id): \(response)")
            XCTAssertEqual(response.helloServerID, 1, "id \(id) must fail over to the only live replica")
        }
    }

    /// A refused connection costs nothing of `--retries`: with two of three replicas dead (a host
    /// that went down with both), the keys whose next replicas were both on it still reach the
    /// live one with `--retries 1`.
    func testRefusedConnectionsDoNotSpendTheRetryBudget() throws {
        let servers = try (1...3).map { try startServer(id: $0) }
        var arguments = ["--listen", "127.0.0.1:0", "--driver", "static", "--retries", "1", "--fall", "100", "--max-fails", "0"]
        arguments += ["--heartbeat-interval", "1m"]
        for (index, server) in servers.enumerated() {
            arguments += ["--backend", "server-\(index + 1)=127.0.0.1:\(server.port)"]
        }
        let lb = try startLoadBalancer(arguments)
        var rng = SeededRandom(seed: 504)
        let ids = rng.sixDigitIDs(300)
        try kill(servers[1])
        try kill(servers[2])
        let client = lb.client()
        for id in ids {
            let response = try client.get("/home?id=\(id)")
            XCTAssertEqual(response.status, 200, "id \(id): \(response)")
            XCTAssertEqual(response.helloServerID, 1, "id \(id) must reach the only live replica")
        }
    }

    /// `--on-failure replace --max-restarts 0`: a replica that fails is not restarted but
    /// replaced at its first failure by a new replica under a new generated name, in its place
    /// in `/rep`; N stays, the failed name and its `/metrics` series are gone, and a later
    /// replacement never takes a name given up before. Once by exit (SIGKILL), once by
    /// heartbeats (SIGSTOP: the process lives on, hung).
    func testReplacePolicyReplacesAFailedReplicaUnderANewName() throws {
        let lb = try startLoadBalancer([
            "--listen", "127.0.0.1:0", "--replicas", "3", "--heartbeat-interval", "500ms",
            "--heartbeat-timeout", "300ms", "--on-failure", "replace", "--max-restarts", "0",
        ])
        var rng = SeededRandom(seed: 2002)
        let ids = rng.sixDigitIDs(150)
        let (before, _) = try routeIDs(ids, through: lb, connections: 2)
        XCTAssertEqual(Set(before.values), [1, 2, 3])
        XCTAssertFalse(try lb.metricSeries(ofReplica: "server-2").isEmpty, "server-2 has series before it fails")

        /// Waits for `/rep` to drop `failed`, then checks the pool it lists and that the
        /// replacement comes up and takes its share of the keys.
        func replaced(_ failed: String, by expected: [String], newID: Int, how: String) throws {
            let started = Date()
            var state = try lb.replicaState()
            while state.replicas.contains(failed) && Date().timeIntervalSince(started) < 30 {
                usleep(20_000)
                state = try lb.replicaState()
            }
            print("[\(how)] \(failed) left /rep after \(Int(Date().timeIntervalSince(started) * 1000)) ms")
            XCTAssertEqual(state.replicas, expected, "\(how): /rep after the replacement")
            XCTAssertEqual(state.n, 3, "\(how): N is unchanged")
            try lb.process.waitForStderrLine(matching: #"\[\+\] Server \#(newID) started in place of \#(failed):"#, timeout: 20)
            let (owners, _) = try routeIDs(ids, through: lb, connections: 2)
            XCTAssertEqual(Set(owners.values), Set(expected.map { Int($0.dropFirst(7))! }), "\(how): who answers")
            var gone = try lb.metricSeries(ofReplica: failed)
            for _ in 0..<250 where !gone.isEmpty {
                usleep(20_000)
                gone = try lb.metricSeries(ofReplica: failed)
            }
            XCTAssertEqual(gone, [:], "\(how): the series of \(failed) must leave /metrics with it")
        }

        let exited = try XCTUnwrap(lb.replicaPIDsByID()[2])
        XCTAssertEqual(Glibc.kill(exited, SIGKILL), 0)
        try replaced("server-2", by: ["server-1", "server-4", "server-3"], newID: 4, how: "SIGKILL server-2")
        try lb.process.waitForStderrLine(matching: #"\[!\] Server 2 failed heartbeat\. Replacing\.\.\."#, timeout: 5)
        try lb.process.waitForStderrLine(matching: #"\[!\] Server 2 is replaced by server-4"#, timeout: 5)

        // Hung, not gone: only heartbeats notice. server-2 is free again but was given up, so
        // the replacement is server-5.
        let hung = try XCTUnwrap(lb.replicaPIDsByID()[1])
        XCTAssertEqual(Glibc.kill(hung, SIGSTOP), 0)
        try replaced("server-1", by: ["server-5", "server-4", "server-3"], newID: 5, how: "SIGSTOP server-1")
        try lb.process.waitForStderrLine(matching: #"\[!\] Server 1 is replaced by server-5"#, timeout: 5)

        XCTAssertEqual(Set(lb.replicaPIDsByID().keys), [3, 4, 5], "the failed replicas' processes are gone")
        let restarts = lb.process.stderr.allLines.filter { $0.contains("Restarting") || $0.contains("Failed to restart") }
        XCTAssertEqual(restarts, [], "replace at the first failure: nothing is restarted under its old name")
        let status = try XCTUnwrap(try lb.request("GET", "/status").jsonObject?["message"] as? [String: Any])
        for replica in try XCTUnwrap(status["replicas"] as? [[String: Any]]) {
            XCTAssertEqual(replica["restarts"] as? Int, 0, "a replacement is a new replica, not a restart: \(replica)")
        }
    }
}
