// Starts a binary as a child process (fork + exec on SpawnThread), captures its stderr and stdout
// into thread-safe line buffers, and reaps it with waitpid. Our own spawn (rather than Foundation's
// Process) gives us the PID to signal and sole ownership of waitpid, lets the child start with
// default signal dispositions and an empty signal mask, as from a shell, and sets
// PR_SET_PDEATHSIG, which posix_spawn cannot: no child outlives the test process.

import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// How a child ended.
enum Termination: Equatable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    init(waitStatus status: Int32) {
        let signal = status & 0x7f
        if signal == 0 {
            self = .exited((status >> 8) & 0xff)
        } else {
            self = .signaled(signal)
        }
    }

    var description: String {
        switch self {
        case .exited(let code): return "exited with status \(code)"
        case .signaled(let sig): return "killed by signal \(sig)"
        }
    }
}

/// Lines written by a child to one of its output streams. Any thread.
final class LineBuffer: @unchecked Sendable {
    private let condition = NSCondition()
    private var lines: [String] = []
    private var partial: [UInt8] = []
    private var eof = false
    private var stopRequested = false

    /// Appends bytes read from the stream; complete lines become visible to waiters.
    func append(_ bytes: ArraySlice<UInt8>) {
        condition.lock()
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                lines.append(String(decoding: partial, as: UTF8.self))
                partial.removeAll(keepingCapacity: true)
            } else {
                partial.append(byte)
            }
        }
        condition.broadcast()
        condition.unlock()
    }

    func markEOF() {
        condition.lock()
        if !partial.isEmpty {
            lines.append(String(decoding: partial, as: UTF8.self))
            partial.removeAll()
        }
        eof = true
        condition.broadcast()
        condition.unlock()
    }

    var isEOF: Bool { condition.lock(); defer { condition.unlock() }; return eof }

    /// Waits until the reader saw the end of the stream or `deadline` passes.
    @discardableResult
    func waitForEOF(deadline: Date) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while !eof && Date() < deadline { _ = condition.wait(until: deadline) }
        return eof
    }

    /// Asks the reader thread to stop even though writers (e.g. orphaned grandchildren that
    /// inherited the pipe) may still hold it open.
    func requestStop() { condition.lock(); stopRequested = true; condition.unlock() }
    var shouldStop: Bool { condition.lock(); defer { condition.unlock() }; return stopRequested }

    var allLines: [String] { condition.lock(); defer { condition.unlock() }; return lines }

    /// Waits until a line from index `from` on matches `regex` or `deadline` passes; returns
    /// the index of the line and the capture groups (group 0 = the whole match). `giveUp`
    /// is polled so a caller can stop early (e.g. the process exited).
    func waitForLine(
        matching regex: NSRegularExpression, from: Int = 0, deadline: Date,
        giveUp: () -> Bool
    ) -> (index: Int, groups: [String])? {
        var next = from
        condition.lock()
        defer { condition.unlock() }
        while true {
            while next < lines.count {
                let line = lines[next]
                let range = NSRange(line.startIndex..., in: line)
                if let match = regex.firstMatch(in: line, range: range) {
                    let groups = (0..<match.numberOfRanges).map { i -> String in
                        guard let r = Range(match.range(at: i), in: line) else { return "" }
                        return String(line[r])
                    }
                    return (next, groups)
                }
                next += 1
            }
            if eof || Date() >= deadline { return nil }
            condition.unlock()
            let stop = giveUp()
            condition.lock()
            if stop && next >= lines.count { return nil }
            _ = condition.wait(until: min(deadline, Date().addingTimeInterval(0.05)))
        }
    }
}

/// A child process started by a test. Any thread.
final class ChildProcess: @unchecked Sendable {
    let name: String
    let executable: String
    let arguments: [String]
    let pid: pid_t
    let stderr = LineBuffer()
    let stdout = LineBuffer()
    private let lock = NSLock()
    private var termination: Termination?

    struct LaunchError: Error, CustomStringConvertible {
        let description: String
    }

    /// Starts `executable` with `arguments`. The environment is this process's, minus
    /// `PORT` and `SERVER_ID` (so the tests' own environment cannot leak into the
    /// binaries), with `environment` applied on top (nil value = unset). `passing` descriptors
    /// become the child's 3, 4, … (socket activation's LISTEN_FDS layout). With
    /// `ownProcessGroup` the child leads a process group of its own (its pgid is its pid).
    init(
        name: String, executable: String, arguments: [String],
        environment: [String: String?] = [:], passing descriptors: [Int32] = [],
        ownProcessGroup: Bool = false
    ) throws {
        self.name = name
        self.executable = executable
        self.arguments = arguments

        guard access(executable, X_OK) == 0 else {
            throw LaunchError(description: "\(name): no executable at \(executable)")
        }

        var env = ProcessInfo.processInfo.environment
        env["PORT"] = nil
        env["SERVER_ID"] = nil
        for (key, value) in environment { env[key] = value }

        var errPipe: [Int32] = [-1, -1]
        var outPipe: [Int32] = [-1, -1]
        // Close-on-exec, so later children do not inherit these pipes (every child is forked by
        // SpawnThread, which closes all but the child's own descriptors anyway).
        guard pipe(&errPipe) == 0, pipe(&outPipe) == 0 else {
            throw LaunchError(description: "pipe failed: \(String(cString: strerror(errno)))")
        }
        for fd in errPipe + outPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        let devNull = open("/dev/null", O_RDONLY | O_CLOEXEC)
        guard devNull >= 0 else {
            let why = String(cString: strerror(errno))
            (errPipe + outPipe).forEach { _ = Glibc.close($0) }
            throw LaunchError(description: "open /dev/null: \(why)")
        }

        // Forked on the spawner thread with PR_SET_PDEATHSIG = SIGKILL: the child dies with this
        // test process, even when the process is SIGKILLed and no teardown runs.
        let (child, spawnErrno) = SpawnThread.shared.spawn(
            path: executable, argv: [executable] + arguments,
            envp: env.map { "\($0.key)=\($0.value)" },
            descriptors: [devNull, outPipe[1], errPipe[1]] + descriptors, newGroup: ownProcessGroup)
        Glibc.close(devNull)
        Glibc.close(errPipe[1])
        Glibc.close(outPipe[1])
        guard child > 0 else {
            Glibc.close(errPipe[0])
            Glibc.close(outPipe[0])
            throw LaunchError(description: "spawn \(executable): \(String(cString: strerror(spawnErrno)))")
        }
        pid = child
        Self.startReader(fd: errPipe[0], into: stderr, label: "\(name)[\(child)] stderr")
        Self.startReader(fd: outPipe[0], into: stdout, label: "\(name)[\(child)] stdout")
    }

    /// Drains `fd` on its own thread until EOF or `requestStop()`; owns and closes `fd`.
    /// With DSLB_ITEST_VERBOSE=1 the lines are echoed to the test's stderr.
    private static func startReader(fd: Int32, into buffer: LineBuffer, label: String) {
        let verbose = ProcessInfo.processInfo.environment["DSLB_ITEST_VERBOSE"] == "1"
        let thread = Thread {
            var chunk = [UInt8](repeating: 0, count: 8192)
            while !buffer.shouldStop {
                var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let ready = poll(&pfd, 1, 100)
                if ready < 0 && errno != EINTR { break }
                if ready <= 0 { continue }
                let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n > 0 {
                    buffer.append(chunk[0..<n])
                    if verbose {
                        let text = String(decoding: chunk[0..<n], as: UTF8.self)
                        FileHandle.standardError.write(
                            Data(
                                text.split(separator: "\n", omittingEmptySubsequences: false)
                                    .dropLast(text.hasSuffix("\n") ? 1 : 0)
                                    .map { "[\(label)] \($0)\n" }.joined().utf8))
                    }
                } else if n == 0 || (errno != EINTR && errno != EAGAIN) {
                    break
                }
            }
            buffer.markEOF()
            Glibc.close(fd)
        }
        thread.name = label
        thread.start()
    }

    // MARK: State

    /// Reaps the child if it has ended (waitpid WNOHANG). Any thread.
    func pollTermination() -> Termination? {
        lock.lock()
        defer { lock.unlock() }
        if let termination { return termination }
        var status: Int32 = 0
        let rc = waitpid(pid, &status, WNOHANG)
        if rc == pid {
            termination = Termination(waitStatus: status)
        } else if rc < 0 && errno == ECHILD {
            // Someone else reaped it; we cannot know how it ended.
            termination = .exited(-1)
        }
        return termination
    }

    var isRunning: Bool { pollTermination() == nil }

    /// Waits up to `timeout` seconds for the child to end, then (up to 5 s more) for its
    /// reader threads to drain what it wrote: the exit can be seen before the last line of its
    /// output is read, and callers read that output next.
    func waitForExit(timeout: TimeInterval) -> Termination? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let t = pollTermination() {
                let drained = Date().addingTimeInterval(5)
                stdout.waitForEOF(deadline: drained)
                stderr.waitForEOF(deadline: drained)
                return t
            }
            if Date() >= deadline { return nil }
            usleep(10_000)
        }
    }

    /// Sends `signal` to this PID (only while it is still our unreaped child, so the PID
    /// cannot have been reused).
    @discardableResult
    func send(signal: Int32) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard termination == nil else { return false }
        return kill(pid, signal) == 0
    }

    /// SIGKILL and reap. Idempotent.
    func forceStop() {
        if pollTermination() == nil {
            send(signal: SIGKILL)
            _ = waitForExit(timeout: 5)
        }
    }

    /// Stops the output readers (after the process is gone; grandchildren may keep the
    /// pipes open).
    func stopReaders() {
        stderr.requestStop()
        stdout.requestStop()
    }

    // MARK: Output

    /// Waits for a stderr line matching `pattern` (and `accept`, given the capture groups;
    /// lines it rejects are skipped); returns its capture groups (0 = the whole match).
    /// Throws with the captured output when the time runs out or the process exits.
    @discardableResult
    func waitForStderrLine(
        matching pattern: String, timeout: TimeInterval,
        accept: ([String]) -> Bool = { _ in true }
    ) throws -> [String] {
        let regex = try NSRegularExpression(pattern: pattern)
        let deadline = Date().addingTimeInterval(timeout)
        var exitedAt: Date?
        var from = 0
        while true {
            let found = stderr.waitForLine(matching: regex, from: from, deadline: deadline) {
                // After the process ends its last lines are still in the pipe: the wait ends at
                // EOF, once they are read. Replicas that inherited the pipe may keep it open
                // for a while; only then give up, 5 s after the exit.
                if self.pollTermination() != nil {
                    if exitedAt == nil { exitedAt = Date() }
                    return Date().timeIntervalSince(exitedAt!) > 5
                }
                return false
            }
            guard let found else { break }
            if accept(found.groups) { return found.groups }
            from = found.index + 1
        }
        let ended = stderr.isEOF ? waitForExit(timeout: 1) : pollTermination()
        let why =
            ended.map { "the process \($0)" }
            ?? (stderr.isEOF ? "its stderr was closed" : "\(timeout)s passed")
        throw LaunchError(
            description: """
                \(name) (pid \(pid)): no stderr line matching /\(pattern)/ before \(why).
                command: \(([executable] + arguments).joined(separator: " "))
                \(outputTail())
                """)
    }

    /// The last lines of both streams, for failure messages.
    func outputTail(_ count: Int = 40) -> String {
        let err = stderr.allLines.suffix(count).map { "  | \($0)" }.joined(separator: "\n")
        let out = stdout.allLines.suffix(count).map { "  | \($0)" }.joined(separator: "\n")
        return "--- \(name) stderr (last \(count) lines):\n\(err)\n--- \(name) stdout:\n\(out)"
    }
}
