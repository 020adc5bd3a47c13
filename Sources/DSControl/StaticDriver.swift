import DSBalancer
import DSHTTP1

/// Replicas run by someone else, given as `--backend NAME=HOST:PORT`. Heartbeats take them out of
/// rotation and put them back; `/rm` takes them out of the pool; nothing is started or stopped.
public final class StaticDriver: ReplicaDriver {
    public let name = "static"
    public let canCreate = false
    private let backends: [Backend]

    public init(backends: [Backend]) {
        self.backends = backends
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
