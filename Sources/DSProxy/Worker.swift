import DSBalancer
import DSHTTP1
import DSReactor
import DSSystem
import Dispatch

/// A worker that could not watch a listening socket (`Worker.start`, `Worker.waitForAll`): it never served.
package struct WorkerStartError: Error, CustomStringConvertible {
    package let worker: Int
    package let reason: any Error

    package var description: String { "worker \(worker) cannot watch its listening socket: \(reason)" }
}

/// One worker thread (docs/ARCHITECTURE.md §2): its own epoll loop, its client connections, its
/// upstream pool and its view of the snapshot. Everything here is loop thread only.
package final class Worker {
    package let loop: EventLoop
    let index: Int
    /// Replaced by a reload (`WorkerHandle.reconfigure`); read at each use, so the next request,
    /// timer or failover follows it. `limits`, `maxIdlePerBackend` and `upstreamIdleTimeout`
    /// are fixed at start.
    var config: ProxyConfig {
        didSet {
            pipeline.maxInProgress = config.pipelineSlots
            timeouts = Timeouts(config)
        }
    }
    /// `config`'s timeouts in nanoseconds, converted once per configuration: the request path
    /// adds them to the monotonic clock without a 128-bit `Duration` division per request.
    private(set) var timeouts: Timeouts

    struct Timeouts {
        let head: UInt64
        let idle: UInt64
        let body: UInt64
        let connect: UInt64
        let response: UInt64

        init(_ config: ProxyConfig) {
            head = nanoseconds(of: config.headTimeout)
            idle = nanoseconds(of: config.idleTimeout)
            body = nanoseconds(of: config.bodyTimeout)
            connect = nanoseconds(of: config.connectTimeout)
            response = nanoseconds(of: config.responseTimeout)
        }
    }
    let parser: HeadParser
    var reader: SnapshotPublisher.Reader
    let pool: UpstreamPool
    /// Read buffers for this worker's client connections, recycled between them.
    let bufferPool: BufferPool
    /// Pipelined requests, started after each iteration's I/O (`PipelineQueue`). Two in progress
    /// per worker by default (`--pipeline-slots`, 0: no queue): fewer slots keep other clients'
    /// fresh requests from waiting behind a flood of pipelined ones, more give a pipelining client
    /// more throughput; bench/RESULTS.md has the figures.
    let pipeline: PipelineQueue<ClientConnection>
    /// The iovec array every request head is gathered into for its writev.
    let iovecs = IOVecBuffer()
    /// Ended exchange objects between a connection's requests (`SpareExchanges`).
    var spareExchanges = SpareExchanges()

    /// Whether this worker has more client connections than its shelf of exchanges holds: then
    /// an idle connection puts its exchange on the shelf rather than keep it (with fewer, the
    /// spares the connections keep are no more than a full shelf would hold, and keeping them
    /// costs nothing per request).
    var crowded: Bool { connections.count > SpareExchanges.limit }
    /// Draws the `random` key source's request ids, seeded apart per worker.
    var keyRandom = RandomRequestIDs(seed: UInt64.random(in: .min ... .max))
    let admin: AdminHandler?
    private let onUnreachable: @Sendable (Backend) -> Void
    let metrics: ProxyMetrics
    /// This worker's own counters (it alone writes them; readers sum over the workers).
    let counters: ProxyMetrics.WorkerCounters
    /// Per replica, the shared handle and this worker's shard of it, so the hot path skips the
    /// shared lock and writes only its own memory.
    private var replicaMetrics: [String: (replica: ProxyMetrics.Replica, shard: ProxyMetrics.Shard)] = [:]
    /// The shards for `handlesSnapshot`, indexed like its `backends`, so a request hashes no
    /// name: rebuilt when the worker switches snapshots.
    private var handlesSnapshot: Snapshot?
    private var handles: [ProxyMetrics.Shard] = []
    /// The plain listener's side (nil: https only, `--listen none`).
    private var listener: BalancedListener?
    /// The TLS listener's side: accepting and handshakes in progress (`--tls-listen`).
    private var tlsAcceptor: TLSAcceptor?
    /// Each connection served, with the listener whose balance it counts in.
    private var connections: [ObjectIdentifier: (connection: ClientConnection, listener: BalancedListener)] = [:]
    /// Set by `drain`: no new connection, none kept open after its request (GracefulDrain).
    private(set) var draining = false
    private var drainSignal: (drain: GracefulDrain, id: Int)?

    init(
        index: Int, loop: EventLoop, publisher: SnapshotPublisher, config: ProxyConfig, admin: AdminHandler?,
        metrics: ProxyMetrics, onUnreachable: @escaping @Sendable (Backend) -> Void
    ) {
        self.metrics = metrics
        self.counters = metrics.makeWorkerCounters()
        self.index = index
        self.loop = loop
        self.config = config
        self.timeouts = Timeouts(config)
        self.pipeline = PipelineQueue(maxInProgress: config.pipelineSlots)
        self.parser = HeadParser(limits: config.limits)
        self.reader = SnapshotPublisher.Reader(publisher: publisher, worker: index)
        let buffers = BufferPool()
        self.bufferPool = buffers
        self.pool = UpstreamPool(
            loop: loop, maxIdlePerBackend: config.maxIdlePerBackend,
            idleTimeout: nanoseconds(of: config.upstreamIdleTimeout), buffers: buffers)
        self.admin = admin
        self.onUnreachable = onUnreachable
        pool.follow(reader.snapshot)
    }

    /// Starts worker `index` on its own thread, accepting on the shared `listenFD`, and returns
    /// once the worker watches its listening sockets: its loop (to stop it). When the worker
    /// cannot watch them it throws `WorkerStartError` after the worker let go of them again, and
    /// `onExit` never runs. Else `onExit` runs on the worker's thread once it has stopped and let
    /// go of `listenFD`: only then may the starter close it (the number could otherwise be
    /// reused under a worker still starting). `cpu`: the one CPU the thread may run on
    /// (`onPinFailure` hears when the kernel refuses; the worker then runs unpinned). Any thread.
    package static func start(
        index: Int, listenFD: Int32?, tlsListenFD: Int32? = nil, publisher: SnapshotPublisher, config: ProxyConfig,
        admin: AdminHandler?, metrics: ProxyMetrics,
        onUnreachable: @escaping @Sendable (Backend) -> Void,
        handle: WorkerHandle? = nil, cpu: Int? = nil, onPinFailure: (@Sendable (SyscallError) -> Void)? = nil,
        onExit: (@Sendable () -> Void)? = nil
    ) throws -> EventLoop {
        let launch = launch(
            on: try EventLoop(), index: index, listenFD: listenFD, tlsListenFD: tlsListenFD, publisher: publisher,
            config: config, admin: admin, metrics: metrics, onUnreachable: onUnreachable, handle: handle, cpu: cpu,
            onPinFailure: onPinFailure, onExit: onExit)
        if let failure = launch.answer() { throw failure }
        return launch.loop
    }

    /// A worker whose thread `launch` started: it answers once it watches its listening sockets,
    /// or once it knows it cannot and has let go of them again.
    package final class Launch: Sendable {
        package let loop: EventLoop
        private let answered = DispatchSemaphore(value: 0)
        private let failure = Locked<WorkerStartError?>(nil)

        fileprivate init(loop: EventLoop) { self.loop = loop }

        fileprivate func give(_ failure: WorkerStartError?) {
            self.failure.withLock { $0 = failure }
            answered.signal()
        }

        /// Waits for the worker's answer: nil once it watches its listening sockets, else why it
        /// cannot. Asked again, the same answer at once.
        package func answer() -> WorkerStartError? {
            answered.wait()
            answered.signal()
            return failure.withLock { $0 }
        }
    }

    /// `start` without the wait: the worker's thread runs on `loop` and sets up while the caller
    /// starts the others; `waitForAll` (or `Launch.answer`) hears how it went. Any thread.
    package static func launch(
        on loop: EventLoop, index: Int, listenFD: Int32?, tlsListenFD: Int32? = nil, publisher: SnapshotPublisher,
        config: ProxyConfig, admin: AdminHandler?, metrics: ProxyMetrics,
        onUnreachable: @escaping @Sendable (Backend) -> Void,
        handle: WorkerHandle? = nil, cpu: Int? = nil, onPinFailure: (@Sendable (SyscallError) -> Void)? = nil,
        onExit: (@Sendable () -> Void)? = nil
    ) -> Launch {
        handle?.loop = loop
        // The starter waits for the answer, so a server never reports ready with a worker that
        // does not accept.
        let launch = Launch(loop: loop)
        LoopThread.start(name: "ds-lb-w\(index)") {
            if let cpu {
                do throws(SyscallError) { try pinCurrentThread(to: cpu) } catch { onPinFailure?(error) }
            }
            let worker = Worker(
                index: index, loop: loop, publisher: publisher, config: config, admin: admin,
                metrics: metrics, onUnreachable: onUnreachable)
            handle?.worker = worker
            do {
                try worker.listen(on: listenFD, tls: tlsListenFD)
            } catch {
                // Lets go of the sockets it did watch before the starter hears, for the same
                // reason `onExit` waits.
                worker.shutdown()
                launch.give(WorkerStartError(worker: index, reason: error))
                return
            }
            launch.give(nil)
            loop.run()
            worker.shutdown()
            onExit?()
        }
        return launch
    }

    /// Waits for the answers of workers launched together (their threads set up side by side,
    /// not one after another) and returns their loops. When any cannot watch its sockets, the
    /// others are stopped again (each runs its `onExit` once it let go of its sockets, as any
    /// stopped worker) and the failure of the first in `launches` is thrown: the caller has
    /// every worker running or none. Any thread.
    package static func waitForAll(_ launches: [Launch]) throws(WorkerStartError) -> [EventLoop] {
        let failures = launches.compactMap { $0.answer() }
        guard let first = failures.first else { return launches.map(\.loop) }
        for launch in launches where launch.answer() == nil { launch.loop.stop() }
        throw first
    }

    private func listen(on fd: Int32?, tls tlsFD: Int32?) throws {
        let loop = self.loop
        if let fd {
            listener = try BalancedListener(fd: fd, loop: loop, worker: index) { [unowned self] listener, client, peer in
                self.adopt(client, peer: peer, countedIn: listener)
            }
        }
        if let tlsFD { tlsAcceptor = try TLSAcceptor(worker: self, fd: tlsFD) }
        if let drain = config.drain {
            let me = LoopBound(self)
            drainSignal = (drain, drain.enroll { loop.execute { me.value.drain() } })
        }
        // Weak: the publisher outlives the worker, and would keep an ended loop's eventfd for
        // as long. To the loop's waker, not the loop: see `EventLoop.waker`.
        reader.publisher.addWaker { [weak waker = loop.waker] in waker?.wakeUp() }
        pool.startSweeping()
        // Before the events: a request that comes back from the same wait as the wake-up of a
        // publish is routed by the new snapshot (a health change the admin API already shows).
        // And after them: a publish made while the events ran may have had its wake-up drained
        // with an earlier one in this batch, and the next wait would sleep on the old snapshot.
        loop.onEachPoll { [unowned self] in self.followTheLatestSnapshot() }
        loop.onEachIteration { [unowned self] in
            self.followTheLatestSnapshot()
            if self.pipeline.waitingCount > 0 && self.pipeline.run() { self.loop.requestImmediateIteration() }
        }
    }

    /// One acquiring load when nothing was published; else the new snapshot and the idle pool
    /// lined up with it.
    private func followTheLatestSnapshot() {
        reader.refresh()
        pool.follow(reader.snapshot)
    }

    /// Serves plain connection `fd`, accepted here or handed over by another worker (counted in
    /// `listener`'s balance already).
    private func adopt(_ fd: consuming FileDescriptor, peer: SocketAddress?, countedIn listener: BalancedListener) {
        assert(loop.isInLoop)
        if draining {
            // Handed over while this worker began its drain: nothing will serve it here.
            listener.connectionEnded()
            fd.close()
            return
        }
        let connection = ClientConnection(fd: fd.rawValue, peer: peer, worker: self)
        do {
            // The loop owns the descriptor from here (it closes it if this fails).
            try loop.register(fd, handler: connection)
        } catch {
            listener.connectionEnded()
            return
        }
        serve(connection, countedIn: listener)
    }

    /// Serves `connection`, whose descriptor the loop already delivers to it: a plain one just
    /// registered, or a finished TLS handshake. It counts in `listener`'s balance until it closes.
    func serve(_ connection: ClientConnection, countedIn listener: BalancedListener) {
        assert(loop.isInLoop)
        connections[ObjectIdentifier(connection)] = (connection, listener)
        peakConnections = max(peakConnections, connections.count)
        // Edge-triggered: bytes that arrived with the connection must be read now.
        connection.handle([.readable, .writable])
    }

    /// `metrics(for: snapshot.backends[index])`, from an array while `snapshot` is the worker's
    /// current one (a request routed just before a switch takes the slow way).
    func metrics(_ index: Int, in snapshot: Snapshot) -> ProxyMetrics.Shard {
        assert(loop.isInLoop)
        if snapshot === handlesSnapshot { return handles[index] }
        guard snapshot === reader.snapshot else { return metrics(for: snapshot.backends[index]) }
        handles = snapshot.backends.map { metrics(for: $0) }
        handlesSnapshot = snapshot
        return handles[index]
    }

    func metrics(for backend: Backend) -> ProxyMetrics.Shard {
        replicaHandle(for: backend).shard
    }

    private func replicaHandle(for backend: Backend) -> (replica: ProxyMetrics.Replica, shard: ProxyMetrics.Shard) {
        // A handle whose series were dropped (its replica left the pool) is replaced only once
        // the name is back in the current snapshot: a late request for the departed replica
        // counts on the old handle rather than bring its series back.
        if let cached = replicaMetrics[backend.name],
            !cached.replica.isRetired || !reader.snapshot.backends.contains(where: { $0.name == backend.name })
        {
            return cached
        }
        let replica = metrics.replica(backend.name)
        let handle = (replica: replica, shard: replica.makeShard())
        replicaMetrics[backend.name] = handle
        return handle
    }

    /// Bounded loads (`--balance-factor`) for the current snapshot, built once per snapshot,
    /// and each member's in-flight counter, in the snapshot's member order. (A reload may change
    /// the factor: it is part of the key.)
    private var bounded: (selection: BoundedSelection, load: [ProxyMetrics.Replica])?

    /// The replica for `hashedKey` under bounded loads (its index in `snapshot.backends`), by
    /// the in-flight requests over all workers (`BoundedSelection`).
    func boundedSelect(_ snapshot: Snapshot, hashedKey: UInt64, factor: Double) -> Int? {
        assert(loop.isInLoop)
        let selection: BoundedSelection, load: [ProxyMetrics.Replica]
        if let bounded, bounded.selection.snapshot === snapshot, bounded.selection.balanceFactor == factor {
            (selection, load) = bounded
        } else {
            (selection, load) = (
                BoundedSelection(snapshot, balanceFactor: factor), snapshot.backends.map { replicaHandle(for: $0).replica }
            )
            bounded = (selection, load)
        }
        let total = load.reduce(0) { $0 + $1.inFlight }
        guard let choice = selection.choose(hashedKey, totalInFlight: total, inFlight: { load[$0].inFlight })
        else { return nil }
        if choice.rank > 0 { counters.countBoundedMove() }
        return choice.index
    }

    func forget(_ connection: ClientConnection) {
        assert(loop.isInLoop)
        guard let served = connections.removeValue(forKey: ObjectIdentifier(connection)) else { return }
        served.listener.connectionEnded()
        if draining { drainSignal?.drain.adjust(-1) }
        if trimScheduled {
            closesSinceTrimArmed += 1
        } else if peakConnections >= Self.crowd && connections.count <= peakConnections / 4 {
            scheduleHeapTrim()
        }
    }

    /// A crowd of connections (e.g. slowloris) leaves its buffers' pages in glibc's arenas once
    /// it is gone: after the connection count falls to a quarter of a peak of at least `crowd`,
    /// the worker gives them back to the kernel once the crowd has stopped leaving (a second
    /// without a close, so a trim does not run while half the crowd is still freeing its
    /// buffers; at most `trimPatience` seconds, so steady traffic afterwards cannot put it off
    /// for ever). The request path allocates nothing, so the arena locks malloc_trim takes do
    /// not hold up other workers.
    static let crowd = 1024
    static let trimPatience = 10
    private var peakConnections = 0
    private var trimScheduled = false
    private var closesSinceTrimArmed = 0

    private func scheduleHeapTrim() {
        trimScheduled = true
        armHeapTrim(waited: 1)
    }

    private func armHeapTrim(waited: Int) {
        closesSinceTrimArmed = 0
        _ = loop.schedule(after: .seconds(1)) { [unowned self] in
            if self.closesSinceTrimArmed > 0 && waited < Self.trimPatience {
                self.armHeapTrim(waited: waited + 1)
                return
            }
            self.trimScheduled = false
            self.peakConnections = self.connections.count
            HeapTrim.releaseFreePages()
        }
    }

    /// Graceful stop: no more accepting (the listening descriptor stays open: under socket
    /// activation it belongs to systemd and the next ds-lb), idle connections close now, the
    /// others after the request in progress. Progress shows in `GracefulDrain`.
    func drain() {
        assert(loop.isInLoop)
        guard !draining else { return }
        draining = true
        listener?.stop()
        tlsAcceptor?.stop()
        pool.closeAll()
        // This worker counted 1 in the drain's total until now; from now on, its connections.
        drainSignal?.drain.adjust(connections.count - 1)
        for served in Array(connections.values) { served.connection.drain() }
    }

    /// A replica refused or dropped a connection on live traffic.
    func reportUnreachable(_ backend: Backend) {
        countFailure(backend)
        onUnreachable(backend)
    }

    /// A request the replica failed (passive health: the supervisor reads the counts).
    func countFailure(_ backend: Backend) {
        metrics(for: backend).countFailure()
    }

    /// The loop has ended: the worker lets go of its connections and stops counting among the
    /// workers the supervisor waits for to take a new snapshot, and among those a graceful stop
    /// waits for to drain (its drain, hopping to this loop, would never run).
    private func shutdown() {
        listener?.stop()
        tlsAcceptor?.stop()
        for served in Array(connections.values) { served.connection.close() }
        // After the connections, which put their exchanges here as they close.
        spareExchanges.retireAll()
        pool.closeAll()
        reader.leave()
        if let (drain, id) = drainSignal { drain.withdraw(id, counted: draining ? connections.count : 1) }
    }
}
