import DSBalancer
import DSHTTP1

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

/// Runs replicas for the supervisor: local processes, containers, or nothing (static). Control
/// thread only. No call may block for long: readiness is judged by heartbeats, not by the driver.
package protocol ReplicaDriver: AnyObject {
    /// The name users give to `--driver`.
    var name: String { get }
    /// Whether `/add` can create replicas and failed ones can be restarted.
    var canCreate: Bool { get }
    /// Replicas that exist before any command (the static driver's `--backend` list).
    func initialBackends() -> [Backend]
    /// Starts one replica and returns where it will listen; it is ready once it passes
    /// heartbeats. `previous` is the instance it replaces (a restart keeps its address).
    func launch(_ replica: ReplicaSpec, previous: Backend?) throws -> Backend
    /// Asks a replica to stop and returns at once (the driver escalates if it lingers).
    func stop(_ backend: Backend)
    /// Takes a replica out of the driver's name space now (its name may be reused at once) and
    /// returns what stops that very instance later, once no worker sends it requests.
    func retire(_ backend: Backend) -> () -> Void
    /// Makes sure a failed instance is gone before it is replaced.
    func kill(_ backend: Backend)
    /// Called often: reaps replicas that exited on their own and reports them with a reason.
    func poll() -> [(Backend, String)]
    /// Called often: replicas whose address became known after `launch` returned (a container on
    /// a user-defined network gets it from the engine once it runs), as (launched, now).
    func addressChanges() -> [(Backend, Backend)]
    /// Driver facts for `/status` (pid, container id).
    func details(of backend: Backend) -> [(String, JSONValue)]
    /// Stops everything at shutdown (may block briefly).
    func stopAll()
}

extension ReplicaDriver {
    /// Most drivers know the address when they launch.
    package func addressChanges() -> [(Backend, Backend)] { [] }
}
