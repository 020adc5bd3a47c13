import DSSystem
import Dispatch
import Glibc
import XCTest

@testable import DSReactor

final class ListenerTests: XCTestCase {
    struct Accepted { let fd: Int32; let peer: SocketAddress? }

    func testAcceptsConnectionsOnEphemeralPort() throws {
        let h = try LoopHarness()
        defer { XCTAssertTrue(h.stop()) }
        let listenFD = try Socket.listen(on: try SocketAddress.parse("127.0.0.1:0"))
        defer { Socket.close(listenFD) }
        let bound = try Socket.localAddress(listenFD)
        XCTAssertTrue(bound.isLoopback)
        XCTAssertNotEqual(bound.port, 0)
        XCTAssertTrue(Socket.isListeningStream(listenFD))

        let accepted = Locked<[Accepted]>([])
        let listener = Locked<Listener?>(nil)
        try h.sync {
            let l = try Listener(fd: listenFD, loop: h.loop) { fd, peer in
                let raw = fd.release()
                accepted.withLock { $0.append(Accepted(fd: raw, peer: peer)) }
            }
            listener.withLock { $0 = l }
        }
        var clients: [Int32] = []
        defer {
            for fd in clients { Socket.close(fd) }
            for a in accepted.get { Socket.close(a.fd) }
        }

        // One connection: the accepted socket's peer is the client's local address.
        let (client, _) = try Socket.connect(to: bound)
        clients.append(client)
        XCTAssertTrue(waitUntil { accepted.get.count == 1 }, "no connection accepted")
        let first = accepted.get[0]
        XCTAssertEqual(first.peer, try Socket.localAddress(client))
        XCTAssertTrue(first.peer?.isLoopback ?? false)

        // The accepted descriptor carries data both ways.
        XCTAssertTrue(waitUntil { Socket.connectResult(client) == 0 })
        writeAll(client, Array("hello".utf8))
        XCTAssertEqual(readAvailable(first.fd, count: 5), Array("hello".utf8))
        writeAll(first.fd, Array("world".utf8))
        XCTAssertEqual(readAvailable(client, count: 5), Array("world".utf8))

        // A burst: one edge, the handler accepts until the queue is empty.
        for _ in 0..<8 { clients.append(try Socket.connect(to: bound).fd) }
        XCTAssertTrue(waitUntil { accepted.get.count == 9 }, "accepted \(accepted.get.count) of 9")
        XCTAssertEqual(Set(accepted.get.map(\.fd)).count, 9)
        let peers = Set(accepted.get.compactMap { $0.peer })
        let locals = Set(try clients.map { try Socket.localAddress($0) })
        XCTAssertEqual(peers, locals)

        // Stopped: connections queue in the kernel but are not accepted.
        try h.sync {
            listener.withLock {
                $0?.stop(); $0?.stop()
            }
        }
        clients.append(try Socket.connect(to: bound).fd)
        usleep(100_000)
        try h.sync {}
        XCTAssertEqual(accepted.get.count, 9)
        try h.sync { listener.withLock { $0 = nil } }
    }

    func testListenAddressParsing() throws {
        XCTAssertEqual(try SocketAddress.parse("127.0.0.1:0"), .v4(ip: 0x7F00_0001, port: 0))
        XCTAssertEqual(try SocketAddress.parse("localhost:5000").description, "127.0.0.1:5000")
        XCTAssertThrowsError(try SocketAddress.parse("127.0.0.1:99999"))
    }
}

final class SignalWatcherTests: XCTestCase {
    /// SIGWINCH is ignored by default, so even if blocking failed nothing would die. It is raised
    /// on the loop thread (where the watcher blocked it), so only the signalfd sees it.
    func testSignalArrivesAsLoopEvent() throws {
        let h = try LoopHarness(name: "signal-loop")
        defer { XCTAssertTrue(h.stop()) }
        let seen = Locked<[Int32]>([])
        let watcher = Locked<SignalWatcher?>(nil)
        try h.sync {
            let w = try SignalWatcher(signals: [SIGWINCH], loop: h.loop) { signal in seen.withLock { $0.append(signal) } }
            watcher.withLock { $0 = w }
        }
        try h.sync { _ = raise(SIGWINCH) }
        XCTAssertTrue(waitUntil { seen.get == [SIGWINCH] }, "signal not delivered through the loop: \(seen.get)")
        try h.sync { _ = raise(SIGWINCH) }
        XCTAssertTrue(waitUntil { seen.get == [SIGWINCH, SIGWINCH] })
        try h.sync { watcher.withLock { $0 = nil } }
    }
}
