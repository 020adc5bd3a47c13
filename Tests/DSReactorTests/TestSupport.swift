import DSSystem
import Dispatch
import Glibc
import XCTest

@testable import DSReactor

/// CLOCK_MONOTONIC, the clock the loop's timers use.
func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// A value shared between the test thread and a loop thread: DSSystem's pthread-based `Locked`
/// (the sanitizer run sees through it; the standard library's futex `Mutex` it cannot).
extension Locked {
    var get: Value { withLock { $0 } }
}

struct TimedOut: Error, CustomStringConvertible {
    let what: String
    var description: String { "timed out waiting for \(what)" }
}

/// Polls `condition` every millisecond until it holds or `seconds` pass. Never hangs.
func waitUntil(_ seconds: Double = 5, _ condition: () -> Bool) -> Bool {
    let deadline = monotonicNanos() + UInt64(seconds * 1e9)
    while !condition() {
        if monotonicNanos() > deadline { return false }
        usleep(1000)
    }
    return true
}

/// An EventLoop running on its own LoopThread, as a worker runs it. Every wait has a timeout.
final class LoopHarness: @unchecked Sendable {
    let loop: EventLoop
    private let exited = DispatchSemaphore(value: 0)
    private var stopped = false

    init(name: String = "test-loop") throws {
        let loop = try EventLoop()
        self.loop = loop
        let exited = self.exited
        LoopThread.start(name: name) {
            loop.run()
            exited.signal()
        }
    }

    /// Runs `body` on the loop thread and returns its result; throws `TimedOut` after `timeout`.
    @discardableResult
    func sync<T>(timeout: Double = 5, _ body: @escaping () throws -> T) throws -> T {
        let result = Locked<Result<T, any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let unchecked = UncheckedBox(body)
        loop.execute {
            let r = Result { try unchecked.value() }
            result.withLock { $0 = r }
            done.signal()
        }
        guard done.wait(timeout: .now() + timeout) == .success else { throw TimedOut(what: "a task on the loop") }
        return try result.withLock { $0! }.get()
    }

    /// Stops the loop and waits for `run` to return. False if it did not within `timeout`.
    @discardableResult
    func stop(timeout: Double = 5) -> Bool {
        guard !stopped else { return true }
        stopped = true
        loop.stop()
        return exited.wait(timeout: .now() + timeout) == .success
    }

    deinit { _ = stop() }
}

struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// A connected AF_UNIX stream pair (EPOLLRDHUP works on it), both ends non-blocking.
/// A regular file (already unlinked), which epoll refuses with EPERM.
func openRegularFile() throws -> Int32 {
    var template = Array("/tmp/ds-reactor-test-XXXXXX".utf8CString)
    let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
    guard fd >= 0 else { throw SyscallError(errno: errno, function: "mkstemp") }
    template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
    return fd
}

func socketPair() throws -> (Int32, Int32) {
    var fds: [Int32] = [-1, -1]
    guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else {
        throw SyscallError(errno: errno, function: "socketpair")
    }
    try Socket.setNonBlocking(fds[0])
    try Socket.setNonBlocking(fds[1])
    return (fds[0], fds[1])
}

func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
    var offset = 0
    let deadline = monotonicNanos() + 5_000_000_000
    while offset < bytes.count && monotonicNanos() < deadline {
        let n = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        if n > 0 { offset += n } else { usleep(1000) }
    }
}

/// Reads what is available on a non-blocking fd, waiting up to `seconds` for `count` bytes.
func readAvailable(_ fd: Int32, count: Int, seconds: Double = 5) -> [UInt8] {
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    _ = waitUntil(seconds) {
        let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        if n > 0 { out += chunk[0..<n] }
        return out.count >= count || n == 0
    }
    return out
}
