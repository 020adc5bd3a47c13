import DSBalancer
import DSHTTP1
import DSReactor

/// What a replica is to a driver: its stable name and number.
package struct ReplicaSpec: Sendable, Hashable {
    package let name: String
    package let number: Int

    package init(name: String, number: Int) {
        self.name = name
        self.number = number
    }
}

package struct DriverError: Error, CustomStringConvertible, Sendable {
    package let description: String
    /// The name is taken by something the driver must not touch (a foreign container): the
    /// admin API answers 409, not 500.
    package let isNameConflict: Bool
    package init(_ description: String, isNameConflict: Bool = false) {
        self.description = description
        self.isNameConflict = isNameConflict
    }
}

/// What a driver learned about a replica on its own, after `launch` returned. Posted to the
/// control loop as it happens: the supervisor never asks.
package enum DriverEvent: Sendable, Hashable {
    /// The instance runs (its process or container started) at this address.
    case started(Backend)
    /// The instance ended on its own (a replica that was stopped, retired or killed is not reported).
    case exited(Backend, reason: String)
    /// Where the instance is reached became known after `launch` (a container on a
    /// user-defined network gets its address from the engine once it runs).
    case addressChanged(from: Backend, to: Backend)
    /// The instance could not be started after `launch` returned (an engine call failed): it
    /// will not run, as if it had exited.
    case failed(Backend, reason: String)
}

/// Runs replicas for the supervisor: local processes, containers, or nothing (static). Control
/// thread only. No call may block for long: `launch`, `stop` and `kill` start the work and
/// return; what happens next reaches the supervisor as `DriverEvent`s. Readiness is judged by
/// heartbeats, not by the driver.
package protocol ReplicaDriver: AnyObject {
    /// The name users give to `--driver`.
    var name: String { get }
    /// Whether `/add` can create replicas and failed ones can be restarted.
    var canCreate: Bool { get }
    /// Control thread, once, before the first `launch`: the driver calls `report` on `loop`'s
    /// thread only (work done on another thread is posted to `loop` first), never from inside
    /// one of its own methods, so the supervisor is not re-entered.
    func attach(to loop: EventLoop, report: @escaping (DriverEvent) -> Void)
    /// Replicas that exist before any command (the static driver's `--backend` list).
    func initialBackends() -> [Backend]
    /// Starts one replica and returns where it will listen; it is ready once it passes
    /// heartbeats. `previous` is the instance it replaces (a restart keeps its address).
    func launch(_ replica: ReplicaSpec, previous: Backend?) throws -> Backend
    /// The initial pool is launched: what the driver found at start and nobody claimed goes.
    func initialPoolLaunched()
    /// Asks a replica to stop and returns at once (the driver escalates if it lingers).
    func stop(_ backend: Backend)
    /// Takes a replica out of the driver's name space now (its name may be reused at once) and
    /// returns what stops that very instance later, once no worker sends it requests.
    func retire(_ backend: Backend) -> () -> Void
    /// Makes sure a failed instance is gone before it is replaced.
    func kill(_ backend: Backend)
    /// Driver facts for `/status` (pid, container id).
    func details(of backend: Backend) -> [(String, JSONValue)]
    /// Stops everything at shutdown (may block briefly).
    func stopAll()
}

extension ReplicaDriver {
    /// Most drivers adopt nothing.
    package func initialPoolLaunched() {}
}
