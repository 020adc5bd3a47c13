import DSBalancer
import DSReactor
import DSSystem

/// Whoever is using an upstream connection right now gets its events.
protocol UpstreamOwner: AnyObject {
    func upstreamEvent(_ upstream: UpstreamConnection, _ events: IOEvents)
}

/// A connection from a worker to one replica. Loop thread only. While a request uses it, its
/// events go to that client connection; while idle in the pool, any event means the replica
/// closed it (or sent bytes nobody asked for), so it is dropped before anyone reuses it.
final class UpstreamConnection: EventHandler {
    let fd: Int32
    let backend: Backend
    /// Response bytes; its storage comes from the worker's pool and goes back while the
    /// connection sits idle in the upstream pool.
    let input: ByteBuffer
    /// Request bytes the socket did not take yet (rare: only after a partial write).
    let output = ByteBuffer(capacity: 256)
    var connected: Bool
    /// Whether this connection came from the pool (a failure before any response byte then
    /// says "the replica closed an idle connection", not "the replica is down").
    var reused = false
    /// Edge-triggered readiness as last reported.
    var mayRead = true
    var mayWrite: Bool
    var peerClosed = false
    /// The replica's FIN has been reported (EPOLLRDHUP): reads go on until they return 0.
    private(set) var peerHalfClosed = false
    weak var owner: UpstreamOwner?
    private unowned let pool: UpstreamPool
    private(set) var closed = false

    init(fd: Int32, backend: Backend, connected: Bool, pool: UpstreamPool) {
        self.fd = fd
        self.backend = backend
        self.connected = connected
        self.mayWrite = connected
        self.pool = pool
        input = ByteBuffer(pool: pool.buffers)
    }

    func handle(_ events: IOEvents) {
        if events.contains(.readable) || events.contains(.readHangup) || events.contains(.hangup) || events.contains(.error) {
            mayRead = true
        }
        if events.contains(.readHangup) || events.contains(.hangup) { peerHalfClosed = true }
        if events.contains(.writable) { mayWrite = true }
        if let owner {
            owner.upstreamEvent(self, events)
        } else if events.contains(.readable) || events.contains(.readHangup) || events.contains(.hangup) || events.contains(.error) {
            pool.discard(self)
        }
    }

    /// Reads response bytes into `input`, keeping the readiness state: EAGAIN ends the edge, 0
    /// bytes or an error is the end of the replica's stream (`peerClosed`). After a short read
    /// the socket is empty and the next bytes raise a new edge, so `mayRead` drops without the
    /// read that would return EAGAIN (see `ByteBuffer.lastReadWasShort`); not once the
    /// replica's FIN was reported.
    func read() throws -> IOResult<Int> {
        let result = try noting { try input.read(from: fd) }
        if case .done(let n) = result, n > 0, input.lastReadWasShort, !peerHalfClosed { mayRead = false }
        return result
    }

    /// Like `read`, but moves up to `limit` bytes into `pipe` (a body being spliced).
    func read(into pipe: SplicePipe, limit: Int) throws -> IOResult<Int> {
        try noting { try pipe.fill(from: fd, limit: limit) }
    }

    /// What one read says about the socket, for both kinds of read. (The closure does not
    /// escape: nothing is allocated per read.)
    @inline(__always)
    private func noting(_ read: () throws -> IOResult<Int>) throws -> IOResult<Int> {
        do {
            let result = try read()
            switch result {
            case .wouldBlock: mayRead = false
            case .done(0): peerClosed = true; mayRead = false
            case .done: break
            }
            return result
        } catch {
            peerClosed = true
            throw error
        }
    }

    func close() {
        guard !closed else { return }
        closed = true
        owner = nil
        pool.loop.unregister(fd)
        Socket.close(fd)
    }
}

/// Per-worker idle keep-alive connections, per replica address. Loop thread only.
final class UpstreamPool {
    unowned let loop: EventLoop
    /// Per address, a list object: taking and giving mutate its array in place, where an array
    /// stored in the dictionary itself would be copied by the dictionary's modify accessor.
    private final class IdleList {
        var connections: [UpstreamConnection] = []
    }
    private var idle: [String: IdleList] = [:]
    private let maxIdlePerBackend: Int
    /// The worker's buffer pool, shared with its client connections.
    let buffers: BufferPool

    init(loop: EventLoop, maxIdlePerBackend: Int, buffers: BufferPool) {
        self.loop = loop
        self.maxIdlePerBackend = maxIdlePerBackend
        self.buffers = buffers
    }

    /// An idle connection to `backend`, most recently used first (the warmest one).
    func take(_ backend: Backend) -> UpstreamConnection? {
        guard let list = idle[backend.address] else { return nil }
        while let connection = list.connections.popLast() {
            if connection.closed { continue }
            if connection.backend != backend {
                // Same address, different replica (renamed or restarted elsewhere): never mix them.
                connection.close()
                continue
            }
            connection.reused = true
            return connection
        }
        return nil
    }

    /// Opens a new connection to `backend`.
    func connect(_ backend: Backend) throws -> UpstreamConnection {
        let address = try SocketAddress.parse(backend.address)
        let (fd, connected) = try Socket.connect(to: address)
        let connection = UpstreamConnection(fd: fd, backend: backend, connected: connected, pool: self)
        do {
            try loop.register(fd, handler: connection)
        } catch {
            Socket.close(fd)
            throw error
        }
        return connection
    }

    /// Returns a connection whose exchange ended cleanly.
    func give(_ connection: UpstreamConnection) {
        connection.owner = nil
        // A FIN reported while the exchange still owned the connection (after its last read) raises
        // no further edge: pooled, the connection would look alive until a request met its reset.
        guard !connection.closed, connection.input.isEmpty, connection.output.isEmpty, !connection.peerClosed,
              !connection.peerHalfClosed else {
            connection.close()
            return
        }
        let key = connection.backend.address
        let list: IdleList
        if let existing = idle[key] {
            list = existing
        } else {
            list = IdleList()
            idle[key] = list
        }
        if list.connections.count >= maxIdlePerBackend {
            connection.close()
            return
        }
        connection.input.releaseStorageIfEmpty()
        list.connections.append(connection)
    }

    func discard(_ connection: UpstreamConnection) {
        connection.close()
        if let list = idle[connection.backend.address], let index = list.connections.firstIndex(where: { $0 === connection }) {
            list.connections.remove(at: index)
        }
    }

    /// Drops idle connections to replicas no longer in the snapshot.
    func retain(only backends: [Backend]) {
        let live = Set(backends)
        for (key, list) in idle {
            let (keep, drop) = (list.connections.filter { live.contains($0.backend) },
                                list.connections.filter { !live.contains($0.backend) })
            drop.forEach { $0.close() }
            list.connections = keep
            if keep.isEmpty { idle[key] = nil }
        }
    }

    func closeAll() {
        for list in idle.values { list.connections.forEach { $0.close() } }
        idle.removeAll()
    }
}
