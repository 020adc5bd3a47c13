// The supervisor end to end: replicas that die or hang are noticed, taken out of rotation,
// restarted and put back while a load runs; the pool survives a restart of ds-lb itself.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// A steady keep-alive load of `GET /home?id=` over fixed ids on its own threads, counting
/// every answer that is not a 200 from a replica.
final class BackgroundLoad: @unchecked Sendable {
    private let lock = NSLock()
    private var stopped = false
    private var finishedThreads = 0
    private(set) var sent = 0
    private(set) var failures: [String] = []
    private let threads: Int

    init(port: UInt16, ids: [Int], threads: Int = 2) {
        self.threads = threads
        for t in 0..<threads {
            let thread = Thread { [self] in
                let client = KeepAliveClient(port: port)
                var i = t
                while !self.isStopped {
                    let id = ids[i % ids.count]
                    i += threads
                    var failure: String?
                    do {
                        let response = try client.get("/home?id=\(id)")
                        if response.status != 200 || response.helloServerID == nil { failure = "id \(id): \(response)" }
                    } catch {
                        failure = "id \(id): \(error)"
                        client.close()
                    }
                    self.lock.lock()
                    self.sent += 1
                    if let failure { self.failures.append(failure) }
                    self.lock.unlock()
                }
                client.close()
                self.lock.lock()
                self.finishedThreads += 1
                self.lock.unlock()
            }
            thread.start()
        }
    }

    /// Waits (up to `timeout` seconds) until at least `count` requests were sent.
    func waitUntilSent(atLeast count: Int, timeout: TimeInterval = 30) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while sentSoFar < count {
            if Date() > deadline { return false }
            usleep(10_000)
        }
        return true
    }

    var sentSoFar: Int {
        lock.lock(); defer { lock.unlock() }
        return sent
    }

    private var isStopped: Bool {
        lock.lock(); defer { lock.unlock() }
        return stopped
    }

    /// Stops the threads and waits for them (each is at most one request timeout away).
    func stop() -> (sent: Int, failures: [String]) {
        lock.lock(); stopped = true; lock.unlock()
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            lock.lock()
            let done = finishedThreads == threads
            lock.unlock()
            if done { break }
            usleep(10_000)
        }
        lock.lock(); defer { lock.unlock() }
        return (sent, failures)
    }
}

final class SupervisorTests: IntegrationTestCase {
    private func index(of pattern: String, in lines: [String], after start: Int = 0) -> Int? {
        let regex = try! NSRegularExpression(pattern: pattern)
        for i in start..<lines.count where i >= 0 {
            let line = lines[i]
            if regex.firstMatch(in: line, range: NSRange(line.startIndex..., in: line)) != nil { return i }
        }
        return nil
    }

    func testKilledReplicaIsRestartedWhileTheLoadSeesNoFailure() throws {
        let lb = try startLoadBalancer(["--listen", "127.0.0.1:0", "--replicas", "3", "--heartbeat-interval", "1s"])
        var rng = SeededRandom(seed: 5)
        let ids = rng.sixDigitIDs(300)
        let (owners, _) = try routeIDs(ids, through: lb, connections: 2)
        XCTAssertEqual(Set(distribution(owners).keys), [1, 2, 3])

        let load = BackgroundLoad(port: lb.port, ids: ids)
        XCTAssertTrue(load.waitUntilSent(atLeast: 25), "the load never got going")
        let victim = try XCTUnwrap(lb.replicaPIDsByID()[2])
        XCTAssertEqual(kill(victim, SIGKILL), 0)
        try lb.process.waitForStderrLine(matching: #"\[!\] Server 2 failed heartbeat\. Restarting\.\.\."#, timeout: 30)
        try lb.process.waitForStderrLine(matching: #"\[\+\] Server 2 restarted"#, timeout: 30)
        // The load goes on through the restarted replica before it stops.
        let sentBeforeStop = load.sentSoFar
        XCTAssertTrue(load.waitUntilSent(atLeast: sentBeforeStop + 25), "the load stalled after the restart")
        let (sent, failures) = load.stop()

        XCTAssertGreaterThan(sent, 50, "the load must have run")
        XCTAssertTrue(
            failures.isEmpty,
            "\(failures.count) of \(sent) requests failed:\n\(failures.prefix(5).joined(separator: "\n"))\n\(lb.process.outputTail())"
        )
        let lines = lb.process.stderr.allLines
        let down = try XCTUnwrap(index(of: #"\[!\] Server 2 failed heartbeat\. Restarting\.\.\."#, in: lines))
        // The exit itself takes it down, not `--fall` failed heartbeats: the exit is the last
        // thing said about server 2 before the DOWN (heartbeats noticing it first would log the
        // DOWN before the exit, or a missed heartbeat in between).
        let lastBeforeDown = lines[..<down].last { $0.contains("Server 2 ") }
        XCTAssertTrue(
            lastBeforeDown?.contains("[!] Server 2 (server-2) exited: ") == true,
            "the DOWN must follow the exit report, not failed heartbeats; before it: \(lastBeforeDown ?? "nothing")")
        XCTAssertNotNil(index(of: #"\[\+\] Server 2 restarted"#, in: lines, after: down + 1), "restarted must follow failed")

        // Same name, same keys: server 2 serves exactly its old ids again, from a new process.
        let newPID = try XCTUnwrap(lb.replicaPIDsByID()[2], "server 2 was not respawned")
        XCTAssertNotEqual(newPID, victim)
        // Polled: a request the new process is too slow to take yet (a sanitized build on a busy
        // machine) fails over to another replica, which is right but not the owner.
        var after: [Int: Int] = [:]
        let deadline = Date().addingTimeInterval(15)
        repeat {
            after = try routeIDs(ids, through: lb, connections: 2).owners
            if after == owners { break }
            usleep(200_000)
        } while Date() < deadline
        XCTAssertEqual(after, owners, "every id must reach the same replica after the restart (within 15 s)")
        assertReplicaState(try lb.request("GET", "/rep"), ["server-1", "server-2", "server-3"], "GET /rep after the restart")
    }

    func testHungReplicaIsDetectedByTimeoutAndReplaced() throws {
        let lb = try startLoadBalancer([
            "--listen", "127.0.0.1:0", "--replicas", "3",
            "--heartbeat-interval", "500ms", "--heartbeat-timeout", "300ms",
        ])
        let victim = try XCTUnwrap(lb.replicaPIDsByID()[1])
        let identity = try XCTUnwrap(ProcFS.identity(victim))
        XCTAssertEqual(kill(victim, SIGSTOP), 0)
        addTeardownBlock { _ = kill(victim, SIGKILL) }
        try lb.process.waitForStderrLine(matching: #"\[!\] Server 1 failed heartbeat\. Restarting\.\.\."#, timeout: 30)
        try lb.process.waitForStderrLine(matching: #"\[\+\] Server 1 restarted"#, timeout: 30)
        // Taken down by `--fall` (2) timed-out heartbeats in a row: the first one only counted.
        let lines = lb.process.stderr.allLines
        let down = try XCTUnwrap(index(of: #"\[!\] Server 1 failed heartbeat\. Restarting\.\.\."#, in: lines))
        let missed = index(of: #"\[!\] Server 1 heartbeat failed: .* \(1/2\)"#, in: lines)
        XCTAssertNotNil(missed, "the first failed heartbeat must be logged before the DOWN")
        XCTAssertLessThan(missed ?? .max, down, "one failed heartbeat must not take a replica down")
        XCTAssertEqual(ProcFS.waitUntilGone([identity], timeout: 10), [], "the hung process must be killed, not left behind")
        let status = try lb.request("GET", "/status")
        XCTAssertEqual(status.status, 200)
        let message = try XCTUnwrap(status.jsonObject?["message"] as? [String: Any])
        let replicas = try XCTUnwrap(message["replicas"] as? [[String: Any]])
        let one = try XCTUnwrap(replicas.first { $0["name"] as? String == "server-1" })
        XCTAssertEqual(one["state"] as? String, "UP")
        XCTAssertEqual(one["restarts"] as? Int, 1)
        XCTAssertTrue((one["last_check"] as? String)?.hasPrefix("L7OK") == true, "\(one)")
    }

    func testStatusDescribesEveryReplica() throws {
        let lb = try startLoadBalancer()
        let response = try lb.request("GET", "/status")
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.jsonStatus, "successful")
        let message = try XCTUnwrap(response.jsonObject?["message"] as? [String: Any], "\(response)")
        XCTAssertEqual(message["N"] as? Int, 3)
        XCTAssertNotNil(message["generation"] as? Int)
        XCTAssertNotNil(message["algorithm"] as? String)
        let replicas = try XCTUnwrap(message["replicas"] as? [[String: Any]])
        let pids = lb.replicaPIDsByID()
        XCTAssertEqual(replicas.compactMap { $0["name"] as? String }, ["server-1", "server-2", "server-3"])
        for replica in replicas {
            let id = try XCTUnwrap(replica["id"] as? Int)
            XCTAssertEqual(replica["state"] as? String, "UP", "\(replica)")
            XCTAssertEqual(replica["pid"] as? Int, pids[id].map(Int.init), "\(replica)")
            XCTAssertTrue((replica["address"] as? String)?.hasPrefix("127.0.0.1:") == true)
            XCTAssertEqual(replica["consecutive_failures"] as? Int, 0)
        }
        let denied = try lb.request("GET", "/status", source: "127.0.0.3")
        XCTAssertEqual(denied.status, 200, "loopback is allowed by default")
    }

    /// Two workers, each counting its own requests: what `/metrics` and `/status` show is their
    /// exact sum.
    func testMetricsAndStatusCountTheRequestsSent() throws {
        let lb = try startLoadBalancer(["--listen", "127.0.0.1:0", "--replicas", "3", "--workers", "2"])
        var rng = SeededRandom(seed: 13)
        let ids = rng.sixDigitIDs(400)
        // Enough connections that both workers get some.
        let (owners, _) = try routeIDs(ids, through: lb, connections: 8)
        let expected = distribution(owners)

        // A request is counted when the worker finishes it, which can come just after the client
        // has read its answer: wait for the counts to settle rather than read them once.
        let wanted = Dictionary(uniqueKeysWithValues: expected.map { ("server-\($0.key)", $0.value) })
        let deadline = Date().addingTimeInterval(10)
        var metrics = try lb.request("GET", "/metrics")
        var perReplica: [String: Int] = [:]
        var histogramCounts: [String: Int] = [:]
        while true {
            XCTAssertEqual(metrics.status, 200)
            perReplica = [:]
            histogramCounts = [:]
            for line in metrics.bodyString.split(separator: "\n") {
                // dslb_replica_requests_total{replica="server-1"} 42
                let name = line.split(separator: "\"").dropFirst().first.map(String.init) ?? ""
                let value = Double(line.split(separator: " ").last!).map { Int($0) }
                if line.hasPrefix("dslb_replica_requests_total{") { perReplica[name] = value }
                if line.hasPrefix("dslb_replica_response_seconds_count{") { histogramCounts[name] = value }
            }
            if (perReplica == wanted && histogramCounts == wanted) || Date() >= deadline { break }
            usleep(20_000)
            metrics = try lb.request("GET", "/metrics")
        }
        XCTAssertTrue(metrics.header("Content-Type")?.hasPrefix("text/plain") == true, "\(metrics)")
        XCTAssertEqual(perReplica, wanted, "Prometheus counters must match the requests sent")
        XCTAssertEqual(histogramCounts, wanted, "the response-time histogram counts every answered request once")
        for line in [
            "dslb_replica_up{replica=\"server-1\"} 1", "dslb_pool_replicas 3", "# TYPE dslb_replica_response_seconds histogram",
        ] {
            XCTAssertTrue(metrics.bodyString.contains(line), "missing '\(line)' in /metrics")
        }

        let status = try lb.request("GET", "/status")
        let message = try XCTUnwrap(status.jsonObject?["message"] as? [String: Any])
        let replicas = try XCTUnwrap(message["replicas"] as? [[String: Any]])
        for replica in replicas {
            let id = try XCTUnwrap(replica["id"] as? Int)
            XCTAssertEqual(replica["requests"] as? Int, expected[id] ?? 0, "\(replica)")
            XCTAssertEqual(replica["in_flight"] as? Int, 0)
        }

        // `ds-lb status` prints the same as a table.
        let cli = try launch("ds-lb", ["status", "--address", "127.0.0.1:\(lb.port)"])
        XCTAssertNotNil(cli.waitForExit(timeout: 10))
        // The pipe reader may still be draining after the exit.
        var table = cli.stdout.allLines
        for _ in 0..<200 where table.count < 5 {
            usleep(10_000)
            table = cli.stdout.allLines
        }
        XCTAssertTrue(table.contains { $0.hasPrefix("NAME") && $0.contains("STATE") && $0.contains("REQUESTS") }, "\(table)")
        for id in 1...3 {
            XCTAssertTrue(table.contains { $0.hasPrefix("server-\(id) ") && $0.contains(" UP ") }, "\(table)")
        }
    }

    func testScalingUnderLoadLosesNothing() throws {
        let lb = try startLoadBalancer()
        var rng = SeededRandom(seed: 7)
        let ids = rng.sixDigitIDs(200)
        let load = BackgroundLoad(port: lb.port, ids: ids)
        for _ in 0..<3 {
            let added = try lb.admin("POST", "/add", json: ["n": 2])
            XCTAssertEqual(added.status, 200, "\(added)")
            XCTAssertEqual(added.replicaState?.n, 5)
            XCTAssertTrue(load.waitUntilSent(atLeast: load.sentSoFar + 10), "the load stalled after /add")
            let removed = try lb.admin("DELETE", "/rm", json: ["n": 2])
            XCTAssertEqual(removed.status, 200, "\(removed)")
            XCTAssertEqual(removed.replicaState?.n, 3)
            XCTAssertTrue(load.waitUntilSent(atLeast: load.sentSoFar + 10), "the load stalled after /rm")
        }
        let (sent, failures) = load.stop()
        XCTAssertGreaterThan(sent, 50)
        XCTAssertTrue(
            failures.isEmpty,
            "\(failures.count) of \(sent) requests failed while scaling:\n\(failures.prefix(5).joined(separator: "\n"))")
        // A removed replica is stopped once its in-flight requests drained: asynchronously, and
        // slower under a sanitizer.
        for _ in 0..<200 where lb.replicaPIDsByID().count != 3 { usleep(50_000) }
        XCTAssertEqual(lb.replicaPIDsByID().count, 3, "removed replicas must be stopped: \(lb.replicaPIDsByID())")
    }

    func testInFlightSlowRequestOnARemovedReplicaCompletes() throws {
        let lb = try startLoadBalancer()
        var rng = SeededRandom(seed: 17)
        let ids = rng.sixDigitIDs(60)
        let (owners, _) = try routeIDs(ids, through: lb, connections: 1)
        let id = try XCTUnwrap(ids.first { owners[$0] == 3 }, "no id owned by server 3")
        XCTAssertTrue(lb.waitForNoneInFlight(), "the routing requests still count as in flight")
        let slow = lb.getInBackground("/slow?ms=1500&id=\(id)", timeout: 10)
        XCTAssertTrue(lb.waitForInFlight(replica: "server-3"), "the slow request never reached server 3")
        let removed = try lb.admin("DELETE", "/rm", json: ["hostnames": ["server-3"]])
        XCTAssertEqual(removed.status, 200, "\(removed)")
        let result = try XCTUnwrap(slow(), "the slow request was not answered")
        let answer = result.response
        let failure = result.error
        XCTAssertNil(failure, "the in-flight request failed: \(String(describing: failure))")
        XCTAssertEqual(answer?.status, 200, "\(String(describing: answer))")
        XCTAssertEqual(answer?.helloServerID, 3, "it is answered by the replica it was sent to")
        // Once drained, the replica stops.
        for _ in 0..<100 where lb.replicaPIDsByID()[3] != nil { usleep(50_000) }
        XCTAssertNil(lb.replicaPIDsByID()[3], "server 3 must stop after its in-flight request finished")
    }

    func testPoolSurvivesRestartsOfTheBalancer() throws {
        let stateDir = try temporaryDirectory()
        let environment: [String: String?] = ["STATE_DIRECTORY": stateDir]
        let first = try startLoadBalancer(environment: environment)
        XCTAssertEqual(try first.admin("POST", "/add", json: ["hostnames": ["S9"]]).status, 200)
        var rng = SeededRandom(seed: 11)
        let ids = rng.sixDigitIDs(200)
        let (owners, _) = try routeIDs(ids, through: first, connections: 2)
        let pool = try first.replicaState().replicas
        XCTAssertEqual(pool.count, 4)

        // SIGTERM: a clean stop, then the same pool comes back.
        XCTAssertTrue(first.process.send(signal: SIGTERM))
        XCTAssertEqual(first.process.waitForExit(timeout: 10)?.description.contains("0") ?? false, true)
        let second = try startLoadBalancer(environment: environment)
        XCTAssertEqual(try second.replicaState().replicas.sorted(), pool.sorted())
        XCTAssertEqual(try routeIDs(ids, through: second, connections: 2).0, owners, "same replicas, same keys")

        // SIGKILL: the children die with it (PR_SET_PDEATHSIG); the next start neither
        // duplicates nor forgets a replica.
        let orphans = ProcFS.children(of: second.process.pid).compactMap(ProcFS.identity)
        XCTAssertTrue(second.process.send(signal: SIGKILL))
        XCTAssertEqual(ProcFS.waitUntilGone(orphans, timeout: 10), [], "replicas outlived a SIGKILLed ds-lb")
        let third = try startLoadBalancer(environment: environment)
        XCTAssertEqual(try third.replicaState().replicas.sorted(), pool.sorted())
        XCTAssertEqual(third.replicaPIDsByID().count, 4, "exactly the saved replicas run")
        XCTAssertEqual(try routeIDs(ids, through: third, connections: 2).0, owners)
    }

    func testCorruptStateFileIsReportedAndRefused() throws {
        let stateDir = try temporaryDirectory()
        let path = stateDir + "/state.json"
        try Data(#"{"version": 1, "driver": "proc"#.utf8).write(to: URL(fileURLWithPath: path))
        let process = try launch("ds-lb", ["--listen", "127.0.0.1:0"], environment: ["STATE_DIRECTORY": stateDir])
        let ended = process.waitForExit(timeout: 10)
        XCTAssertNotNil(ended, "ds-lb must refuse to start")
        XCTAssertFalse(ended?.description.contains("status 0") ?? true, "\(String(describing: ended))")
        let output = process.stderr.allLines.joined(separator: "\n")
        XCTAssertTrue(output.contains(path), "the error must name the file: \(output)")
        XCTAssertTrue(output.contains("corrupt"), output)
    }

    func testFailingRestartsBackOffThenReplaceTheReplica() throws {
        // A replica binary that fails while a marker file exists.
        let dir = try temporaryDirectory()
        let marker = dir + "/broken"
        let script = dir + "/replica.sh"
        let server = try Binaries.path("ds-server")
        try Data("#!/bin/sh\n[ -e \(marker) ] && exit 3\nexec \(server) \"$@\"\n".utf8).write(to: URL(fileURLWithPath: script))
        XCTAssertEqual(chmod(script, 0o755), 0)
        let lb = try startLoadBalancer([
            "--listen", "127.0.0.1:0", "--replicas", "3", "--server-binary", script,
            "--heartbeat-interval", "500ms", "--on-failure", "replace", "--max-restarts", "3",
        ])
        XCTAssertTrue(FileManager.default.createFile(atPath: marker, contents: nil))
        let victim = try XCTUnwrap(lb.replicaPIDsByID()[1])
        XCTAssertEqual(kill(victim, SIGKILL), 0)
        try lb.process.waitForStderrLine(matching: #"\[!\] Failed to restart server 1: .*exit status 3"#, timeout: 30)
        try lb.process.waitForStderrLine(matching: #"next restart in 1s"#, timeout: 30)
        try lb.process.waitForStderrLine(matching: #"next restart in 2s"#, timeout: 30)
        try lb.process.waitForStderrLine(matching: #"replacing it with server-4"#, timeout: 30)
        try FileManager.default.removeItem(atPath: marker)
        try lb.process.waitForStderrLine(matching: #"\[\+\] Server 4 started in place of server-1"#, timeout: 30)
        let state = try lb.replicaState()
        XCTAssertEqual(state.replicas.sorted(), ["server-2", "server-3", "server-4"], "the pool keeps its size under a new name")
        let restarts = lb.process.stderr.allLines.filter { $0.contains("Failed to restart server 1") }.count
        XCTAssertEqual(restarts, 3, "exactly --max-restarts failed attempts before the replacement")
    }

    func testFlappingReplicaIsNotRestartedInAStorm() throws {
        let lb = try startLoadBalancer(["--listen", "127.0.0.1:0", "--replicas", "3", "--heartbeat-interval", "500ms"])
        let started = Date()
        while Date().timeIntervalSince(started) < 6 {
            if let pid = lb.replicaPIDsByID()[3] { _ = kill(pid, SIGKILL) }
            usleep(300_000)
        }
        // Attempts, whether they came up or were killed during start-up (where a slow, sanitized
        // ds-server always is when the next kill comes 300 ms later).
        let attempts = lb.process.stderr.allLines.filter {
            $0.contains("[+] Server 3 restarted") || $0.contains("Failed to restart server 3")
        }.count
        // Without damping a restart would follow every kill (~20); backoff (1 s, 2 s, 4 s ...)
        // allows about four in six seconds.
        XCTAssertLessThanOrEqual(attempts, 5, lb.process.outputTail())
        XCTAssertGreaterThanOrEqual(attempts, 1, lb.process.outputTail())
        XCTAssertTrue(lb.process.isRunning)
    }
}
