import DSSystem
import Glibc
import XCTest

/// Spawns from the test thread (XCTest's main thread), which lives as long as the test process,
/// as ChildProcess requires. Every child is reaped by the test that started it.
final class ChildProcessTests: XCTestCase {
    /// Blocks until the child has exited without reaping it (WNOWAIT), then reaps it with
    /// `reap()`, the call under test. Only for children that exit on their own or were killed.
    private func exitStatus(_ child: ChildProcess, file: StaticString = #filePath, line: UInt = #line) -> Int32? {
        var info = siginfo_t()
        while waitid(P_PID, id_t(child.pid), &info, WEXITED | WNOWAIT) != 0 {
            guard errno == EINTR else {
                XCTFail("waitid: \(SyscallError(errno: errno, function: "waitid"))", file: file, line: line)
                return nil
            }
        }
        let status = child.reap()
        XCTAssertNotNil(status, "exited but not reaped", file: file, line: line)
        return status
    }

    private func exitCode(_ status: Int32?) -> Int32? {
        guard let status, status & 0x7f == 0 else { return nil }
        return (status >> 8) & 0xff
    }

    private func terminatingSignal(_ status: Int32?) -> Int32? {
        guard let status, status & 0x7f != 0, status & 0x7f != 0x7f else { return nil }
        return status & 0x7f
    }

    private func isReaped(_ pid: pid_t) -> Bool {
        var status: Int32 = 0
        return waitpid(pid, &status, WNOHANG) == -1 && errno == ECHILD
    }

    func testTrueExitsWithZero() throws {
        let child = try ChildProcess.spawn(path: "/bin/true", arguments: [], environment: [:])
        XCTAssertGreaterThan(child.pid, 0)
        XCTAssertEqual(exitCode(exitStatus(child)), 0)
        XCTAssertTrue(isReaped(child.pid))
        // Once reaped, the child is reported gone rather than running.
        XCTAssertNotNil(child.reap())
    }

    func testExitCodeIsReported() throws {
        let child = try ChildProcess.spawn(path: "/bin/sh", arguments: ["-c", "exit 3"], environment: [:])
        XCTAssertEqual(exitCode(exitStatus(child)), 3)
    }

    func testArgumentsArePassedAsGiven() throws {
        let child = try ChildProcess.spawn(
            path: "/bin/sh",
            arguments: ["-c", "test \"$0|$1|$2\" = 'name|a b|' || exit 9", "name", "a b", ""],
            environment: [:])
        XCTAssertEqual(exitCode(exitStatus(child)), 0)
    }

    func testEnvironmentIsExactlyTheGivenOne() throws {
        setenv("DS_SYSTEM_TESTS_PARENT_ONLY", "1", 1)
        defer { unsetenv("DS_SYSTEM_TESTS_PARENT_ONLY") }
        let script = "test \"$GREETING\" = 'hello world' || exit 8; test -z \"$DS_SYSTEM_TESTS_PARENT_ONLY\" || exit 9"
        let child = try ChildProcess.spawn(path: "/bin/sh", arguments: ["-c", script], environment: ["GREETING": "hello world"])
        XCTAssertEqual(exitCode(exitStatus(child)), 0)
    }

    /// The fork succeeds and the exec fails in the child: that is exit status 127, not a throw.
    func testMissingExecutableExitsWith127() throws {
        let child = try ChildProcess.spawn(path: "/nonexistent/ds-system-tests", arguments: [], environment: [:])
        XCTAssertEqual(exitCode(exitStatus(child)), 127)
    }

    func testRunningChildIsNotReapedUntilItIsKilled() throws {
        let child = try ChildProcess.spawn(path: "/bin/sleep", arguments: ["600"], environment: [:])
        XCTAssertNil(child.reap())
        child.signal(SIGKILL)
        XCTAssertEqual(terminatingSignal(exitStatus(child)), SIGKILL)
    }

    func testTerminateStopsAndReapsAChildThatHonoursSIGTERM() throws {
        let child = try ChildProcess.spawn(path: "/bin/sleep", arguments: ["600"], environment: [:])
        child.terminate(grace: .seconds(60))
        XCTAssertTrue(isReaped(child.pid))
    }

    func testTerminateKillsAChildThatIgnoresSIGTERMAfterTheGrace() throws {
        var template = Array("/tmp/ds-system-tests-XXXXXX".utf8CString)
        guard let dir = mkdtemp(&template).map({ String(cString: $0) }) else { return XCTFail("mkdtemp failed") }
        let fifo = dir + "/ready"
        defer { unlink(fifo); rmdir(dir) }
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let ready = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        XCTAssertGreaterThanOrEqual(ready, 0)
        defer { close(ready) }

        // Ignored signals stay ignored across exec, so sleep ignores SIGTERM too.
        let script = "trap '' TERM; echo ready > \"$READY\"; exec /bin/sleep 600"
        let child = try ChildProcess.spawn(path: "/bin/sh", arguments: ["-c", script], environment: ["READY": fifo])
        guard waitFor(ready, POLLIN) & Int32(POLLIN) != 0 else {
            child.signal(SIGKILL)
            _ = exitStatus(child)
            return XCTFail("the child never reported ready")
        }
        let grace: UInt64 = 200_000_000
        let start = monotonicNanoseconds()
        child.terminate(grace: .nanoseconds(grace))
        XCTAssertGreaterThanOrEqual(monotonicNanoseconds() - start, grace, "killed before the grace ran out")
        XCTAssertTrue(isReaped(child.pid))
    }

    /// signalfd users block signals; the child must start with none blocked.
    func testChildStartsWithNoSignalsBlocked() throws {
        var block = sigset_t(), previous = sigset_t()
        sigemptyset(&block)
        sigaddset(&block, SIGUSR2)
        XCTAssertEqual(pthread_sigmask(SIG_BLOCK, &block, &previous), 0)
        let child: ChildProcess
        do {
            defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
            child = try ChildProcess.spawn(path: "/bin/sh", arguments: ["-c", "kill -USR2 $$; exit 0"], environment: [:])
        }
        XCTAssertEqual(terminatingSignal(exitStatus(child)), SIGUSR2)
    }
}
