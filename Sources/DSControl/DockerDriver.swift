import DSBalancer
import DSDocker
import DSHTTP1
import DSReactor
import DSSystem
import Logging

/// Replicas as Docker containers, named after the replica and labelled `ds-lb.managed=true`,
/// `ds-lb.pool=<pool>`, `ds-lb.id=<n>`, `ds-lb.port=<port>`, and in cluster mode
/// `ds-lb.node=<node>` and the name `<replica>.<node>` (see `ReplicaContainer`). A container
/// without our labels (in cluster mode, our node's) is never touched. `--network host` puts each
/// replica on its own port on the listen host (127.0.0.1, or the node's advertise address in
/// cluster mode); any other network name attaches it to that user-defined network, where it is
/// reached at the address inspect reports once it runs.
///
/// Threading: the `ReplicaDriver` methods run on the control thread and never block — every
/// engine call is a non-blocking exchange on the Docker client's own loop (`DockerEngineWorker`),
/// so a slow engine never delays a heartbeat (docs/ARCHITECTURE.md §5). Calls about one
/// container name run in order (remove the old instance, then create its replacement under the
/// name); calls about different names run concurrently. Results come back through
/// `worker.shared`; the worker then posts to the control loop, where they become `DriverEvent`s.
/// Which containers still run is asked of the engine at once after an engine event about the
/// pool, and every half second in case an event was missed (the events stream reconnecting).
///
/// Containers outlive ds-lb: `stopAll` leaves them running and the next start adopts them.
///
/// `@unchecked Sendable`: its mutable state is touched on the control loop only; the worker's
/// threads reach it only by posting to that loop.
package final class DockerDriver: ReplicaDriver, @unchecked Sendable {
    package let name = "docker"
    package let canCreate = true
    private let worker: DockerEngineWorker
    private let logger: Logger
    private let network: String
    private let host: String

    /// One launched (or adopted) container, known by a token that is never reused, so a late
    /// report about an instance that was already replaced is recognised and dropped.
    private struct Instance {
        let token: UInt64
        var backend: Backend
        var reported = false
    }

    // Control thread only.
    private var live: [String: Instance] = [:]
    private var nextToken: UInt64 = 0
    /// The pool's containers found at start, until the supervisor claims them (bootstrap).
    private var adoptable: [String: ContainerSummary]
    private var bootstrapped = false
    private var lastRefresh: UInt64 = 0
    private var loop: EventLoop?
    private var report: (DriverEvent) -> Void = { _ in }
    private static let refreshInterval: UInt64 = 500_000_000

    /// Lists the pool's containers (blocks up to the list's timeout: call before the control
    /// loop runs) and starts following the engine's events.
    /// `host`: where replicas listen on the host network (the advertise address in cluster mode);
    /// `node`: the cluster node whose containers these are (nil on one machine).
    package init(
        client: DockerClient, image: String, pool: String, network: String = "host",
        host: String = ReplicaContainer.loopback, node: String? = nil, stopGrace: Duration = .seconds(5), logger: Logger
    ) throws {
        self.logger = logger
        self.network = network
        self.host = host
        worker = DockerEngineWorker(
            client: client, image: image, pool: pool, network: network, host: host, node: node, stopGrace: stopGrace,
            logger: logger)
        if network != "host" {
            // A missing network would fail every create later; say so now, in the engine's words.
            try client.wait { client.inspectNetwork(network, completion: $0) }
        }
        let all = try client.listContainers()
        adoptable = [:]
        for container in all where worker.isOurs(container) { adoptable[container.name] = container }
        worker.shared.withLock { $0.foreignNames = Set(all.filter { !worker.isOurs($0) }.map(\.name)) }
        worker.watchEvents()
        let whose = node.map { "pool \(pool), node \($0)" } ?? "pool \(pool)"
        logger.info(
            "[i] Docker engine \(client.engineVersion) (API \(client.apiVersion)) at \(client.socketPath); image \(image), network \(network), \(whose): \(adoptable.count) container(s) found"
        )
    }

    package func attach(to loop: EventLoop, report: @escaping (DriverEvent) -> Void) {
        self.loop = loop
        self.report = report
        worker.onNews { [weak self] in
            guard let self else { return }
            loop.execute { self.takeNews() }
        }
        scheduleRefresh()
    }

    package func initialBackends() -> [Backend] { [] }

    package func launch(_ replica: ReplicaSpec, previous: Backend?) throws -> Backend {
        if let existing = live[replica.name] {
            guard existing.reported else { throw DriverError("replica \(replica.name) is already running") }
            kill(existing.backend)
        }
        let containerName = worker.containerName(replica.name)
        if worker.shared.withLock({ $0.foreignNames.contains(containerName) }) {
            throw DriverError(DockerEngineWorker.foreignMessage(containerName, pool: worker.pool), isNameConflict: true)
        }
        nextToken += 1
        let token = nextToken
        // At start, a running container of the pool with this name and id is adopted, not duplicated.
        if !bootstrapped, let container = adoptable[containerName], container.isRunning,
            container.labels["ds-lb.id"] == String(replica.number),
            let port = container.labels["ds-lb.port"].flatMap({ UInt16($0) }),
            // On the host network, only where it still listens (the advertise address may have changed).
            network != "host" || (container.labels["ds-lb.host"] ?? ReplicaContainer.loopback) == host,
            let address = ReplicaContainer.host(onNetwork: network, addresses: container.networks, listenHost: host)
        {
            adoptable[containerName] = nil
            let backend = Backend(name: replica.name, number: replica.number, host: address, port: port)
            worker.shared.withLock {
                $0.containerIDs[token] = container.id
                $0.started.insert(token)
            }
            live[replica.name] = Instance(token: token, backend: backend)
            logger.info("[i] Adopted container \(containerName) (\(container.shortID)) at \(backend.address)")
            // Reported from the loop, not from inside `launch`: the supervisor is not re-entered.
            loop?.schedule(after: .zero) { [weak self] in
                guard let self, self.live[replica.name]?.token == token else { return }
                self.report(.started(backend))
            }
            return backend
        }
        let backend: Backend
        if network == "host" {
            backend = Backend(
                name: replica.name, number: replica.number, host: host,
                port: try previous.map(\.port) ?? freePort(on: host, avoiding: Set(live.values.map(\.backend.port))))
        } else {
            // Its address on the network is known once it runs (`DriverEvent.addressChanged`); until then
            // heartbeats go to port 0, which refuses at once, and the replica stays starting.
            backend = Backend(name: replica.name, number: replica.number, host: ReplicaContainer.loopback, port: 0)
        }
        live[replica.name] = Instance(token: token, backend: backend)
        worker.enqueue(replica.name) { [worker] done in worker.create(token: token, backend: backend, done: done) }
        return backend
    }

    package func stop(_ backend: Backend) {
        retire(backend)()
    }

    package func retire(_ backend: Backend) -> () -> Void {
        guard let instance = live[backend.name], instance.backend == backend else { return {} }
        live[backend.name] = nil
        let worker = self.worker
        let token = instance.token
        // Renamed now so the name can be reused at once; stopped and removed later.
        worker.enqueue(backend.name) { done in worker.rename(token: token, name: backend.name, done: done) }
        return { worker.enqueue(backend.name) { done in worker.stopAndRemove(token: token, name: backend.name, done: done) } }
    }

    package func kill(_ backend: Backend) {
        guard let instance = live[backend.name], instance.backend == backend else { return }
        live[backend.name] = nil
        let worker = self.worker
        let token = instance.token
        worker.enqueue(backend.name) { done in worker.forceRemove(token: token, name: backend.name, done: done) }
    }

    package func initialPoolLaunched() {
        guard !bootstrapped else { return }
        bootstrapped = true
        // Containers of the pool the desired state does not name: removed, so none is orphaned.
        for (name, container) in adoptable {
            logger.warning("[!] Removing container \(name) (\(container.shortID), \(container.status)): not in the saved pool")
            let worker = self.worker
            // In the replica's lane: placement may hand this node that replica later.
            let replica = ReplicaContainer.replicaName(ofContainer: name, node: worker.node)
            worker.enqueue(replica) { done in worker.removeUnclaimed(container, done: done) }
        }
        adoptable = [:]
    }

    /// Control loop: turns what the worker found into events about the instances that are
    /// still current (a late report about an instance already replaced is dropped).
    private func takeNews() {
        let (reports, addresses, started) = worker.shared.withLock { shared in
            defer { shared.reports = []; shared.addresses = []; shared.startedNow = [] }
            return (shared.reports, shared.addresses, shared.startedNow)
        }
        for token in started {
            guard let instance = live.values.first(where: { $0.token == token }), !instance.reported else { continue }
            report(.started(instance.backend))
        }
        for found in addresses {
            guard var instance = live[found.name], instance.token == found.token else { continue }
            let old = instance.backend
            let new = Backend(name: old.name, number: old.number, host: found.host, port: ReplicaContainer.networkPort)
            guard new != old else { continue }
            instance.backend = new
            live[found.name] = instance
            report(.addressChanged(from: old, to: new))
        }
        for found in reports {
            guard var instance = live[found.name], instance.token == found.token, !instance.reported else { continue }
            instance.reported = true
            live[found.name] = instance
            report(
                found.neverRan ? .failed(instance.backend, reason: found.reason) : .exited(instance.backend, reason: found.reason)
            )
        }
        refreshIfDue()
    }

    private func scheduleRefresh() {
        loop?.schedule(afterNanoseconds: Self.refreshInterval) { [weak self] in
            self?.refreshIfDue()
            self?.scheduleRefresh()
        }
    }

    /// Asks the engine which containers still run: at once after an event, else twice a
    /// second; one list at a time.
    private func refreshIfDue() {
        let now = monotonicNanoseconds()
        if worker.shared.withLock({ shared in
            guard !shared.refreshing, shared.eventPending || now - lastRefresh >= Self.refreshInterval else { return false }
            shared.refreshing = true
            shared.eventPending = false
            return true
        }) {
            lastRefresh = now
            worker.refresh(watched: live.values.filter { !$0.reported }.map { ($0.token, $0.backend) })
        }
    }

    package func details(of backend: Backend) -> [(String, JSONValue)] {
        guard let instance = live[backend.name],
            let id = worker.shared.withLock({ $0.containerIDs[instance.token] })
        else { return [("container", .null)] }
        return [("container", .string(String(id.prefix(12))))]
    }

    /// At shutdown: lets pending engine calls finish (up to 30 s) and leaves the containers
    /// running, to be adopted by the next start.
    package func stopAll() {
        if !waitForEngine(seconds: 30) {
            logger.warning("[!] Docker calls still pending at shutdown; leaving them")
        }
        let running = live.values.filter { !$0.reported }.count
        if running > 0 { logger.info("[i] Leaving \(running) container(s) running; the next start adopts them") }
    }

    /// Waits until no engine call is queued or running (tests; shutdown uses it too).
    func waitForEngine(seconds: Double = 5) -> Bool {
        worker.waitUntilIdle(seconds: seconds)
    }
}
