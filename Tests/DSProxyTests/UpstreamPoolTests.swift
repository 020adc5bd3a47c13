import DSBalancer
import DSReactor
import DSSystem
import XCTest

@testable import DSProxy

/// The upstream pool finds idle connections by the replica's index in the snapshot the request
/// was routed with. Across snapshot switches a connection must only ever be handed out for the
/// same replica (name, number, host and port): never for a replica re-added under the same name
/// elsewhere, and still after a switch that only moved its index or its health.
final class UpstreamPoolTests: XCTestCase {
    private var listeners: [Int32] = []

    override func tearDown() {
        listeners.forEach { Socket.close($0) }
        listeners = []
        super.tearDown()
    }

    /// A listening socket on 127.0.0.1 (the kernel completes connections to it; nobody accepts).
    private func listener() throws -> UInt16 {
        let fd = try Socket.listen(on: SocketAddress.parse("127.0.0.1:0"))
        listeners.append(fd)
        return try Socket.localAddress(fd).port
    }

    private func snapshot(_ generation: UInt64, _ members: [(String, Int, UInt16)], down: [String] = []) -> Snapshot {
        Snapshot(
            generation: generation,
            backends: members.map { Backend(name: $0.0, number: $0.1, host: "127.0.0.1", port: $0.2) },
            healthy: Dictionary(uniqueKeysWithValues: down.map { ($0, false) }), algorithm: .rendezvous)
    }

    private func index(of name: String, in snapshot: Snapshot) -> Int {
        snapshot.backends.firstIndex { $0.name == name }!
    }

    func testPooledConnectionsFollowTheReplicaNotItsNameOrIndex() throws {
        let (p1, p2, p3) = (try listener(), try listener(), try listener())
        let loop = try EventLoop()
        let pool = UpstreamPool(loop: loop, maxIdlePerBackend: 4, buffers: BufferPool())
        defer { pool.closeAll() }

        let a = snapshot(1, [("server-1", 1, p1), ("server-2", 2, p2)])
        pool.follow(a)
        let first = try pool.connect(index(of: "server-1", in: a), in: a)
        pool.give(first)
        XCTAssertTrue(pool.take(index(of: "server-1", in: a), in: a) === first)
        XCTAssertTrue(first.reused)
        XCTAssertNil(pool.take(index(of: "server-2", in: a), in: a), "server-2 got server-1's connection")
        pool.give(first)

        // Same replicas, one now down, and a new one sorting first: server-1 moves to index 1.
        let b = snapshot(2, [("server-0", 0, p3), ("server-1", 1, p1), ("server-2", 2, p2)], down: ["server-2"])
        pool.follow(b)
        XCTAssertEqual(index(of: "server-1", in: b), 1)
        XCTAssertNil(pool.take(0, in: b), "server-0 got server-1's connection")
        XCTAssertTrue(pool.take(1, in: b) === first, "the switch dropped a connection to a replica still there")
        XCTAssertFalse(first.closed)
        // An exchange routed with the older snapshot gives its connection back after the switch.
        pool.give(first)
        XCTAssertTrue(pool.take(index(of: "server-1", in: a), in: a) === first)
        pool.give(first)

        // server-1 re-added under the same name and number on another port.
        let c = snapshot(3, [("server-1", 1, p3), ("server-2", 2, p2)])
        pool.follow(c)
        XCTAssertTrue(first.closed, "an idle connection to a replica that left the snapshot stays open")
        XCTAssertNil(pool.take(index(of: "server-1", in: c), in: c), "the re-added replica got the old one's connection")
        XCTAssertNil(pool.take(index(of: "server-1", in: a), in: a))

        // A connection opened for the old replica by an exchange still on `a`: never pooled.
        let stale = try pool.connect(index(of: "server-1", in: a), in: a)
        pool.give(stale)
        XCTAssertTrue(stale.closed)
        XCTAssertNil(pool.take(index(of: "server-1", in: c), in: c))

        let fresh = try pool.connect(index(of: "server-1", in: c), in: c)
        XCTAssertEqual(fresh.backend.port, p3)
        pool.give(fresh)
        XCTAssertTrue(pool.take(index(of: "server-1", in: c), in: c) === fresh)

        // In use while its replica leaves: closed when it comes back, not pooled.
        pool.follow(snapshot(4, [("server-2", 2, p2)]))
        pool.give(fresh)
        XCTAssertTrue(fresh.closed)
    }

    private final class Owner: UpstreamOwner {
        func upstreamEvent(_ upstream: UpstreamConnection, _ events: IOEvents) {}
    }

    /// `owner` is a strong reference (a weak one slows every retain of the exchange): giving the
    /// connection back, or closing it, must let go of the owner, or exchanges would leak.
    func testGiveAndCloseLetGoOfTheOwner() throws {
        let port = try listener()
        let loop = try EventLoop()
        let pool = UpstreamPool(loop: loop, maxIdlePerBackend: 1, buffers: BufferPool())
        defer { pool.closeAll() }
        let s = snapshot(1, [("server-1", 1, port)])
        pool.follow(s)
        let pooled = try pool.connect(0, in: s)
        let closed = try pool.connect(0, in: s)
        let overflow = try pool.connect(0, in: s)
        weak var first: Owner?
        weak var second: Owner?
        weak var third: Owner?
        do {
            let owners = (Owner(), Owner(), Owner())
            (first, second, third) = owners
            pooled.owner = owners.0
            closed.owner = owners.1
            overflow.owner = owners.2
        }
        XCTAssertNotNil(first, "the connection does not hold its owner")
        pool.give(pooled)
        closed.close()
        pool.give(overflow) // over maxIdlePerBackend: closed instead
        XCTAssertTrue(overflow.closed)
        XCTAssertNil(first, "a connection given back to the pool keeps its owner alive")
        XCTAssertNil(second, "a closed connection keeps its owner alive")
        XCTAssertNil(third, "a connection closed by give keeps its owner alive")
    }

    func testAtMostMaxIdlePerReplicaAreKept() throws {
        let port = try listener()
        let loop = try EventLoop()
        let pool = UpstreamPool(loop: loop, maxIdlePerBackend: 2, buffers: BufferPool())
        defer { pool.closeAll() }
        let s = snapshot(1, [("server-1", 1, port)])
        pool.follow(s)
        let connections = try (0..<3).map { _ in try pool.connect(0, in: s) }
        connections.forEach { pool.give($0) }
        XCTAssertEqual(connections.map(\.closed), [false, false, true])
        XCTAssertTrue(pool.take(0, in: s) === connections[1])
        XCTAssertTrue(pool.take(0, in: s) === connections[0])
        XCTAssertNil(pool.take(0, in: s))
        connections.forEach { $0.close() }
    }
}

/// Idle connections expire by sweeps (no clock read per request) and are dropped for a replica
/// that is DOWN.
final class UpstreamPoolExpiryTests: XCTestCase {
    func testSweepsCloseConnectionsIdleForTheTimeout() throws {
        let listenFD = try Socket.listen(on: SocketAddress.parse("127.0.0.1:0"))
        defer { Socket.close(listenFD) }
        let port = try Socket.localAddress(listenFD).port
        let loop = try EventLoop()
        // 400 ms: a sweep every 100 ms, a connection closes at the 5th sweep after it went idle.
        let pool = UpstreamPool(loop: loop, maxIdlePerBackend: 4, idleTimeout: 400_000_000, buffers: BufferPool())
        defer { pool.closeAll() }
        XCTAssertEqual(pool.sweepPeriod, 100_000_000)
        let snapshot = Snapshot(
            generation: 1, backends: [Backend(name: "s", number: 1, host: "127.0.0.1", port: port)],
            algorithm: .rendezvous)
        pool.follow(snapshot)
        let older = try pool.connect(0, in: snapshot)
        pool.give(older)
        pool.sweep()
        pool.sweep()
        let newer = try pool.connect(0, in: snapshot)
        pool.give(newer)
        pool.sweep()
        pool.sweep()
        XCTAssertFalse(older.closed, "closed 4 sweeps after it went idle: maybe before the timeout")
        pool.sweep()
        XCTAssertTrue(older.closed, "still open 5 sweeps after it went idle")
        XCTAssertFalse(newer.closed)
        XCTAssertTrue(pool.take(0, in: snapshot) === newer)
        // Taken and given back: idle from now.
        pool.give(newer)
        for _ in 0..<4 { pool.sweep() }
        XCTAssertFalse(newer.closed)
        pool.sweep()
        XCTAssertTrue(newer.closed)
        XCTAssertNil(pool.take(0, in: snapshot))
    }

    func testADownReplicaKeepsNoIdleConnections() throws {
        let listenFD = try Socket.listen(on: SocketAddress.parse("127.0.0.1:0"))
        defer { Socket.close(listenFD) }
        let port = try Socket.localAddress(listenFD).port
        let loop = try EventLoop()
        let pool = UpstreamPool(loop: loop, maxIdlePerBackend: 4, buffers: BufferPool())
        defer { pool.closeAll() }
        let backend = Backend(name: "s", number: 1, host: "127.0.0.1", port: port)
        let up = Snapshot(generation: 1, backends: [backend], algorithm: .rendezvous)
        let down = Snapshot(generation: 2, backends: [backend], healthy: ["s": false], algorithm: .rendezvous)
        pool.follow(up)
        let idle = try pool.connect(0, in: up)
        let busy = try pool.connect(0, in: up)
        pool.give(idle)
        pool.follow(down)
        XCTAssertTrue(idle.closed, "an idle connection to a DOWN replica was kept")
        // One in use when the replica went DOWN is not kept either when it comes back.
        pool.give(busy)
        XCTAssertTrue(busy.closed)
        pool.follow(Snapshot(generation: 3, backends: [backend], algorithm: .rendezvous))
        let again = try pool.connect(0, in: up)
        pool.give(again)
        XCTAssertFalse(again.closed, "back UP: connections are pooled again")
    }
}
