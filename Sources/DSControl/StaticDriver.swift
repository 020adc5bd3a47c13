import DSBalancer

/// Replicas run by someone else, given as `--backend NAME=HOST:PORT`. `/rm` takes them out of
/// the pool; nothing is started or stopped.
public final class StaticDriver: ReplicaDriver {
    public let name = "static"
    public let canCreate = false
    private let backends: [Backend]

    public init(backends: [Backend]) {
        self.backends = backends
    }

    public func initialBackends() -> [Backend] { backends }

    public func start(_ replicas: [ReplicaSpec]) throws -> [Backend] {
        throw DriverError("the static driver cannot start replicas; give them with --backend, or use --driver process")
    }

    public func stop(_ backend: Backend) {}
    public func poll() -> [(Backend, String)] { [] }
    public func stopAll() {}
}
