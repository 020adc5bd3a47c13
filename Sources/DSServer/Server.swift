import DSBalancer
import DSControl
import DSHashing
import DSProxy
import DSReactor
import DSSystem
import DSSystemd
import Dispatch
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// What a `Server` runs: everything `ds-lb serve` takes from its options and file, parsed.
package struct ServerConfiguration {
    /// `--listen` (unused when systemd passes the sockets); nil (`--listen none`): HTTPS only.
    package var listen: SocketAddress?
    /// `--admin-listen`.
    package var admin: SocketAddress?
    /// `--tls-listen` (systemd's socket named `https` takes its place); its connections need
    /// `proxy.tls`.
    package var tlsListen: SocketAddress?
    package var workers: Int
    /// `--cpu-affinity auto`: worker i runs only on the i-th CPU ds-lb may use (wrapping around),
    /// so a worker is never moved between CPUs the load generator and the replicas also use.
    package var pinWorkers = false
    package var algorithm: HashAlgorithm
    package var supervisor: SupervisorConfig
    /// The workers' settings (the server adds its graceful drain).
    package var proxy: ProxyConfig
    /// New replicas to launch when no saved pool is restored.
    package var replicas: Int
    /// Where the desired pool is kept (`state.json`).
    package var stateDirectory: String
    /// `--reset-state`: forget the saved pool first.
    package var resetState = false
    /// The configuration file, for the start-up log line.
    package var configurationFile: String?
    /// SIGTERM/SIGINT stop the server gracefully and SIGHUP reloads it (ds-lb). Off, signals are
    /// left alone (a test that runs a server in its own process).
    package var handlesSignals = true
    /// Makes the replica driver. Called once the signals are blocked and before any other
    /// thread starts: a driver may start threads, which must not receive them.
    package var makeDriver: (Logger) throws -> ReplicaDriver
    /// Cluster mode (`--etcd`): the pool is kept in etcd and placed over the live nodes.
    package var cluster: ClusterSetup?

    package init(
        listen: SocketAddress?, admin: SocketAddress? = nil, workers: Int, algorithm: HashAlgorithm,
        supervisor: SupervisorConfig, proxy: ProxyConfig, replicas: Int, stateDirectory: String,
        makeDriver: @escaping (Logger) throws -> ReplicaDriver
    ) {
        self.listen = listen
        self.admin = admin
        self.workers = workers
        self.algorithm = algorithm
        self.supervisor = supervisor
        self.proxy = proxy
        self.replicas = replicas
        self.stateDirectory = stateDirectory
        self.makeDriver = makeDriver
    }
}

/// How a server joins a cluster: it makes its pool store and membership on the control loop.
package struct ClusterSetup {
    /// Each gets the control loop and the driver's name (the pool document names its driver).
    package var makeStore: (EventLoop, String) throws -> PoolStore
    package var makeMembership: (EventLoop, String, Logger) throws -> ClusterMembership

    package init(
        makeStore: @escaping (EventLoop, String) throws -> PoolStore,
        makeMembership: @escaping (EventLoop, String, Logger) throws -> ClusterMembership
    ) {
        self.makeStore = makeStore
        self.makeMembership = makeMembership
    }
}

/// Why a server could not start. `invalid` is a setting that cannot work (the command line's
/// usage error); `failed` is something that went wrong (one line).
package enum ServerError: Error, CustomStringConvertible {
    case invalid(String)
    case failed(String)

    package var description: String {
        switch self {
        case .invalid(let message), .failed(let message): return message
        }
    }
}

/// A whole ds-lb (docs/ARCHITECTURE.md §2): the listening sockets, the control loop with its
/// supervisor, the workers, reload and graceful stop. `ds-lb serve` configures one and runs it
/// on its main thread; a test runs one on a thread of its own.
///
/// `init` opens the sockets and makes the driver and the supervisor; `start` launches the
/// initial pool; `run` runs the control loop on the calling thread until the server stops.
/// Control loop only, except `stop`, which posts to it.
package final class Server: @unchecked Sendable {
    package let configuration: ServerConfiguration
    package let logger: Logger
    package let notifier: SystemdNotifier
    /// The control loop. Replicas are forked from the thread that runs it, and PR_SET_PDEATHSIG
    /// follows the forking thread: `run` it on a thread that lives as long as the server.
    package let loop: EventLoop
    package let supervisor: Supervisor
    package let driver: ReplicaDriver
    /// The listening sockets (systemd's, or our own).
    package let listeners: (http: Int32?, admin: Int32?)
    /// The TLS listening socket (systemd's `https`, or our own on `--tls-listen`), if any.
    package let tlsListener: Int32?
    private let ownsTLSListener: Bool
    private let ownsListeners: Bool
    private var signals: SignalWatcher?
    private let drain = GracefulDrain()
    /// The running workers' settings; workers started later get these.
    package private(set) var proxyConfig: ProxyConfig
    /// How long a stop waits for requests in flight (a live setting).
    package private(set) var drainTimeout: Duration
    private var workerLoops: [EventLoop] = []
    /// Entered per worker started, left when its thread has stopped (`run` waits for it before
    /// closing the sockets the workers listen on).
    private let workersRunning = DispatchGroup()
    private var workerHandles: [WorkerHandle] = []
    private var watchdog: ProgressWatchdog?
    private var lastStatus = "Starting replicas"
    private var startError: Error?
    package private(set) var stopping = false
    /// Appended to systemd's `STATUS=` (why the last reload failed, what waits for a restart).
    package var statusNote: String?
    /// SIGHUP, when the server handles signals (on the control loop).
    package var onReload: (() -> Void)?
    /// On the control loop once the workers accept connections.
    package var onReady: (() -> Void)?

    package init(configuration: ServerConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        notifier = SystemdNotifier()
        signal(SIGPIPE, SIG_IGN)
        // Signals are blocked here before any other thread exists (the Docker driver starts
        // one), so only the signalfd sees them.
        loop = try EventLoop()
        var onSignal: (Int32) -> Void = { _ in }
        if configuration.handlesSignals {
            signals = try SignalWatcher(signals: [SIGTERM, SIGINT, SIGHUP], loop: loop) { onSignal($0) }
        }
        let passed = SystemdListeners.take()
        ownsListeners = passed.isEmpty
        listeners = try Self.listeningSockets(
            passed: passed, listen: configuration.listen, admin: configuration.admin, logger: logger)
        (tlsListener, ownsTLSListener) = try Self.tlsListeningSocket(
            passed: passed, listen: configuration.tlsListen, logger: logger)
        if listeners.http == nil && tlsListener == nil {
            throw ServerError.invalid("no listener: --listen none needs --tls-listen (or a socket named https)")
        }
        if tlsListener != nil && configuration.proxy.tls == nil {
            throw ServerError.invalid("a TLS listener needs --tls-cert and --tls-key")
        }
        driver = try configuration.makeDriver(logger)
        // The admin socket's worker reads snapshots like the others (it acknowledges generations).
        supervisor = Supervisor(
            loop: loop, driver: driver, algorithm: configuration.algorithm, config: configuration.supervisor,
            workers: configuration.workers + (listeners.admin == nil ? 0 : 1), logger: logger)
        var proxy = configuration.proxy
        proxy.drain = drain
        if let tlsListener, let port = try? Socket.localAddress(tlsListener).port { proxy.httpsPort = port }
        if proxy.redirectHTTP && tlsListener == nil {
            throw ServerError.invalid("--redirect-http needs a TLS listener (--tls-listen)")
        }
        proxyConfig = proxy
        drainTimeout = configuration.supervisor.drainTimeout
        supervisor.onClusterRefused = { [unowned self] reason in
            guard !stopping else { return }
            stopping = true
            supervisor.beginStopping()
            startError = ServerError.failed(reason)
            stopLoops()
        }
        onSignal = { [unowned self] signal in
            if signal == SIGHUP {
                if !stopping { onReload?() }
                return
            }
            stopGracefully(
                reason: "Received signal \(signal)", status: "Stopping (signal \(signal)): finishing requests in flight")
        }
    }

    /// The `STATUS=` line: the pool, and the reload's note when there is one.
    package var statusLine: String {
        statusNote.map { supervisor.statusLine + "; " + $0 } ?? supervisor.statusLine
    }

    /// Launches the initial pool (the saved one, else `replicas` new ones); the workers start
    /// accepting once it passed its first heartbeats, while `run` runs the loop. Before `run`.
    package func start() throws {
        let store = StateStore(directory: configuration.stateDirectory)
        if configuration.resetState {
            do { try store.reset() } catch { throw ServerError.invalid("--reset-state: cannot remove \(store.path): \(error)") }
        }
        if let cluster = configuration.cluster {
            do {
                supervisor.joinCluster(
                    try cluster.makeMembership(loop, driver.name, logger), store: try cluster.makeStore(loop, driver.name))
            } catch {
                throw ServerError.failed("cannot join the cluster: \(error)")
            }
        } else {
            supervisor.poolStore = FileStore(file: store, driver: driver.name)
        }
        // systemd: WATCHDOG=1 only while every loop makes progress; STATUS= follows the pool
        // (and says when the last reload failed or left a setting for the next restart).
        if notifier.isEnabled {
            notifier.status(lastStatus)
            if let timeout = notifier.watchdogTimeout() {
                watchdog = ProgressWatchdog(control: loop, timeout: timeout, notifier: notifier, logger: logger)
                watchdog?.start()
            }
            refreshStatus()
        }
        // Workers start once the initial replicas pass their first heartbeats, so the first
        // requests do not meet an empty rotation; until then connections wait in the backlog.
        do {
            try supervisor.bootstrap(replicas: configuration.replicas) { [unowned self] in startWorkers() }
        } catch let error as PoolStoreError {
            supervisor.stopAll()
            throw ServerError.failed("\(error)")
        } catch {
            supervisor.stopAll()
            throw ServerError.failed("could not start the initial replicas: \(error)")
        }
    }

    private func refreshStatus() {
        loop.schedule(after: .seconds(1)) { [unowned self] in
            guard !stopping else { return }
            let line = statusLine
            if line != lastStatus, !workerLoops.isEmpty { lastStatus = line; notifier.status(line) }
            refreshStatus()
        }
    }

    /// With an admin socket, the admin endpoints leave the traffic socket for it.
    private func startWorkers() {
        let workerCount = configuration.workers
        var launches: [Worker.Launch] = []
        do {
            let admin: AdminHandler? = listeners.admin == nil ? supervisor.admin : nil
            let cpus = configuration.pinWorkers ? (0..<workerCount).map { allowedCPU($0) } : []
            if !cpus.isEmpty {
                let map = cpus.enumerated().map { "w\($0.offset) on CPU \($0.element.map(String.init) ?? "?")" }
                logger.info("[i] Workers pinned (--cpu-affinity auto): \(map.joined(separator: ", "))")
            }
            // Every loop is made before any thread starts: when one cannot be, nothing runs yet.
            let loops = try (0..<workerCount + (listeners.admin == nil ? 0 : 1)).map { _ in try EventLoop() }
            var handles: [WorkerHandle] = []
            for index in 0..<workerCount {
                let handle = WorkerHandle()
                workersRunning.enter()
                launches.append(
                    Worker.launch(
                        on: loops[index], index: index, listenFD: listeners.http, tlsListenFD: tlsListener,
                        publisher: supervisor.publisher, config: proxyConfig, admin: admin, metrics: supervisor.metrics,
                        onUnreachable: { [supervisor] in supervisor.reportUnreachable($0) }, handle: handle,
                        cpu: cpus.isEmpty ? nil : cpus[index],
                        onPinFailure: { [logger] error in logger.warning("[!] Worker \(index) not pinned: \(error)") },
                        onExit: { [workersRunning] in workersRunning.leave() }))
                handles.append(handle)
            }
            if let adminFD = listeners.admin {
                let handle = WorkerHandle()
                workersRunning.enter()
                launches.append(
                    Worker.launch(
                        on: loops[workerCount], index: workerCount, listenFD: adminFD, publisher: supervisor.publisher,
                        config: proxyConfig, admin: AdminOnlyHandler(router: supervisor.admin),
                        metrics: supervisor.metrics, onUnreachable: { _ in }, handle: handle,
                        onExit: { [workersRunning] in workersRunning.leave() }))
                handles.append(handle)
            }
            // The threads set up side by side; only now is each one's answer awaited.
            workerLoops = try Worker.waitForAll(launches)
            workerHandles = handles
        } catch {
            // A worker that could not start never ran: it has nothing to leave. The others were
            // stopped again and leave as they end, before `run` closes the sockets.
            for launch in launches where launch.answer() != nil { workersRunning.leave() }
            // Readiness was not signalled: the server stops with this one-line reason.
            startError = ServerError.failed("cannot start the workers: \(error)")
            loop.stop()
            return
        }
        if let adminFD = listeners.admin {
            let bound =
                (try? Socket.localAddress(adminFD))?.description ?? configuration.admin?.description ?? "the admin socket"
            logger.info("[i] Admin endpoints on \(bound) only")
        }
        let bound =
            (listeners.http ?? tlsListener).flatMap { try? Socket.localAddress($0) }?.description
            ?? configuration.listen?.description ?? "https only"
        logger.info(
            "[i] ds-lb Listening on \(bound) (workers: \(workerCount), driver: \(driver.name), hash: \(configuration.algorithm.rawValue), key: \(proxyConfig.keyExtractor))"
        )
        if let tlsListener { logTLS(tlsListener) }
        if let path = configuration.configurationFile {
            logger.info("[i] Configuration: \(path) (reload: systemctl reload ds-lb, or SIGHUP)")
        }
        workerLoops.forEach { watchdog?.watch($0) }
        notifier.ready(status: statusLine)
        lastStatus = statusLine
        onReady?()
    }

    /// Runs the control loop on the calling thread until the server stops, then stops the
    /// replicas (a driver's containers are left running for the next ds-lb) and closes the
    /// sockets it opened.
    package func run() throws {
        loop.run()
        supervisor.stopAll()
        workerLoops.forEach { $0.stop() }
        workersRunning.wait()
        if ownsListeners {
            if let http = listeners.http { close(http) }
            if let admin = listeners.admin { close(admin) }
        }
        if ownsTLSListener, let tlsListener { close(tlsListener) }
        if let startError { throw startError }
        logger.info("[i] ds-lb stopped")
    }

    /// Control loop. Applies a reload's live settings: the supervisor's, and the workers'.
    package func reload(supervisor config: SupervisorConfig, proxy: ProxyConfig) {
        assert(loop.isInLoop)
        supervisor.reconfigure(config)
        for worker in workerHandles { worker.reconfigure(proxy) }
        proxyConfig = proxy
        drainTimeout = config.drainTimeout
    }

    /// Any thread. Graceful: as SIGTERM — stop accepting, let the requests in flight finish
    /// (at most the drain timeout), then stop. Otherwise the loops stop at once.
    package func stop(graceful: Bool) {
        loop.execute { [self] in
            if graceful {
                stopGracefully(reason: "Asked to stop", status: "Stopping: finishing requests in flight")
            } else {
                stopping = true
                supervisor.beginStopping()
                stopLoops()
            }
        }
    }

    private func stopGracefully(reason: String, status: String) {
        guard !stopping else { return }
        stopping = true
        supervisor.beginStopping()
        notifier.stopping(status: status)
        logger.info("[i] \(reason): stopping")
        // Stop accepting (new connections wait in the socket's backlog, which systemd keeps
        // for the next ds-lb), let the requests in flight finish, then stop.
        guard !workerLoops.isEmpty else { return stopLoops() }
        do {
            if let http = listeners.http { try GracefulStop.stopAccepting(http) }
            if let tlsListener { try GracefulStop.stopAccepting(tlsListener) }
        } catch { logger.error("[!] Could not stop accepting: \(error)") }
        let drainTimeout = drainTimeout
        // Each worker closes its idle connections and each other one after its response.
        drain.begin()
        let inFlight = { [drain] in drain.remaining }
        GracefulStop.drain(loop: loop, timeout: nanoseconds(of: drainTimeout), inFlight: inFlight) {
            [self] left in
            if left > 0 {
                logger.warning(
                    "[!] Stopping with \(left) client connections still open after \(DurationText.format(drainTimeout))")
            } else {
                logger.info("[i] Drained: every request in flight answered, every client connection closed")
            }
            stopLoops()
        }
    }

    /// Leaves the cluster first (other nodes take the replicas over at once), then stops.
    private func stopLoops() {
        supervisor.leaveCluster { [self] in
            workerLoops.forEach { $0.stop() }
            loop.stop()
        }
    }
}
