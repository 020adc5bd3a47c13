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
    /// The connection's number for system calls; the descriptor is the loop's (registered by
    /// the pool), closed by `close()`.
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
    /// Strong, not weak: a weak reference gives the owner (the exchange, reused for every request
    /// of its client) a side table, and then every retain and release of it takes the runtime's
    /// slow path, several times per request. The cycle
    /// this makes while a request runs ends where the connection leaves its owner: `close`, the
    /// pool's `give`, or a new owner (a tunnel); an owner never ends without one of them.
    var owner: UpstreamOwner?
    /// The pool's sweep count when the connection went idle (see `UpstreamPool.sweep`).
    fileprivate var idleSince: UInt64 = 0
    private unowned let pool: UpstreamPool
    /// The pool's idle list for `backend`, where `give` puts it back; nil (never pooled) when the
    /// replica was not in the pool's snapshot when the connection was opened.
    fileprivate let home: UpstreamPool.IdleList?
    private(set) var closed = false

    fileprivate init(fd: Int32, backend: Backend, connected: Bool, pool: UpstreamPool, home: UpstreamPool.IdleList?) {
        self.fd = fd
        self.backend = backend
        self.connected = connected
        self.mayWrite = connected
        self.pool = pool
        self.home = home
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
        } else if events.contains(.readable) || events.contains(.readHangup) || events.contains(.hangup)
            || events.contains(.error)
        {
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
        pool.loop.close(fd, of: self)
    }
}

/// Per-worker idle keep-alive connections, one list per replica (`Backend` value: name, number,
/// host and port). Loop thread only.
///
/// Lists are found by the replica's index in the snapshot the request was routed with, not by
/// hashing its address: `follow` lines them up with each new snapshot's `backends` once per
/// switch, keeping the list of every replica still present (equal `Backend`) and retiring the
/// others, so a replica re-added under the same name on another port gets a new, empty list. A
/// connection remembers its list; a retired list takes nothing back.
///
/// Idle connections do not last: a sweep every `sweepPeriod` closes those idle for the idle
/// timeout, and a replica that goes DOWN loses its idle ones at the switch that says so (a
/// replica at its descriptor limit must not have its last ones held by us; heartbeats need
/// them). The hot path only stamps a counter on `give`: no clock read, no timer per connection.
final class UpstreamPool: TimerTarget {
    unowned let loop: EventLoop
    /// Taking and giving mutate the array in place, through the one reference.
    fileprivate final class IdleList {
        let backend: Backend
        var connections: [UpstreamConnection] = []
        /// Its replica left the snapshot: connections coming back close instead.
        var retired = false
        /// Its replica is DOWN in the snapshot followed: nothing is kept for it.
        var down = false

        init(_ backend: Backend) { self.backend = backend }
    }
    /// The snapshot `lists` is indexed like, and the same lists by replica (for `follow`, and for
    /// an exchange still routed with an older snapshot).
    private var snapshot: Snapshot?
    private var lists: [IdleList] = []
    private var byBackend: [Backend: IdleList] = [:]
    private let maxIdlePerBackend: Int
    /// The worker's buffer pool, shared with its client connections.
    let buffers: BufferPool
    /// Sweeps so far, and how many sweeps a connection must stay idle through to be closed.
    private(set) var sweeps: UInt64 = 0
    private let sweepsToExpire: UInt64
    let sweepPeriod: UInt64
    private var sweepTimer: TimerID?

    /// `maxIdlePerBackend` is this worker's share of `--upstream-max-idle`; idle connections
    /// are closed between `idleTimeout` and 1.25 × `idleTimeout` (less for timeouts over 20 s:
    /// the sweep runs at least every 5 s) after they were last used.
    init(loop: EventLoop, maxIdlePerBackend: Int, idleTimeout: UInt64 = 30_000_000_000, buffers: BufferPool) {
        self.loop = loop
        self.maxIdlePerBackend = maxIdlePerBackend
        self.buffers = buffers
        sweepPeriod = max(1_000_000, min(idleTimeout / 4, 5_000_000_000))
        // A connection given back between sweeps k and k+1 has been idle for more than
        // (n - 1) periods at sweep k + n: n - 1 periods must cover the timeout.
        sweepsToExpire = (idleTimeout + sweepPeriod - 1) / sweepPeriod + 1
    }

    /// Sweeps every `sweepPeriod` from now on, until `closeAll`.
    func startSweeping() {
        assert(loop.isInLoop)
        guard sweepTimer == nil else { return }
        sweepTimer = loop.schedule(afterNanoseconds: sweepPeriod, target: self)
    }

    func timerFired(_ tag: Int) {
        sweep()
        sweepTimer = loop.schedule(afterNanoseconds: sweepPeriod, target: self)
    }

    /// Closes the connections idle for `sweepsToExpire` sweeps. `give` appends and `take` pops
    /// from the end, so each list is ordered by when its connections went idle: the expired
    /// ones are a prefix.
    func sweep() {
        sweeps += 1
        for list in byBackend.values where !list.connections.isEmpty {
            let expired = list.connections.prefix { sweeps - $0.idleSince >= sweepsToExpire }.count
            guard expired > 0 else { continue }
            for connection in list.connections[0..<expired] { connection.close() }
            list.connections.removeFirst(expired)
        }
    }

    /// Lines the lists up with `snapshot.backends`; idle connections to replicas no longer in it,
    /// or DOWN in it, are closed. Called by the worker whenever it switches snapshots.
    func follow(_ snapshot: Snapshot) {
        assert(loop.isInLoop)
        guard snapshot !== self.snapshot else { return }
        var next: [Backend: IdleList] = [:]
        next.reserveCapacity(snapshot.backends.count)
        lists = snapshot.backends.map { backend in
            let list = next[backend] ?? byBackend[backend] ?? IdleList(backend)
            next[backend] = list
            return list
        }
        for (index, list) in lists.enumerated() {
            list.down = !snapshot.healthy[index]
            if list.down {
                list.connections.forEach { $0.close() }
                list.connections = []
            }
        }
        for (backend, list) in byBackend where next[backend] == nil {
            list.retired = true
            list.connections.forEach { $0.close() }
            list.connections = []
        }
        byBackend = next
        self.snapshot = snapshot
    }

    /// The list for `snapshot.backends[index]`: an array read when `snapshot` is the one the pool
    /// follows (always, but for a request routed just before a switch).
    private func list(_ index: Int, in snapshot: Snapshot) -> IdleList? {
        if snapshot === self.snapshot { return lists[index] }
        return byBackend[snapshot.backends[index]]
    }

    /// An idle connection to `snapshot.backends[index]`, most recently used first (the warmest).
    func take(_ index: Int, in snapshot: Snapshot) -> UpstreamConnection? {
        assert(loop.isInLoop)
        guard let list = list(index, in: snapshot) else { return nil }
        while let connection = list.connections.popLast() {
            if connection.closed { continue }
            connection.reused = true
            return connection
        }
        return nil
    }

    /// Opens a new connection to `snapshot.backends[index]`.
    func connect(_ index: Int, in snapshot: Snapshot) throws -> UpstreamConnection {
        assert(loop.isInLoop)
        let backend = snapshot.backends[index]
        let address = try SocketAddress.parse(backend.address)
        let (raw, connected) = try Socket.connect(to: address)
        let fd = FileDescriptor(adopting: raw)
        let connection = UpstreamConnection(
            fd: fd.rawValue, backend: backend, connected: connected, pool: self,
            home: list(index, in: snapshot))
        // The loop owns the descriptor from here (it closes it if this fails).
        try loop.register(fd, handler: connection)
        return connection
    }

    /// Returns a connection whose exchange ended cleanly.
    func give(_ connection: UpstreamConnection) {
        assert(loop.isInLoop)
        connection.owner = nil
        // A FIN reported while the exchange still owned the connection (after its last read) raises
        // no further edge: pooled, the connection would look alive until a request met its reset.
        guard !connection.closed, connection.input.isEmpty, connection.output.isEmpty, !connection.peerClosed,
            !connection.peerHalfClosed, let list = connection.home, !list.retired, !list.down,
            list.connections.count < maxIdlePerBackend
        else {
            connection.close()
            return
        }
        connection.input.releaseStorageIfEmpty()
        connection.idleSince = sweeps
        list.connections.append(connection)
    }

    func discard(_ connection: UpstreamConnection) {
        assert(loop.isInLoop)
        connection.close()
        if let list = connection.home, let index = list.connections.firstIndex(where: { $0 === connection }) {
            list.connections.remove(at: index)
        }
    }

    func closeAll() {
        assert(loop.isInLoop)
        if let sweepTimer { loop.cancel(sweepTimer) }
        sweepTimer = nil
        for list in byBackend.values {
            list.connections.forEach { $0.close() }
            list.connections = []
        }
    }
}
