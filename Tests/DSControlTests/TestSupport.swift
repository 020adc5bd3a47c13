import DSBalancer
import DSHTTP1
import DSReactor
import DSSystem
import DSTestSupport
import Foundation
import Logging
import XCTest

@testable import DSControl

#if canImport(Glibc)
import Glibc
#endif

/// Runs `loop` on a thread of its own and returns what stops it: `stop()` only asks the loop to
/// return, and the supervisor's timers hold it unowned (in ds-lb it lives as long as its loop),
/// so the returned closure waits until the loop thread has returned and keeps `supervisor`
/// alive until then.
func startControlLoop(
    _ loop: EventLoop, keeping supervisor: Supervisor,
    file: StaticString = #filePath, line: UInt = #line
) -> () -> Void {
    let exited = DispatchSemaphore(value: 0)
    LoopThread.start(name: "test-control") {
        loop.run(); exited.signal()
    }
    return {
        loop.stop()
        XCTAssertEqual(exited.wait(timeout: .now() + 10), .success, "the control loop did not stop", file: file, line: line)
        withExtendedLifetime(supervisor) {}
    }
}

enum DSBalancerBackend {
    static func make(_ name: String, _ number: Int) -> Backend {
        Backend(name: name, number: number, host: "127.0.0.1", port: UInt16(20000 + number))
    }

    /// A replica launched where nothing listens (port 0).
    static func port0(_ name: String, _ number: Int) -> Backend {
        Backend(name: name, number: number, host: "127.0.0.1", port: 0)
    }
}

extension XCTestCase {
    /// A pool store every save to fails, also as root: its directory's parent is a regular file.
    func unwritablePoolStore() throws -> FileStore {
        let file = NSTemporaryDirectory() + "/ds-lb-not-a-directory-\(getpid())-\(UUID().uuidString)"
        XCTAssertTrue(FileManager.default.createFile(atPath: file, contents: Data("x".utf8)))
        addTeardownBlock { try? FileManager.default.removeItem(atPath: file) }
        return FileStore(file: StateStore(directory: file + "/state"), driver: "test")
    }
}

/// A replica as far as heartbeats go: answers every connection with 200 on a thread of its
/// own. After `gate()` it holds each connection it accepts until `release()`, for tests of a
/// probe that is still on its way. `stop()` ends it.
final class HeartbeatResponder: @unchecked Sendable {
    let fd: Int32
    let port: UInt16
    private let condition = NSCondition()
    private var gated = false
    private var heldCount = 0

    init() throws {
        fd = try Socket.listen(on: .v4(ip: 0x7f00_0001, port: 0), backlog: 16)
        port = try Socket.localAddress(fd).port
        Thread { [self] in serve() }.start()
    }

    var held: Int { condition.lock(); defer { condition.unlock() }; return heldCount }
    func gate() { condition.lock(); gated = true; condition.unlock() }
    func release() { condition.lock(); gated = false; condition.broadcast(); condition.unlock() }
    /// Releases what it holds and makes its thread return.
    func stop() { release(); shutdown(fd, Int32(SHUT_RDWR)) }

    private func serve() {
        while true {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 30_000) > 0 else { return }
            let client = accept(fd, nil, nil)
            guard client >= 0 else { return }
            var buffer = [UInt8](repeating: 0, count: 1024)
            _ = buffer.withUnsafeMutableBytes { read(client, $0.baseAddress, $0.count) }
            condition.lock()
            if gated {
                heldCount += 1
                while gated { condition.wait() }
            }
            condition.unlock()
            let answer = Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok".utf8)
            _ = answer.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            close(client)
        }
    }
}

/// A pool store another writer is ahead of: the pool is at `revision` before this ds-lb ever
/// wrote, so its first write loses the race. Answers like a remote store, on the loop after a
/// while, never inside `write`. Loop thread only, except `saved` and `writes`.
final class RacingPoolStore: PoolStore, @unchecked Sendable {
    let location = "the racing store"
    private let loop: EventLoop
    private let lock = NSLock()
    private var revision: UInt64
    private var replicas: [Backend] = []
    private var attempts = 0

    init(loop: EventLoop, revision: UInt64) {
        self.loop = loop
        self.revision = revision
    }

    var saved: StoredPool { lock.withLock { StoredPool(replicas: replicas, revision: revision) } }
    var writes: Int { lock.withLock { attempts } }

    func load() throws(PoolStoreError) -> StoredPool { saved }

    func write(_ replicas: [Backend], ifRevision: UInt64, completion: @escaping (Result<UInt64, PoolStoreError>) -> Void) {
        loop.schedule(after: .milliseconds(20)) { [self] in
            let result: Result<UInt64, PoolStoreError> = lock.withLock {
                attempts += 1
                guard ifRevision == revision else { return .failure(.conflict(expected: ifRevision, current: revision)) }
                revision += 1
                self.replicas = replicas
                return .success(revision)
            }
            completion(result)
        }
    }

    func watch(_ handler: @escaping (PoolStoreEvent) -> Void) {}
}

/// Runs `body` on `loop` (running on another thread) and waits for it.
func runOnLoop<T>(_ loop: EventLoop, _ body: @escaping () throws -> T) throws -> T {
    nonisolated(unsafe) var result: Result<T, any Error>?
    nonisolated(unsafe) let body = body
    let done = DispatchSemaphore(value: 0)
    loop.execute {
        result = Result { try body() }
        done.signal()
    }
    XCTAssertEqual(done.wait(timeout: .now() + 20), .success, "the control loop did not run the call")
    return try XCTUnwrap(result).get()
}

/// A control loop on a thread of its own for a driver under test: the driver is attached to it,
/// its calls run on it (`sync`), and the events it reports are kept.
final class DriverEventLoop: @unchecked Sendable {
    let loop: EventLoop
    private let lock = NSLock()
    private var received: [DriverEvent] = []
    private let exited = DispatchSemaphore(value: 0)
    private let driver: ReplicaDriver

    init(_ driver: ReplicaDriver) throws {
        loop = try EventLoop()
        self.driver = driver
        driver.attach(to: loop) { [self] event in lock.withLock { received.append(event) } }
        let loop = self.loop
        LoopThread.start(name: "test-control") { [exited] in
            loop.run(); exited.signal()
        }
    }

    var events: [DriverEvent] { lock.withLock { received } }

    /// Runs `body` on the loop and waits for it.
    func sync<T>(_ body: @escaping () throws -> T) throws -> T { try runOnLoop(loop, body) }

    /// Waits (up to `seconds`) until `condition` holds for the events reported so far.
    func waitFor(seconds: Double = 10, file: StaticString = #filePath, line: UInt = #line, _ condition: ([DriverEvent]) -> Bool) {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition(events) { return }
            Thread.sleep(forTimeInterval: 0.01)
        }
        XCTFail("gave up after \(seconds)s: events \(events)", file: file, line: line)
    }

    func stop() {
        loop.stop()
        XCTAssertEqual(exited.wait(timeout: .now() + 10), .success, "the control loop did not stop")
        withExtendedLifetime(driver) {}
    }
}

/// A fake driver whose replicas are not its to stop (a responder the test owns answers for
/// them): every stopping call does nothing and a replica has no details.
protocol NothingToStopDriver: ReplicaDriver {}

extension NothingToStopDriver {
    func stop(_ backend: Backend) {}
    func retire(_ backend: Backend) -> () -> Void { {} }
    func kill(_ backend: Backend) {}
    func details(of backend: Backend) -> [(String, JSONValue)] { [] }
    func stopAll() {}
}
