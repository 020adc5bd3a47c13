import DSBalancer
import DSHTTP1

/// Replicas run by someone else, given as `--backend NAME=HOST:PORT`. Heartbeats take them out of
/// rotation and put them back; `/rm` takes them out of the pool; nothing is started or stopped.
public final class StaticDriver: ReplicaDriver {
    public let name = "static"
    public let canCreate = false
    private let backends: [Backend]

    /// Each backend gets its own number, as a launched replica would (`server-K` is K when
    /// free): it names the replica in the log ("Server 2 ...") and places it on the ring.
    public init(backends: [Backend]) {
        var numbered: [Int: Backend] = [:]
        let generated = backends.indices.filter { ReplicaName.key(backends[$0].name).hasPrefix("server-") }
        for index in generated + backends.indices.filter({ !generated.contains($0) }) {
            let backend = backends[index]
            let number = Supervisor.numberFor(name: backend.name, taken: Array(numbered.values))
            numbered[index] = Backend(name: backend.name, number: number, host: backend.host, port: backend.port)
        }
        self.backends = backends.indices.map { numbered[$0]! }
    }

    public func initialBackends() -> [Backend] { backends }

    public func launch(_ replica: ReplicaSpec, previous: Backend?) throws -> Backend {
        throw DriverError("the static driver cannot start replicas; give them with --backend, or use --driver process")
    }

    public func stop(_ backend: Backend) {}
    public func retire(_ backend: Backend) -> () -> Void { {} }
    public func kill(_ backend: Backend) {}
    public func poll() -> [(Backend, String)] { [] }
    public func details(of backend: Backend) -> [(String, JSONValue)] { [] }
    public func stopAll() {}
}
