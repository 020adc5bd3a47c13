#if canImport(Glibc)
import Glibc
#endif
import DSBalancer
import DSHashing
import DSHTTP1
import DSProxy
import DSReactor
import DSSystem
import Logging

/// Owns membership (DESIGN.md §2): the driver, the admin commands and the snapshots. It runs on
/// the control loop; workers reach it only through `submit` (which posts to that loop) and get
/// their answer through the reply closure.
///
/// `@unchecked Sendable`: every mutable property is touched only on `loop`'s thread; the
/// cross-thread entry points (`submit`, `isAdminPath`, `reportUnreachable`) only read immutable
/// state or post to the loop.
public final class Supervisor: AdminHandler, @unchecked Sendable {
    public let loop: EventLoop
    public let publisher: SnapshotPublisher
    private let driver: ReplicaDriver
    private let algorithm: HashAlgorithm
    private let logger: Logger
    /// Members in order of addition (the order `/rep` lists them in).
    private var members: [Backend] = []
    private var generation: UInt64 = 0
    private var lastUnreachableLog: [String: UInt64] = [:]

    public static let adminPaths: Set<Substring> = ["/rep", "/add", "/rm"]

    public init(loop: EventLoop, driver: ReplicaDriver, algorithm: HashAlgorithm, workers: Int, logger: Logger) {
        self.loop = loop
        self.driver = driver
        self.algorithm = algorithm
        self.logger = logger
        self.publisher = SnapshotPublisher(initial: .empty(algorithm: algorithm), workers: workers)
    }

    /// Control thread, before workers start: brings up the initial pool.
    public func bootstrap(replicas: Int) throws {
        members = driver.initialBackends()
        if driver.canCreate && replicas > 0 {
            let specs = (0..<replicas).map { _ -> ReplicaSpec in
                let spec = nextGeneratedSpec(taken: members)
                members.append(Backend(name: spec.name, number: spec.number, host: "", port: 0))
                return spec
            }
            members.removeAll { $0.port == 0 }
            members += try driver.start(specs)
        }
        for backend in members { logger.info("[+] Server \(backend.number) started: \(backend.name) at \(backend.address)") }
        publish()
        loop.schedule(afterNanoseconds: 1_000_000_000) { [unowned self] in self.pollDriver() }
    }

    // MARK: AdminHandler (any thread)

    public func isAdminPath(_ path: Substring) -> Bool {
        Self.adminPaths.contains(path)
    }

    public func submit(_ request: AdminRequest, reply: @escaping @Sendable (AdminResponse) -> Void) {
        loop.execute { [self] in reply(self.handle(request)) }
    }

    /// Any thread. Passive signal from a worker: a replica refused or dropped a connection.
    public func reportUnreachable(_ backend: Backend) {
        loop.execute { [self] in
            let now = monotonicNanoseconds()
            if let last = lastUnreachableLog[backend.name], now - last < 5_000_000_000 { return }
            lastUnreachableLog[backend.name] = now
            logger.warning("[!] Server \(backend.number) (\(backend.name)) unreachable at \(backend.address)")
        }
    }

    // MARK: admin commands (control thread)

    func handle(_ request: AdminRequest) -> AdminResponse {
        switch (request.path, request.method) {
        case ("/rep", "GET"), ("/rep", "HEAD"):
            return AdminResponse(status: 200, body: repBody())
        case ("/add", "POST"):
            return add(request)
        case ("/rm", "DELETE"):
            return remove(request)
        case ("/rep", _):
            return .failure(405, "<Error> Method \(request.method) not allowed on /rep; use GET", extraHeaders: "Allow: GET\r\n")
        case ("/add", _):
            return .failure(405, "<Error> Method \(request.method) not allowed on /add; use POST", extraHeaders: "Allow: POST\r\n")
        case ("/rm", _):
            return .failure(405, "<Error> Method \(request.method) not allowed on /rm; use DELETE", extraHeaders: "Allow: DELETE\r\n")
        default:
            return .failure(404, "<Error> '\(request.path)' is not an admin endpoint")
        }
    }

    private func repBody() -> String {
        let message = JSONValue.object([
            ("N", .int(members.count)),
            ("replicas", .array(members.map { .string($0.name) })),
        ])
        return JSONValue.object([("message", message), ("status", .string("successful"))]).serialized
    }

    private func add(_ request: AdminRequest) -> AdminResponse {
        let command: ScaleCommand
        do { command = try ScaleCommand.parse(request.body) } catch let error as ScaleCommand.Invalid {
            return .failure(400, error.message)
        } catch { return .failure(400, "<Error> Invalid request body") }
        let hostnames = command.hostnames ?? []
        let n = command.n ?? max(hostnames.count, 1)
        guard n > 0 else { return .failure(400, "<Error> 'n' must be a positive integer, got \(n)") }
        guard n <= 1000 else { return .failure(400, "<Error> 'n' is too large: at most 1000 replicas per command") }
        guard hostnames.count <= n else {
            return .failure(400, "<Error> Length of hostname list is more than newly added instances")
        }
        var seen = Set<String>()
        for name in hostnames {
            guard ScaleCommand.isValidName(name) else {
                return .failure(400, "<Error> Invalid hostname '\(name)': use letters, digits, '_', '.', '-' (starting with a letter or digit), at most 63 characters")
            }
            guard seen.insert(name).inserted else { return .failure(400, "<Error> Hostname '\(name)' is given more than once") }
            if members.contains(where: { $0.name == name }) {
                return .failure(409, "<Error> Hostname '\(name)' is already in the pool")
            }
        }
        guard driver.canCreate else {
            return .failure(501, "<Error> The \(driver.name) driver cannot start replicas")
        }
        // Names and numbers are chosen before anything starts, so the command is all or nothing.
        var taken = members
        var specs: [ReplicaSpec] = []
        for name in hostnames {
            let spec = ReplicaSpec(name: name, number: Self.numberFor(name: name, taken: taken))
            taken.append(Backend(name: spec.name, number: spec.number, host: "", port: 0))
            specs.append(spec)
        }
        while specs.count < n {
            let spec = nextGeneratedSpec(taken: taken)
            taken.append(Backend(name: spec.name, number: spec.number, host: "", port: 0))
            specs.append(spec)
        }
        let started: [Backend]
        do {
            started = try driver.start(specs)
        } catch {
            logger.error("[!] Failed to add \(specs.map(\.name).joined(separator: ", ")): \(error)")
            return .failure(500, "<Error> Could not start replicas: \(error)")
        }
        members += started
        publish()
        for backend in started { logger.info("[+] Server \(backend.number) added: \(backend.name) at \(backend.address)") }
        return AdminResponse(status: 200, body: repBody())
    }

    private func remove(_ request: AdminRequest) -> AdminResponse {
        var names: [String]
        var n: Int
        if let id = request.queryParameter("id") {
            guard let number = Int(id), number > 0 else { return .failure(400, "<Error> 'id' must be a positive integer, got '\(id)'") }
            guard let backend = members.first(where: { $0.number == number }) else {
                return .failure(404, "<Error> No replica with id \(number) in the pool")
            }
            names = [backend.name]
            n = 1
        } else {
            let command: ScaleCommand
            do { command = try ScaleCommand.parse(request.body) } catch let error as ScaleCommand.Invalid {
                return .failure(400, error.message)
            } catch { return .failure(400, "<Error> Invalid request body") }
            names = command.hostnames ?? []
            n = command.n ?? max(names.count, 1)
            guard n > 0 else { return .failure(400, "<Error> 'n' must be a positive integer, got \(n)") }
            guard names.count <= n else {
                return .failure(400, "<Error> Length of hostname list is more than removable instances")
            }
            guard n <= members.count else {
                return .failure(400, "<Error> Cannot remove \(n) replicas: the pool has \(members.count)")
            }
            var seen = Set<String>()
            for name in names {
                guard seen.insert(name).inserted else { return .failure(400, "<Error> Hostname '\(name)' is given more than once") }
                guard members.contains(where: { $0.name == name }) else {
                    return .failure(404, "<Error> Hostname '\(name)' is not in the pool")
                }
            }
            var others = members.filter { !seen.contains($0.name) }.map(\.name)
            others.shuffle()
            names += others.prefix(n - names.count)
        }
        let removed = members.filter { names.contains($0.name) }
        members.removeAll { names.contains($0.name) }
        let target = publish()
        for backend in removed { logger.info("[-] Server \(backend.number) removed: \(backend.name)") }
        stopWhenUnused(removed, generation: target, deadline: monotonicNanoseconds() + 2_000_000_000)
        return AdminResponse(status: 200, body: repBody())
    }

    /// Stops removed replicas once every worker runs a snapshot without them (DESIGN.md §3), so
    /// no new request reaches a replica that is going away.
    private func stopWhenUnused(_ removed: [Backend], generation target: UInt64, deadline: UInt64) {
        if publisher.allWorkersReached(target) || monotonicNanoseconds() > deadline {
            removed.forEach(driver.stop)
            return
        }
        loop.schedule(afterNanoseconds: 5_000_000) { [unowned self] in
            self.stopWhenUnused(removed, generation: target, deadline: deadline)
        }
    }

    // MARK: membership

    @discardableResult
    private func publish() -> UInt64 {
        generation += 1
        publisher.publish(Snapshot(generation: generation, backends: members, algorithm: algorithm))
        return generation
    }

    /// `server-K` with the smallest K that is neither a member's number nor a member's name.
    private func nextGeneratedSpec(taken: [Backend]) -> ReplicaSpec {
        let numbers = Set(taken.map(\.number))
        let names = Set(taken.map(\.name))
        var k = 1
        while numbers.contains(k) || names.contains("server-\(k)") { k += 1 }
        return ReplicaSpec(name: "server-\(k)", number: k)
    }

    /// `server-7` is number 7 when free; any other name gets the smallest free number.
    static func numberFor(name: String, taken: [Backend]) -> Int {
        let numbers = Set(taken.map(\.number))
        if name.hasPrefix("server-"), let k = Int(name.dropFirst(7)), k > 0, !numbers.contains(k) { return k }
        var k = 1
        while numbers.contains(k) || taken.contains(where: { $0.name == "server-\(k)" }) { k += 1 }
        return k
    }

    private func pollDriver() {
        for (backend, reason) in driver.poll() {
            logger.warning("[!] Server \(backend.number) (\(backend.name)) exited: \(reason)")
        }
        loop.schedule(afterNanoseconds: 1_000_000_000) { [unowned self] in self.pollDriver() }
    }

    /// Control thread, at shutdown.
    public func stopAll() {
        driver.stopAll()
    }
}
