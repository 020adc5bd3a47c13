// ds-lb's children: what it spawns, and that none outlives it (SIGTERM or SIGKILL).

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class LoadBalancerLifecycleTests: IntegrationTestCase {
    /// Records ds-lb's replica processes (also for teardown) and checks there are `count`.
    private func replicas(
        of lb: LoadBalancerUnderTest, count: Int,
        file: StaticString = #filePath, line: UInt = #line
    ) throws -> [ProcFS.Identity] {
        let children = ProcFS.descendants(of: lb.process.pid)
        recordStrays(children)
        let identities = children.compactMap(ProcFS.identity)
        XCTAssertEqual(
            identities.count, count, "ds-lb's descendants: \(children.map(ProcFS.describe))",
            file: file, line: line)
        return identities
    }

    /// The children are `<bindir>/ds-server --id N --host 127.0.0.1 --port P` with
    /// SERVER_ID=N, each listening on its P.
    func testReplicasAreDSServerChildrenWithTheirIDs() throws {
        let lb = try startLoadBalancer()
        let expectedExe = URL(fileURLWithPath: try Binaries.path("ds-server")).resolvingSymlinksInPath().path
        let byID = lb.replicaPIDsByID()
        XCTAssertEqual(
            Set(byID.keys), [1, 2, 3], "children by --id: \(ProcFS.children(of: lb.process.pid).map(ProcFS.describe))")
        for (id, pid) in byID.sorted(by: { $0.key < $1.key }) {
            let argv = ProcFS.cmdline(pid) ?? []
            XCTAssertEqual(ProcFS.executablePath(pid), expectedExe, "replica \(id) runs \(argv)")
            func value(_ flag: String) -> String? {
                argv.firstIndex(of: flag).flatMap { $0 + 1 < argv.count ? argv[$0 + 1] : nil }
            }
            XCTAssertEqual(value("--host"), "127.0.0.1", "replica \(id): \(argv)")
            XCTAssertEqual(ProcFS.environment(pid)?["SERVER_ID"], "\(id)", "replica \(id): SERVER_ID")
            let listening = ProcFS.listeningPorts(of: pid)
            if let port = value("--port").flatMap(UInt16.init), port != 0 {
                XCTAssertTrue(listening.contains(port), "replica \(id) listens on its --port \(port); listening: \(listening)")
            }
            // Each replica answers directly as itself.
            if let port = listening.first {
                let response = try HTTPConnection(port: port).get("/home")
                XCTAssertEqual(response.helloServerID, id, "replica \(id) on port \(port): \(response)")
            }
        }
    }

    func testSIGTERMStopsEveryChildAndExitsZero() throws {
        let lb = try startLoadBalancer()
        assertReplicaState(try lb.admin("POST", "/add"), ["server-1", "server-2", "server-3", "server-4"], "POST /add")
        let children = try replicas(of: lb, count: 4)
        // A client connection is open and idle while ds-lb stops.
        let idle = lb.client()
        XCTAssertEqual(try idle.get("/home?id=1").status, 200)

        XCTAssertTrue(lb.process.send(signal: SIGTERM))
        let termination = lb.process.waitForExit(timeout: 10)
        XCTAssertEqual(
            termination, .exited(0), "ds-lb after SIGTERM: \(termination.map { "\($0)" } ?? "still running after 10 s")")
        let alive = ProcFS.waitUntilGone(children, timeout: 5)
        XCTAssertEqual(alive, [], "children alive after ds-lb's SIGTERM exit: \(alive.map { ProcFS.describe($0.pid) })")
    }

    /// Ctrl-C in the terminal that runs ds-lb: the terminal signals its whole foreground process
    /// group. The replicas lead groups of their own, so only ds-lb gets it: it stops them itself,
    /// and neither restarts one nor reports one as failed on the way out.
    func testSIGINTToTheBalancersProcessGroupStopsItWithoutRestarts() throws {
        let lb = try startLoadBalancer(ownProcessGroup: true)
        let children = try replicas(of: lb, count: 3)
        XCTAssertEqual(ProcFS.stat(lb.process.pid)?.pgrp, lb.process.pid, "the test starts ds-lb as a group leader")
        for child in children {
            XCTAssertEqual(
                ProcFS.stat(child.pid)?.pgrp, child.pid,
                "replica \(ProcFS.describe(child.pid)) must lead its own process group, not share ds-lb's")
        }

        XCTAssertEqual(kill(-lb.process.pid, SIGINT), 0, "kill(-pgid, SIGINT): \(String(cString: strerror(errno)))")
        let termination = lb.process.waitForExit(timeout: 15)
        XCTAssertEqual(
            termination, .exited(0),
            "ds-lb after SIGINT to its group: \(termination.map { "\($0)" } ?? "still running after 15 s")")
        let alive = ProcFS.waitUntilGone(children, timeout: 5)
        XCTAssertEqual(alive, [], "replicas alive after ds-lb's exit: \(alive.map { ProcFS.describe($0.pid) })")
        let lines = lb.process.stderr.allLines
        XCTAssertTrue(lines.contains { $0.contains("Received signal \(SIGINT)") }, lb.process.outputTail())
        let failures = lines.filter { $0.contains("[!]") || $0.contains("Restarting") || $0.contains("restarted") }
        XCTAssertEqual(failures, [], "a stopping ds-lb must report no failure and restart nothing")
    }

    /// A replica that exits while ds-lb stops (here: while a request in flight holds the stop
    /// up) is expected to: it is logged, taken out of rotation, and neither restarted nor
    /// reported as failed; the request in flight still finishes.
    func testReplicaExitingWhileTheBalancerStopsIsNotRestarted() throws {
        let lb = try startLoadBalancer(["--listen", "127.0.0.1:0", "--replicas", "2", "--drain-timeout", "60s"])
        _ = try replicas(of: lb, count: 2)
        let owner = try XCTUnwrap(try lb.request("GET", "/home?id=1").helloServerID, "GET /home?id=1")
        let victim = owner == 1 ? 2 : 1
        let victimPID = try XCTUnwrap(lb.replicaPIDsByID()[victim])

        // /echo answers its head at once and its body as the body arrives: the request stays in
        // flight, and ds-lb's stop waits for it, until the test sends the body.
        let inFlight = try HTTPConnection(port: lb.port, timeout: 30)
        defer { inFlight.close() }
        try inFlight.send("POST /echo?id=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\n\r\n")
        let gauge = "dslb_replica_in_flight_requests{replica=\"server-\(owner)\"} 1"
        var metrics = ""
        for _ in 0..<500 {
            metrics = try lb.request("GET", "/metrics").bodyString
            if metrics.contains(gauge) { break }
            usleep(20_000)
        }
        XCTAssertTrue(metrics.contains(gauge), "the request never showed as in flight: \(metrics)")

        XCTAssertTrue(lb.process.send(signal: SIGTERM))
        try lb.process.waitForStderrLine(matching: #"Received signal"#, timeout: 10)
        XCTAssertEqual(kill(victimPID, SIGINT), 0)
        try lb.process.waitForStderrLine(matching: #"Server \#(victim) \(server-\#(victim)\) exited"#, timeout: 10)

        try inFlight.send("ping")
        let response = try inFlight.readResponse(method: "POST")
        XCTAssertEqual(response.status, 200, "\(response)")
        XCTAssertEqual(response.bodyString, "ping", "the request in flight is answered by its replica")
        let termination = lb.process.waitForExit(timeout: 15)
        XCTAssertEqual(termination, .exited(0), "ds-lb: \(termination.map { "\($0)" } ?? "still running after 15 s")")
        let failures = lb.process.stderr.allLines.filter {
            $0.contains("[!]") || $0.contains("Restarting") || $0.contains("restarted")
        }
        XCTAssertEqual(failures, [], "a replica that exits while ds-lb stops is neither a failure nor restarted")
    }

    func testSIGKILLOfTheBalancerTakesItsChildrenDown() throws {
        let lb = try startLoadBalancer()
        assertReplicaState(try lb.admin("POST", "/add"), ["server-1", "server-2", "server-3", "server-4"], "POST /add")
        let children = try replicas(of: lb, count: 4)

        XCTAssertTrue(lb.process.send(signal: SIGKILL))
        XCTAssertEqual(lb.process.waitForExit(timeout: 5), .signaled(SIGKILL))
        let alive = ProcFS.waitUntilGone(children, timeout: 5)
        XCTAssertEqual(
            alive, [], "children alive 5 s after SIGKILL of ds-lb (PR_SET_PDEATHSIG): \(alive.map { ProcFS.describe($0.pid) })")
    }

    /// A hand-edited state file with an entry /add would refuse: ds-lb starts nothing and exits
    /// non-zero with one line naming the file, the entry and the problem.
    func testInvalidStateFileEntriesAreRefusedAtStart() throws {
        func entry(_ name: String, _ id: Int, _ port: Int) -> String {
            #"{"name": "\#(name)", "id": \#(id), "host": "127.0.0.1", "port": \#(port)}"#
        }
        let cases: [([String], String)] = [
            (
                [entry("server-1", 1, 20001), entry("server-2", 1, 20002)],
                "replicas[1] (server-2): id 1 is already used by replicas[0] (server-1)"
            ),
            (
                [entry("server-1", 1, 20001), entry("server-2", 2, 20001)],
                "replicas[1] (server-2): address 127.0.0.1:20001 is already used by replicas[0] (server-1)"
            ),
            ([entry("../../x", 1, 20001)], "replicas[0] (../../x): invalid name"),
            (
                [entry("server-37", 1, 20001), entry("SERVER-37", 2, 20002)],
                "replicas[1] (SERVER-37): the name is already used by replicas[0] (server-37)"
            ),
            ([entry("server-1", -5, 70000)], "replicas[0] (server-1): 'id' must be a positive integer, not -5"),
            ([entry("server-1", 5, 70000)], "replicas[0] (server-1): 'port' must be an integer from 0 to 65535, not 70000"),
        ]
        for (entries, problem) in cases {
            let stateDir = try temporaryDirectory()
            let path = stateDir + "/state.json"
            try Data(#"{"version": 1, "driver": "process", "replicas": [\#(entries.joined(separator: ", "))]}"#.utf8)
                .write(to: URL(fileURLWithPath: path))
            let process = try launch(
                "ds-lb", ["--listen", "127.0.0.1:0", "--driver", "process"],
                environment: ["STATE_DIRECTORY": stateDir])
            let ended = process.waitForExit(timeout: 10)
            XCTAssertNotNil(ended, "ds-lb must refuse to start: \(problem)")
            XCTAssertNotEqual(ended, .exited(0), problem)
            let lines = process.stderr.allLines.filter { $0.contains(path) }
            XCTAssertEqual(lines.count, 1, "one line names \(path): \(process.outputTail())")
            XCTAssertTrue(
                lines.first?.contains("state file \(path) is corrupt: \(problem)") ?? false,
                "wanted '\(problem)': \(process.outputTail())")
            XCTAssertEqual(ProcFS.descendants(of: process.pid), [], "no replica was started")
        }
    }

    func testADirectoryInPlaceOfTheStateFileIsNamed() throws {
        let stateDir = try temporaryDirectory()
        let path = stateDir + "/state.json"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        let process = try launch(
            "ds-lb", ["--listen", "127.0.0.1:0", "--driver", "process"], environment: ["STATE_DIRECTORY": stateDir])
        let ended = process.waitForExit(timeout: 10)
        XCTAssertNotNil(ended)
        XCTAssertNotEqual(ended, .exited(0))
        let output = process.stderr.allLines.joined(separator: "\n")
        XCTAssertTrue(output.contains("state file \(path) is a directory, not a file"), output)
        XCTAssertFalse(output.contains("Success"), output)
    }
}
