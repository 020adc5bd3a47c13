import DSBalancer

/// What a replica is to a driver: its stable name and number.
public struct ReplicaSpec: Sendable, Hashable {
    public let name: String
    public let number: Int

    public init(name: String, number: Int) {
        self.name = name
        self.number = number
    }
}

public struct DriverError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Runs replicas for the supervisor: local processes, containers, or nothing (static). Control
/// thread only.
public protocol ReplicaDriver: AnyObject {
    /// The name users give to `--driver`.
    var name: String { get }
    /// Whether `/add` can create replicas with this driver.
    var canCreate: Bool { get }
    /// Replicas that exist before any command (the static driver's `--backend` list).
    func initialBackends() -> [Backend]
    /// Starts the given replicas and returns them once each one accepts connections. All or
    /// nothing: on failure, whatever was started is stopped again before the error is thrown.
    func start(_ replicas: [ReplicaSpec]) throws -> [Backend]
    /// Stops a replica (no-op for replicas the driver does not run).
    func stop(_ backend: Backend)
    /// Called about once a second: reaps exited replicas and reports them.
    func poll() -> [(Backend, String)]
    /// Stops everything at shutdown.
    func stopAll()
}
