import DSBalancer
import Foundation
import XCTest

@testable import DSControl

#if canImport(Glibc)
import Glibc
#endif

/// The process driver reports what happens to its children as it happens: an exit reaches the
/// control loop through the child's pidfd, with nobody asking.
final class ProcessDriverTests: XCTestCase {
    /// A "replica" that ignores its arguments and waits to be killed.
    private func sleeper() throws -> String {
        let path = NSTemporaryDirectory() + "/ds-lb-sleeper-\(getpid())-\(UUID().uuidString).sh"
        try Data("#!/bin/sh\nexec sleep 300\n".utf8).write(to: URL(fileURLWithPath: path))
        XCTAssertEqual(chmod(path, 0o755), 0)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    /// A process driver of sleepers on a control loop of its own, stopped at the test's end.
    private func attachedDriver() throws -> (ProcessDriver, DriverEventLoop) {
        let driver = ProcessDriver(serverBinary: try sleeper(), stopGrace: .seconds(1))
        let control = try DriverEventLoop(driver)
        addTeardownBlock {
            _ = try? control.sync { driver.stopAll() }
            control.stop()
        }
        return (driver, control)
    }

    private func childPID(of backend: Backend, in driver: ProcessDriver, control: DriverEventLoop) throws -> pid_t {
        let details = try control.sync { driver.details(of: backend) }
        guard case .int(let pid)? = details.first(where: { $0.0 == "pid" })?.1 else {
            XCTFail("no pid in \(details)")
            return -1
        }
        return pid_t(pid)
    }

    func testAChildKilledFromOutsideIsReportedAsExited() throws {
        let (driver, control) = try attachedDriver()
        let backend = try control.sync { try driver.launch(ReplicaSpec(name: "server-1", number: 1), previous: nil) }
        control.waitFor { $0 == [.started(backend)] }
        let pid = try childPID(of: backend, in: driver, control: control)
        XCTAssertGreaterThan(pid, 0)
        XCTAssertEqual(kill(pid, SIGKILL), 0)
        control.waitFor(seconds: 30) { $0.count == 2 }
        XCTAssertEqual(control.events, [.started(backend), .exited(backend, reason: "killed by signal 9")])
        // Reaped: no zombie is left, and the name is free for a restart.
        XCTAssertEqual(try control.sync { driver.details(of: backend).first?.1 }, .null)
        XCTAssertEqual(Glibc.kill(pid, 0), -1, "the child was reaped")
    }

    /// Instances ds-lb stops or kills itself are not reported: only exits it did not ask for are.
    func testStoppedAndKilledChildrenAreReapedWithoutAReport() throws {
        let (driver, control) = try attachedDriver()
        let one = try control.sync { try driver.launch(ReplicaSpec(name: "server-1", number: 1), previous: nil) }
        let two = try control.sync { try driver.launch(ReplicaSpec(name: "server-2", number: 2), previous: nil) }
        let three = try control.sync { try driver.launch(ReplicaSpec(name: "server-3", number: 3), previous: nil) }
        control.waitFor { $0.count == 3 }
        let pids = try [one, two].map { try childPID(of: $0, in: driver, control: control) }
        try control.sync { driver.stop(one) }
        try control.sync { driver.kill(two) }
        // Both gone (SIGTERM ends `sleep`; the kill waits for its child), and reaped.
        let deadline = Date().addingTimeInterval(30)
        while pids.contains(where: { Glibc.kill($0, 0) == 0 }) && Date() < deadline { usleep(10_000) }
        XCTAssertFalse(pids.contains(where: { Glibc.kill($0, 0) == 0 }), "stopped children were not reaped")
        // A later exit still is reported, so the loop has seen the earlier ones by then.
        XCTAssertEqual(kill(try childPID(of: three, in: driver, control: control), SIGKILL), 0)
        control.waitFor(seconds: 30) { $0.count == 4 }
        XCTAssertEqual(
            control.events, [.started(one), .started(two), .started(three), .exited(three, reason: "killed by signal 9")])
    }
}

extension ProcessDriverTests {
    /// In cluster mode replicas listen on the node's advertise address, so other hosts reach
    /// them: the driver's host is the backend's and the child's `--host`.
    func testReplicasListenOnTheDriversHost() throws {
        let arguments = NSTemporaryDirectory() + "/ds-lb-arguments-\(getpid())-\(UUID().uuidString)"
        let script = arguments + ".sh"
        try Data("#!/bin/sh\necho \"$@\" > \(arguments)\nexec sleep 300\n".utf8).write(to: URL(fileURLWithPath: script))
        XCTAssertEqual(chmod(script, 0o755), 0)
        addTeardownBlock {
            try? FileManager.default.removeItem(atPath: script)
            try? FileManager.default.removeItem(atPath: arguments)
        }
        let driver = ProcessDriver(serverBinary: script, host: "127.0.0.2", stopGrace: .seconds(1))
        let control = try DriverEventLoop(driver)
        defer {
            _ = try? control.sync { driver.stopAll() }
            control.stop()
        }
        let backend = try control.sync { try driver.launch(ReplicaSpec(name: "server-3", number: 3), previous: nil) }
        XCTAssertEqual(backend.host, "127.0.0.2")
        XCTAssertNotEqual(backend.port, 0)
        let deadline = Date().addingTimeInterval(20)
        var written = ""
        while Date() < deadline {
            written = (try? String(contentsOfFile: arguments, encoding: .utf8)) ?? ""
            if written.hasSuffix("\n") { break }
            usleep(10_000)
        }
        XCTAssertEqual(written, "--id 3 --host 127.0.0.2 --port \(backend.port)\n")
    }
}
