// No process a test starts outlives the test process, even when the test process is SIGKILLed
// and no teardown runs: the test starts this same test executable as a helper that launches
// ds-server and ds-lb (with replicas) the way every test does, kills the helper, and checks by
// PID and start time in /proc that all of them are gone.

import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class ParentDeathTests: IntegrationTestCase {
    /// Set in the helper's environment: run as the helper instead of as the test.
    private static let helperVariable = "DSLB_ITEST_PARENT_DEATH_HELPER"
    private static let testName = "IntegrationTests.ParentDeathTests/testNothingOutlivesAKilledTestProcess"

    func testNothingOutlivesAKilledTestProcess() throws {
        if ProcessInfo.processInfo.environment[Self.helperVariable] == "1" {
            try runAsHelper()
            return
        }
        guard let xctest = ProcFS.executablePath(getpid()) else {
            XCTFail("cannot read /proc/self/exe")
            return
        }
        let helper = try launch(
            xctest, [Self.testName],
            environment: [Self.helperVariable: "1", "DSLB_BIN_DIR": try Binaries.directory()],
            name: "helper")
        let groups = try helper.waitForStderrLine(
            matching: #"^parent-death-helper: server ([0-9]+) lb ([0-9]+) replicas ([0-9 ]+)$"#,
            timeout: 3 * startupTimeout)
        let server = pid_t(groups[1])!, lb = pid_t(groups[2])!
        let replicas = groups[3].split(separator: " ").compactMap { pid_t($0) }
        XCTAssertEqual(replicas.count, 2, "ds-lb's replicas: \(groups[0])")
        let pids = [server, lb] + replicas
        // Teardown kills whatever survives, so a failure here leaves nothing behind either.
        recordStrays(pids)
        let identities = pids.compactMap(ProcFS.identity)
        XCTAssertEqual(
            identities.count, pids.count, "every reported process runs before the helper is killed: \(pids.map(ProcFS.describe))")
        // The server was spawned from a thread the helper let end first: that thread's end must not
        // have killed it (the death signal follows the forking thread, hence SpawnThread).
        XCTAssertTrue(identities.allSatisfy { !ProcFS.isGone($0) }, "alive before the kill: \(pids.map(ProcFS.describe))")

        XCTAssertTrue(helper.send(signal: SIGKILL))
        XCTAssertEqual(helper.waitForExit(timeout: 10), .signaled(SIGKILL))
        let survivors = ProcFS.waitUntilGone(identities, timeout: 10)
        XCTAssertEqual(
            survivors, [], "still running 10 s after the test process was SIGKILLed: \(survivors.map { ProcFS.describe($0.pid) })"
        )
    }

    /// The helper: starts a ds-server from a short-lived thread and a ds-lb with two process
    /// replicas from the test's thread, reports their PIDs on stderr and waits to be killed.
    private func runAsHelper() throws {
        let serverPath = try Binaries.path("ds-server")
        let box = ServerBox()
        let started = DispatchSemaphore(value: 0)
        let thread = Thread {
            box.result = Result {
                try ChildProcess(
                    name: "ds-server-1", executable: serverPath,
                    arguments: ["--id", "1", "--host", "127.0.0.1", "--port", "0"])
            }
            started.signal()
        }
        thread.start()
        started.wait()
        let server = try box.result!.get()
        addTeardownBlock {
            server.forceStop()
            server.stopReaders()
        }
        try server.waitForStderrLine(matching: #"Listening on 127\.0\.0\.1:[0-9]+"#, timeout: startupTimeout)
        while !thread.isFinished { usleep(1_000) }

        let lb = try startLoadBalancer(["--listen", "127.0.0.1:0", "--replicas", "2"])
        let deadline = Date().addingTimeInterval(3 * startupTimeout)
        var replicas = lb.replicaPIDsByID()
        while replicas.count < 2 && Date() < deadline {
            usleep(50_000)
            replicas = lb.replicaPIDsByID()
        }
        XCTAssertEqual(replicas.count, 2, "ds-lb's replicas")
        let line =
            "parent-death-helper: server \(server.pid) lb \(lb.process.pid) replicas \(replicas.values.sorted().map(String.init).joined(separator: " "))\n"
        FileHandle.standardError.write(Data(line.utf8))
        // The parent kills us now; should it not, end rather than linger.
        sleep(120)
        XCTFail("the helper was not killed within 120 s")
    }

    private final class ServerBox: @unchecked Sendable {
        var result: Result<ChildProcess, Error>?
    }
}
