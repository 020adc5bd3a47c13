import DSBalancer
import DSDocker
import DSSystem
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The engine side of the Docker driver. Every method starts non-blocking calls on the client's
/// loop and returns at once; their completions run on that loop thread. What the control thread
/// needs to know comes back through `shared`. Any thread.
///
/// Calls about one container name run in a lane, one operation after another (an operation
/// says it is finished with `done`); lanes of different names run concurrently.
final class DockerEngineWorker: Sendable {
    struct Report: Sendable {
        let token: UInt64
        let name: String
        let reason: String
        /// The container never ran (create, start or inspect failed), rather than stopped.
        var neverRan = false
    }

    /// A container on a user-defined network got its address (from inspect).
    struct Address: Sendable {
        let token: UInt64
        let name: String
        let host: String
    }

    struct Shared: Sendable {
        var containerIDs: [UInt64: String] = [:]
        var started: Set<UInt64> = []
        /// Started since the control thread last looked.
        var startedNow: [UInt64] = []
        var foreignNames: Set<String> = []
        var reports: [Report] = []
        var addresses: [Address] = []
        var refreshing = false
        /// The last list failed (logged once, not twice a second).
        var listFailing = false
        /// `/events` reported that one of our containers stopped: list now.
        var eventPending = false
    }

    typealias Operation = @Sendable (_ done: @escaping @Sendable () -> Void) -> Void

    private struct Lanes: Sendable {
        var busy: Set<String> = []
        var queued: [String: [Operation]] = [:]
        var pending = 0
    }

    private struct EventWatch: Sendable {
        var failing = false
        var backoff = 1.0
    }

    let client: DockerClient
    let image: String
    let pool: String
    let network: String
    /// Where replicas listen on the host network: the node's advertise address in cluster mode.
    let host: String
    /// The cluster node this driver runs for (nil on one machine).
    let node: String?
    let stopGrace: Duration
    let logger: Logger
    let shared = Locked(Shared())
    private let lanes = Locked(Lanes())
    private let eventWatch = Locked(EventWatch())
    /// Tells the control thread that `shared` has news (set once by the driver's `attach`).
    private let notify = Locked<(@Sendable () -> Void)?>(nil)

    init(
        client: DockerClient, image: String, pool: String, network: String, host: String, node: String?, stopGrace: Duration,
        logger: Logger
    ) {
        self.client = client
        self.image = image
        self.pool = pool
        self.network = network
        self.host = host
        self.node = node
        self.stopGrace = stopGrace
        self.logger = logger
    }

    func onNews(_ body: @escaping @Sendable () -> Void) {
        notify.withLock { $0 = body }
    }

    /// Any thread, after `shared` changed in a way the control thread acts on.
    private func tellControl() {
        notify.withLock { $0 }?()
    }

    /// This node's container of the pool (see `ReplicaContainer.isOwned`).
    func isOurs(_ container: ContainerSummary) -> Bool {
        ReplicaContainer.isOwned(container.labels, pool: pool, node: node)
    }

    /// The container of replica `name` on this node.
    func containerName(_ name: String) -> String {
        ReplicaContainer.containerName(name, node: node)
    }

    static func foreignMessage(_ name: String, pool: String) -> String {
        "a container named '\(name)' exists and is not managed by ds-lb (pool \(pool)); ds-lb leaves it alone: remove it or choose another name"
    }

    // MARK: lanes

    /// Runs `operation` after those already queued for `name`.
    func enqueue(_ name: String, _ operation: @escaping Operation) {
        let now = lanes.withLock { lanes -> Bool in
            lanes.pending += 1
            guard !lanes.busy.contains(name) else {
                lanes.queued[name, default: []].append(operation)
                return false
            }
            lanes.busy.insert(name)
            return true
        }
        if now { run(name, operation) }
    }

    private func run(_ name: String, _ operation: @escaping Operation) {
        operation { [self] in
            let next = lanes.withLock { lanes -> Operation? in
                lanes.pending -= 1
                guard var queue = lanes.queued[name], !queue.isEmpty else {
                    lanes.busy.remove(name)
                    return nil
                }
                let next = queue.removeFirst()
                lanes.queued[name] = queue.isEmpty ? nil : queue
                return next
            }
            if let next { run(name, next) }
        }
    }

    /// Waits (polling; shutdown only) until no operation is queued or running.
    func waitUntilIdle(seconds: Double) -> Bool {
        let deadline = monotonicNanoseconds() + UInt64(seconds * 1e9)
        while lanes.withLock({ $0.pending }) > 0 {
            guard monotonicNanoseconds() < deadline else { return false }
            usleep(20_000)
        }
        return true
    }

    // MARK: events

    /// Follows `GET /events` for the pool's containers for the life of the process: a container
    /// that dies, stops, is killed, OOM-killed or removed makes the driver list the containers
    /// at once instead of at its next half-second tick. Reconnects with backoff (1 s
    /// doubling to 30 s, timers on the client's loop) and asks for a list after each reconnection.
    func watchEvents() {
        client.followContainerEvents(
            labels: ["ds-lb.pool=\(pool)"],
            onEvent: { [self] event in
                if eventWatch.withLock({ watch in
                    defer { watch = EventWatch() }; return watch.failing
                }) {
                    logger.info("[i] Following Docker events again")
                }
                if ["die", "stop", "kill", "oom", "destroy"].contains(event.action) {
                    shared.withLock { $0.eventPending = true }
                    tellControl()
                }
            },
            onEnd: { [self] error in
                let (wasFailing, delay) = eventWatch.withLock { watch in
                    defer { watch.failing = true; watch.backoff = min(watch.backoff * 2, 30) }
                    return (watch.failing, watch.backoff)
                }
                if !wasFailing { logger.warning("[!] Docker events: \(error); retrying with backoff") }
                shared.withLock { $0.eventPending = true }
                tellControl()
                client.after(.seconds(delay)) { [self] in watchEvents() }
            })
    }

    // MARK: operations (each calls `done` exactly once)

    private func report(_ token: UInt64, _ name: String, _ reason: String) {
        shared.withLock { $0.reports.append(Report(token: token, name: name, reason: reason, neverRan: true)) }
        tellControl()
    }

    func create(token: UInt64, backend: Backend, done: @escaping @Sendable () -> Void) {
        // Built where it is sent: a JSON dictionary is not Sendable.
        let config: @Sendable () -> [String: Any] = { [self] in
            ReplicaContainer.createBody(
                image: image, pool: pool, number: backend.number, port: backend.port, network: network, host: host, node: node)
        }
        let name = backend.name
        let containerName = containerName(name)
        let failed: @Sendable (Any) -> Void = { [self] error in
            report(token, name, "container \(name) could not start: \(error)")
            done()
        }
        client.createContainer(name: containerName, config: config()) { [self] result in
            switch result {
            case .success(let id):
                start(token: token, name: name, id: id, done: done)
            case .failure(let error) where error.status == 409:
                // The name is taken: a leftover of this pool is replaced, anyone else's is left alone.
                client.listContainers { [self] listed in
                    guard case .success(let all) = listed else { return failed(error) }
                    guard let existing = all.first(where: { $0.name == containerName }), isOurs(existing) else {
                        shared.withLock { _ = $0.foreignNames.insert(containerName) }
                        return failed(Self.foreignMessage(containerName, pool: pool))
                    }
                    client.removeContainer(existing.id, force: true) { [self] removed in
                        if case .failure(let error) = removed { return failed(error) }
                        client.createContainer(name: containerName, config: config()) { [self] created in
                            switch created {
                            case .success(let id): start(token: token, name: name, id: id, done: done)
                            case .failure(let error): failed(error)
                            }
                        }
                    }
                }
            case .failure(let error):
                failed(error)
            }
        }
    }

    /// Starts a created container; on a user-defined network, then asks where it is.
    private func start(token: UInt64, name: String, id: String, done: @escaping @Sendable () -> Void) {
        shared.withLock { $0.containerIDs[token] = id }
        client.startContainer(id) { [self] result in
            if case .failure(let error) = result {
                report(token, name, "container \(name) could not start: \(error)")
                return done()
            }
            shared.withLock {
                $0.started.insert(token)
                $0.startedNow.append(token)
            }
            tellControl()
            guard network != "host" else { return done() }
            client.inspectContainer(id) { [self] inspected in
                switch inspected {
                case .success(let details):
                    if let host = ReplicaContainer.host(onNetwork: network, addresses: details.networks) {
                        shared.withLock { $0.addresses.append(Address(token: token, name: name, host: host)) }
                        tellControl()
                    } else {
                        report(
                            token, name,
                            "container \(name) has no address on network \(network) (networks: \(details.networks.keys.sorted().joined(separator: ", ")))"
                        )
                    }
                case .failure(let error):
                    report(token, name, "container \(name): inspect failed: \(error)")
                }
                done()
            }
        }
    }

    func rename(token: UInt64, name: String, done: @escaping @Sendable () -> Void) {
        guard let id = shared.withLock({ $0.containerIDs[token] }) else { return done() }
        client.renameContainer(id, to: "\(containerName(name))-retired-\(id.prefix(12))") { [self] result in
            if case .failure(let error) = result { logger.warning("[!] Could not rename retired container \(name): \(error)") }
            done()
        }
    }

    func stopAndRemove(token: UInt64, name: String, done: @escaping @Sendable () -> Void) {
        guard let id = forget(token) else { return done() }
        client.stopContainer(id, grace: stopGrace) { [self] stopped in
            if case .failure(let error) = stopped {
                logger.warning("[!] Could not stop container \(name) (\(id.prefix(12))): \(error)")
            }
            remove(id, name: name, done: done)
        }
    }

    func forceRemove(token: UInt64, name: String, done: @escaping @Sendable () -> Void) {
        guard let id = forget(token) else { return done() }
        remove(id, name: name, done: done)
    }

    func removeUnclaimed(_ container: ContainerSummary, done: @escaping @Sendable () -> Void) {
        remove(container.id, name: container.name, done: done)
    }

    private func forget(_ token: UInt64) -> String? {
        shared.withLock { shared in
            shared.started.remove(token)
            return shared.containerIDs.removeValue(forKey: token)
        }
    }

    private func remove(_ id: String, name: String, done: @escaping @Sendable () -> Void) {
        client.removeContainer(id, force: true) { [self] result in
            if case .failure(let error) = result {
                logger.warning("[!] Could not remove container \(name) (\(id.prefix(12))): \(error)")
            }
            done()
        }
    }

    /// Lists every container: refreshes the foreign names and reports watched replicas whose
    /// container stopped or vanished (heartbeats would notice too, only later).
    func refresh(watched: [(UInt64, Backend)]) {
        // Only containers started before the list was asked for: one started while the list
        // was on its way shows in it as created, not running, and has not exited.
        let startedBefore = shared.withLock { $0.started }
        client.listContainers { [self] result in
            let all: [ContainerSummary]
            switch result {
            case .success(let list): all = list
            case .failure(let error):
                let first = shared.withLock { shared in
                    defer { shared.listFailing = true; shared.refreshing = false }; return !shared.listFailing
                }
                if first { logger.warning("[!] Could not list containers: \(error)") }
                return
            }
            let byID = Dictionary(all.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
            let recovered = shared.withLock { shared -> Bool in
                defer { shared.listFailing = false; shared.refreshing = false }
                shared.foreignNames = Set(all.filter { !isOurs($0) }.map(\.name))
                for (token, backend) in watched where shared.started.contains(token) && startedBefore.contains(token) {
                    guard let id = shared.containerIDs[token] else { continue }
                    if let container = byID[id] {
                        if container.isRunning { continue }
                        shared.reports.append(
                            Report(token: token, name: backend.name, reason: "container \(container.state): \(container.status)"))
                    } else {
                        shared.reports.append(
                            Report(token: token, name: backend.name, reason: "container \(backend.name) was removed"))
                    }
                }
                return shared.listFailing
            }
            tellControl()
            if recovered { logger.info("[i] The Docker engine answers again") }
        }
    }
}
