import DSBalancer
import DSProxy
import DSReactor
import DSSystem
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class WorkerStartTests: XCTestCase {
    /// An open regular file, already unlinked: epoll refuses it (EPERM).
    private static func regularFile() throws -> Int32 {
        var template = Array("/tmp/ds-lb-worker-start-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw SyscallError(errno: errno, function: "mkstemp") }
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        return fd
    }

    /// epoll refuses a regular file (EPERM), so a worker given one as its listening socket
    /// cannot watch it: the starter hears why, with the worker named, and nothing traps.
    func testAWorkerThatCannotWatchItsListeningSocketReportsItToTheStarter() throws {
        let file = try Self.regularFile()
        defer { close(file) }
        let publisher = SnapshotPublisher(initial: Snapshot(generation: 0, backends: [], algorithm: .rendezvous), workers: 4)
        let exited = Locked(false)

        XCTAssertThrowsError(
            try Worker.start(
                index: 3, listenFD: file, publisher: publisher,
                config: ProxyConfig(adminAllow: ProxyConfig.defaultAdminAllow()), admin: nil, metrics: ProxyMetrics(),
                onUnreachable: { _ in }, onExit: { exited.withLock { $0 = true } })
        ) { error in
            guard let error = error as? WorkerStartError else { return XCTFail("\(error) is not a WorkerStartError") }
            XCTAssertEqual(error.worker, 3)
            XCTAssertEqual((error.reason as? SyscallError)?.errno, EPERM, "\(error.reason)")
            XCTAssertTrue("\(error)".contains("worker 3"), "\(error)")
            XCTAssertTrue("\(error)".contains(String(cString: strerror(EPERM))), "\(error)")
        }
        // A worker that never served has no loop to stop: its exit hook is not for the starter.
        XCTAssertFalse(exited.withLock { $0 })
    }

    /// Workers launched together answer together: when some cannot watch their listening
    /// sockets, the first of them is named and the ones that could are stopped again (their
    /// exit hooks run), so the starter is left with no worker running.
    func testWhenSomeOfSeveralWorkersCannotStartTheOthersAreStoppedAgain() throws {
        let file = try Self.regularFile()
        defer { close(file) }
        let publisher = SnapshotPublisher(initial: Snapshot(generation: 0, backends: [], algorithm: .rendezvous), workers: 4)
        let exits = (0..<4).map { _ in DispatchSemaphore(value: 0) }
        // Workers 1 and 3 are given the file (epoll refuses it), 0 and 2 no socket at all.
        let launches = try (0..<4).map { index in
            Worker.launch(
                on: try EventLoop(), index: index, listenFD: index % 2 == 1 ? file : nil, publisher: publisher,
                config: ProxyConfig(adminAllow: ProxyConfig.defaultAdminAllow()), admin: nil, metrics: ProxyMetrics(),
                onUnreachable: { _ in }, onExit: { exits[index].signal() })
        }

        XCTAssertThrowsError(try Worker.waitForAll(launches)) { error in
            guard let error = error as? WorkerStartError else { return XCTFail("\(error) is not a WorkerStartError") }
            XCTAssertEqual(error.worker, 1, "not the first worker that failed")
            XCTAssertEqual((error.reason as? SyscallError)?.errno, EPERM, "\(error.reason)")
        }
        XCTAssertEqual(exits[0].wait(timeout: .now() + 20), .success, "worker 0 still runs")
        XCTAssertEqual(exits[2].wait(timeout: .now() + 20), .success, "worker 2 still runs")
        XCTAssertEqual(launches.map { $0.answer()?.worker }, [nil, 1, nil, 3])
        // The workers that never ran have no exit hook to run.
        XCTAssertEqual(exits[1].wait(timeout: .now()), .timedOut)
        XCTAssertEqual(exits[3].wait(timeout: .now()), .timedOut)
    }

    /// An ended worker's loop (its epoll and eventfd descriptors with it) is freed once its
    /// starter lets go of it: what the worker left with those that outlive it (the publisher's
    /// wake-ups, its listening socket's group, the drain) does not hold it, and a publish after
    /// that wakes nothing.
    func testAnEndedWorkersLoopIsFreedOnceItsStarterLetsGo() throws {
        let listenFD = try Socket.listen(on: try SocketAddress.parse("127.0.0.1:0"))
        defer { Socket.close(listenFD) }
        let publisher = SnapshotPublisher(initial: Snapshot(generation: 0, backends: [], algorithm: .rendezvous), workers: 1)
        var config = ProxyConfig(adminAllow: ProxyConfig.defaultAdminAllow())
        config.drain = GracefulDrain()
        let exited = DispatchSemaphore(value: 0)
        weak var ended: EventLoop?
        do {
            let loop = try Worker.start(
                index: 0, listenFD: listenFD, publisher: publisher, config: config, admin: nil, metrics: ProxyMetrics(),
                onUnreachable: { _ in }, onExit: { exited.signal() })
            ended = loop
            loop.stop()
        }
        XCTAssertEqual(exited.wait(timeout: .now() + 20), .success, "the worker's loop did not end")
        // The worker's thread lets go of the loop as it ends, just after `onExit`.
        let deadline = DispatchTime.now() + 20
        while ended != nil && DispatchTime.now() < deadline { usleep(1_000) }
        XCTAssertNil(ended, "the ended worker's loop is still held")
        publisher.publish(Snapshot(generation: 1, backends: [], algorithm: .rendezvous))
    }

    /// The same once the worker has proxied a request on a connection still open when it stops:
    /// the connection's exchange (which holds the worker, and whose deadline timer the loop
    /// holds) is let go of with the worker's shelf, so neither keeps the worker and its loop.
    func testAWorkerThatProxiedARequestFreesItsLoopWhenItEnds() throws {
        let replicaFD = try Socket.listen(on: try SocketAddress.parse("127.0.0.1:0"))
        defer { Socket.close(replicaFD) }
        let listenFD = try Socket.listen(on: try SocketAddress.parse("127.0.0.1:0"))
        defer { Socket.close(listenFD) }
        let backend = Backend(name: "r1", number: 1, host: "127.0.0.1", port: try Socket.localAddress(replicaFD).port)
        let publisher = SnapshotPublisher(
            initial: Snapshot(generation: 0, backends: [backend], algorithm: .rendezvous), workers: 1)
        let replicaDone = DispatchSemaphore(value: 0)
        let replicaServed = DispatchSemaphore(value: 0)
        // The replica answers one request and keeps its connection open until the test ends.
        DispatchQueue.global().async {
            var served: Int32 = -1
            defer {
                replicaDone.wait()
                if served >= 0 { Socket.close(served) }
            }
            guard Self.waitReadable(replicaFD), case .done(let accepted)? = try? Socket.accept(replicaFD) else { return }
            served = accepted.fd
            guard Self.readUntil(served, contains: "\r\n\r\n") != nil else { return }
            _ = Self.writeAll(served, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            replicaServed.signal()
        }
        defer { replicaDone.signal() }

        let exited = DispatchSemaphore(value: 0)
        weak var ended: EventLoop?
        let client: Int32
        do {
            let loop = try Worker.start(
                index: 0, listenFD: listenFD, publisher: publisher,
                config: ProxyConfig(adminAllow: ProxyConfig.defaultAdminAllow()), admin: nil, metrics: ProxyMetrics(),
                onUnreachable: { _ in }, onExit: { exited.signal() })
            ended = loop
            client = try Socket.connect(to: try Socket.localAddress(listenFD)).fd
            XCTAssertTrue(Self.writeAll(client, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n"))
            let response = Self.readUntil(client, contains: "ok")
            XCTAssertNotNil(response, "no proxied response")
            XCTAssertEqual(replicaServed.wait(timeout: .now() + 20), .success)
            loop.stop()
        }
        defer { Socket.close(client) }
        XCTAssertEqual(exited.wait(timeout: .now() + 20), .success, "the worker's loop did not end")
        let deadline = DispatchTime.now() + 20
        while ended != nil && DispatchTime.now() < deadline { usleep(1_000) }
        XCTAssertNil(ended, "the ended worker's loop is still held")
    }

    /// Waits until `fd` (non-blocking) has bytes or a connection to accept; false after 20 s.
    private static func waitReadable(_ fd: Int32) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, 20_000) == 1
    }

    /// Reads `fd` (non-blocking) until what came contains `text`; nil on EOF, error or 20 s
    /// without bytes.
    private static func readUntil(_ fd: Int32, contains text: String) -> String? {
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while !String(decoding: received, as: UTF8.self).contains(text) {
            guard waitReadable(fd) else { return nil }
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EAGAIN { continue }
            guard n > 0 else { return nil }
            received += chunk[0..<n]
        }
        return String(decoding: received, as: UTF8.self)
    }

    /// Writes all of `text` to `fd` (non-blocking; a few bytes to a fresh socket).
    private static func writeAll(_ fd: Int32, _ text: String) -> Bool {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            guard poll(&entry, 1, 20_000) == 1 else { return false }
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EAGAIN { continue }
            guard n > 0 else { return false }
            bytes = bytes.dropFirst(n)
        }
        return true
    }
}
