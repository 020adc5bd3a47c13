#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Foundation
import DSBalancer
import DSDocker
import DSHTTP1
import DSSystem
import Logging

/// Replicas as Docker containers (host networking, each on its own port on 127.0.0.1), named
/// after the replica and labelled `ds-lb.managed=true`, `ds-lb.pool=<pool>`, `ds-lb.id=<n>`,
/// `ds-lb.port=<port>`. A container without our labels is never touched.
///
/// Threading: the `ReplicaDriver` methods run on the control thread and never block — every
/// engine call is queued to `worker`, which runs them one at a time on its own serial queue
/// (DESIGN.md §2: a slow Docker call never delays a heartbeat). The queue keeps the order the
/// supervisor asked for (remove the old instance, then create its replacement under the name).
/// Results come back through `worker.shared` and are picked up by `poll()`.
///
/// Containers outlive ds-lb: `stopAll` leaves them running and the next start adopts them.
public final class DockerDriver: ReplicaDriver {
    public let name = "docker"
    public let canCreate = true
    private let worker: DockerWorker
    private let logger: Logger
    private let host = "127.0.0.1"

    /// One launched (or adopted) container, known by a token that is never reused, so a late
    /// report about an instance that was already replaced is recognised and dropped.
    private struct Instance {
        let token: UInt64
        let backend: Backend
        var reported = false
    }

    // Control thread only.
    private var live: [String: Instance] = [:]
    private var nextToken: UInt64 = 0
    /// The pool's containers found at start, until the supervisor claims them (bootstrap).
    private var adoptable: [String: ContainerSummary]
    private var bootstrapped = false
    private var lastRefresh: UInt64 = 0

    /// Lists the pool's containers (blocks: call before the control loop runs).
    public init(client: DockerClient, image: String, pool: String, stopGraceSeconds: Int = 5, logger: Logger) throws {
        self.logger = logger
        worker = DockerWorker(client: client, image: image, pool: pool, host: host, stopGrace: stopGraceSeconds, logger: logger)
        let all = try client.listContainers()
        adoptable = [:]
        for container in all where worker.isOurs(container) { adoptable[container.name] = container }
        worker.shared.withLock { $0.foreignNames = Set(all.filter { !worker.isOurs($0) }.map(\.name)) }
        worker.watchEvents()
        logger.info("[i] Docker engine \(client.engineVersion) (API \(client.apiVersion)) at \(client.socketPath); image \(image), pool \(pool): \(adoptable.count) container(s) of the pool found")
    }

    public func initialBackends() -> [Backend] { [] }

    public func launch(_ replica: ReplicaSpec, previous: Backend?) throws -> Backend {
        if let existing = live[replica.name] {
            guard existing.reported else { throw DriverError("replica \(replica.name) is already running") }
            kill(existing.backend)
        }
        if worker.shared.withLock({ $0.foreignNames.contains(replica.name) }) {
            throw DriverError(DockerWorker.foreignMessage(replica.name, pool: worker.pool), isNameConflict: true)
        }
        nextToken += 1
        let token = nextToken
        // At start, a running container of the pool with this name and id is adopted, not duplicated.
        if !bootstrapped, let container = adoptable[replica.name], container.isRunning,
           container.labels["ds-lb.id"] == String(replica.number),
           let port = container.labels["ds-lb.port"].flatMap({ UInt16($0) }) {
            adoptable[replica.name] = nil
            let backend = Backend(name: replica.name, number: replica.number, host: host, port: port)
            worker.shared.withLock {
                $0.containerIDs[token] = container.id
                $0.started.insert(token)
            }
            live[replica.name] = Instance(token: token, backend: backend)
            logger.info("[i] Adopted container \(replica.name) (\(container.shortID)) at \(backend.address)")
            return backend
        }
        let port = try previous.map(\.port) ?? freePort()
        let backend = Backend(name: replica.name, number: replica.number, host: host, port: port)
        live[replica.name] = Instance(token: token, backend: backend)
        let worker = self.worker
        worker.queue.async { worker.create(token: token, backend: backend) }
        return backend
    }

    public func stop(_ backend: Backend) {
        retire(backend)()
    }

    public func retire(_ backend: Backend) -> () -> Void {
        guard let instance = live[backend.name], instance.backend == backend else { return {} }
        live[backend.name] = nil
        let worker = self.worker
        let token = instance.token
        // Renamed now so the name can be reused at once; stopped and removed later.
        worker.queue.async { worker.rename(token: token, name: backend.name) }
        return { worker.queue.async { worker.stopAndRemove(token: token, name: backend.name) } }
    }

    public func kill(_ backend: Backend) {
        guard let instance = live[backend.name], instance.backend == backend else { return }
        live[backend.name] = nil
        let worker = self.worker
        let token = instance.token
        worker.queue.async { worker.forceRemove(token: token, name: backend.name) }
    }

    public func poll() -> [(Backend, String)] {
        if !bootstrapped {
            bootstrapped = true
            // Containers of the pool the desired state does not name: removed, so none is orphaned.
            for (name, container) in adoptable {
                logger.warning("[!] Removing container \(name) (\(container.shortID), \(container.status)): not in the saved pool")
                let worker = self.worker
                worker.queue.async { worker.removeUnclaimed(container) }
            }
            adoptable = [:]
        }
        var exited: [(Backend, String)] = []
        for report in worker.shared.withLock({ shared -> [DockerWorker.Report] in defer { shared.reports = [] }; return shared.reports }) {
            guard var instance = live[report.backend.name], instance.token == report.token, !instance.reported else { continue }
            instance.reported = true
            live[report.backend.name] = instance
            exited.append((instance.backend, report.reason))
        }
        // Ask the engine which containers still run, at most twice a second and one list at a time.
        let now = monotonicNanoseconds()
        if worker.shared.withLock({ shared in
            // An event (die, stop, kill, oom, destroy) asks for a list now; else twice a second.
            guard !shared.refreshing, shared.eventPending || now - lastRefresh >= 500_000_000 else { return false }
            shared.refreshing = true
            shared.eventPending = false
            return true
        }) {
            lastRefresh = now
            let watched = live.values.filter { !$0.reported }.map { ($0.token, $0.backend) }
            let worker = self.worker
            worker.queue.async { worker.refresh(watched: watched) }
        }
        return exited
    }

    public func details(of backend: Backend) -> [(String, JSONValue)] {
        guard let instance = live[backend.name],
              let id = worker.shared.withLock({ $0.containerIDs[instance.token] }) else { return [("container", .null)] }
        return [("container", .string(String(id.prefix(12))))]
    }

    /// At shutdown: lets queued engine calls finish (up to 30 s) and leaves the containers
    /// running, to be adopted by the next start.
    public func stopAll() {
        let done = DispatchSemaphore(value: 0)
        worker.queue.async { done.signal() }
        if done.wait(timeout: .now() + 30) == .timedOut {
            logger.warning("[!] Docker calls still pending at shutdown; leaving them")
        }
        let running = live.values.filter { !$0.reported }.count
        if running > 0 { logger.info("[i] Leaving \(running) container(s) running; the next start adopts them") }
    }

    /// Asks the kernel for a free port by binding port 0 (host networking: the container binds it).
    private func freePort() throws -> UInt16 {
        let fd = try Socket.listen(on: .v4(ip: 0x7f00_0001, port: 0), backlog: 1)
        defer { Socket.close(fd) }
        return try Socket.localAddress(fd).port
    }
}

/// The engine side of the Docker driver: runs on `queue` only (serial), except `shared`.
final class DockerWorker: Sendable {
    struct Report: Sendable {
        let token: UInt64
        let backend: Backend
        let reason: String
    }

    struct Shared: Sendable {
        var containerIDs: [UInt64: String] = [:]
        var started: Set<UInt64> = []
        var foreignNames: Set<String> = []
        var reports: [Report] = []
        var refreshing = false
        /// The last list failed (logged once, not twice a second).
        var listFailing = false
        /// `/events` reported that one of our containers stopped: list now.
        var eventPending = false
    }

    let client: DockerClient
    let image: String
    let pool: String
    let host: String
    let stopGrace: Int
    let logger: Logger
    let queue = DispatchQueue(label: "ds-lb.docker")
    /// Any thread.
    let shared = Locked(Shared())

    init(client: DockerClient, image: String, pool: String, host: String, stopGrace: Int, logger: Logger) {
        self.client = client
        self.image = image
        self.pool = pool
        self.host = host
        self.stopGrace = stopGrace
        self.logger = logger
    }

    func isOurs(_ container: ContainerSummary) -> Bool {
        container.labels["ds-lb.managed"] == "true" && container.labels["ds-lb.pool"] == pool
    }

    static func foreignMessage(_ name: String, pool: String) -> String {
        "a container named '\(name)' exists and is not managed by ds-lb (pool \(pool)); ds-lb leaves it alone: remove it or choose another name"
    }

    /// Follows `GET /events` for the pool's containers on a thread of its own, for the life of
    /// the process: a container that dies, stops, is killed, OOM-killed or removed makes the next
    /// `poll()` list the containers at once instead of at its next half-second tick. Reconnects
    /// with backoff (1 s doubling to 30 s) and asks for a list after each reconnection.
    func watchEvents() {
        let thread = Thread { [self] in
            var backoff: UInt32 = 1
            var failing = false
            while true {
                do {
                    try client.streamContainerEvents(labels: ["ds-lb.pool=\(pool)"]) { event in
                        if failing {
                            failing = false
                            backoff = 1
                            logger.info("[i] Following Docker events again")
                        }
                        if ["die", "stop", "kill", "oom", "destroy"].contains(event.action) {
                            shared.withLock { $0.eventPending = true }
                        }
                    }
                } catch {
                    if !failing { logger.warning("[!] Docker events: \(error); retrying with backoff") }
                    failing = true
                }
                shared.withLock { $0.eventPending = true }
                sleep(backoff)
                backoff = min(backoff * 2, 30)
            }
        }
        thread.name = "ds-lb-docker-events"
        thread.start()
    }

    // MARK: queue only

    func create(token: UInt64, backend: Backend) {
        let number = String(backend.number)
        let port = String(backend.port)
        let config: [String: Any] = [
            "Image": image,
            "Cmd": ["--id", number, "--host", host, "--port", port],
            "Env": ["SERVER_ID=\(number)", "PORT=\(port)"],
            "Labels": ["ds-lb.managed": "true", "ds-lb.pool": pool, "ds-lb.id": number, "ds-lb.port": port],
            "HostConfig": [
                "NetworkMode": "host",
                // ds-lb is the one restarter (no second restart loop racing ours, and every failure is
                // logged and repaired the same way); a container that died while ds-lb was down is
                // replaced at the next start.
                "RestartPolicy": ["Name": "no"],
            ] as [String: Any],
        ]
        do {
            let id: String
            do {
                id = try client.createContainer(name: backend.name, config: config)
            } catch let error as DockerError where error.status == 409 {
                // The name is taken: a leftover of this pool is replaced, anyone else's is left alone.
                guard let existing = try client.listContainers().first(where: { $0.name == backend.name }), isOurs(existing) else {
                    shared.withLock { _ = $0.foreignNames.insert(backend.name) }
                    throw DriverError(Self.foreignMessage(backend.name, pool: pool))
                }
                try client.removeContainer(existing.id, force: true)
                id = try client.createContainer(name: backend.name, config: config)
            }
            shared.withLock { $0.containerIDs[token] = id }
            try client.startContainer(id)
            shared.withLock { _ = $0.started.insert(token) }
        } catch {
            shared.withLock { $0.reports.append(Report(token: token, backend: backend, reason: "container \(backend.name) could not start: \(error)")) }
        }
    }

    func rename(token: UInt64, name: String) {
        guard let id = shared.withLock({ $0.containerIDs[token] }) else { return }
        do { try client.renameContainer(id, to: "\(name)-retired-\(id.prefix(12))") } catch {
            logger.warning("[!] Could not rename retired container \(name): \(error)")
        }
    }

    func stopAndRemove(token: UInt64, name: String) {
        guard let id = shared.withLock({ $0.containerIDs.removeValue(forKey: token) }) else { return }
        shared.withLock { _ = $0.started.remove(token) }
        do {
            try client.stopContainer(id, grace: stopGrace)
            try client.removeContainer(id, force: true)
        } catch {
            logger.warning("[!] Could not remove container \(name) (\(id.prefix(12))): \(error)")
        }
    }

    func forceRemove(token: UInt64, name: String) {
        guard let id = shared.withLock({ $0.containerIDs.removeValue(forKey: token) }) else { return }
        shared.withLock { _ = $0.started.remove(token) }
        do { try client.removeContainer(id, force: true) } catch {
            logger.warning("[!] Could not remove container \(name) (\(id.prefix(12))): \(error)")
        }
    }

    func removeUnclaimed(_ container: ContainerSummary) {
        do { try client.removeContainer(container.id, force: true) } catch {
            logger.warning("[!] Could not remove container \(container.name): \(error)")
        }
    }

    /// Lists every container: refreshes the foreign names and reports watched replicas whose
    /// container stopped or vanished (heartbeats would notice too, only later).
    func refresh(watched: [(UInt64, Backend)]) {
        defer { shared.withLock { $0.refreshing = false } }
        let all: [ContainerSummary]
        do { all = try client.listContainers() } catch {
            if !shared.withLock({ $0.listFailing }) { logger.warning("[!] Could not list containers: \(error)") }
            shared.withLock { $0.listFailing = true }
            return
        }
        if shared.withLock({ $0.listFailing }) {
            logger.info("[i] The Docker engine answers again")
            shared.withLock { $0.listFailing = false }
        }
        let byID = Dictionary(all.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        shared.withLock { shared in
            shared.foreignNames = Set(all.filter { !isOurs($0) }.map(\.name))
            for (token, backend) in watched where shared.started.contains(token) {
                guard let id = shared.containerIDs[token] else { continue }
                if let container = byID[id] {
                    if container.isRunning { continue }
                    shared.reports.append(Report(token: token, backend: backend, reason: "container \(container.state): \(container.status)"))
                } else {
                    shared.reports.append(Report(token: token, backend: backend, reason: "container \(backend.name) was removed"))
                }
            }
        }
    }
}
