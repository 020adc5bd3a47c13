import DSBalancer
import DSHTTP1
import DSReactor

/// Replicas run by someone else, given as `--backend NAME=HOST:PORT`. Heartbeats take them out of
/// rotation and put them back; `/rm` takes them out of the pool; nothing is started or stopped.
package final class StaticDriver: ReplicaDriver {
    package let name = "static"
    package let canCreate = false
    private let backends: [Backend]

    /// Each backend gets its own number, as a launched replica would (`server-K` is K when
    /// free): it names the replica in the log ("Server 2 ...") and places it on the ring.
    package init(backends: [Backend]) {
        var numbered: [Int: Backend] = [:]
        let generated = backends.indices.filter { ReplicaName.key(backends[$0].name).hasPrefix("server-") }
        for index in generated + backends.indices.filter({ !generated.contains($0) }) {
            let backend = backends[index]
            let number = PoolReconciler.numberFor(name: backend.name, taken: Array(numbered.values))
            numbered[index] = Backend(
                name: backend.name, number: number, host: backend.host, port: backend.port, weight: backend.weight)
        }
        self.backends = backends.indices.map { numbered[$0]! }
    }

    package func attach(to loop: EventLoop, report: @escaping (DriverEvent) -> Void) {}
    package func initialBackends() -> [Backend] { backends }

    package func launch(_ replica: ReplicaSpec, previous: Backend?) throws -> Backend {
        throw DriverError("the static driver cannot start replicas; give them with --backend, or use --driver process")
    }

    package func stop(_ backend: Backend) {}
    package func retire(_ backend: Backend) -> () -> Void { {} }
    package func kill(_ backend: Backend) {}
    package func details(of backend: Backend) -> [(String, JSONValue)] { [] }
    package func stopAll() {}
}
