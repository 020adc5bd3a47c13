/// The algorithms `--hash` can select, by the name users type.
///
/// Thread safety: a plain value; `build` returns an immutable table usable from any thread.
public enum HashAlgorithm: String, CaseIterable, Sendable {
    case rendezvous
    case ring
    case maglev
    case assignment

    /// What ds-lb uses without `--hash`: the one that meets the hashing targets for N = 3…100
    /// (balance ≤ 1.05, churn ≤ 1.15 × ideal, lookup ≤ 50 ns, build ≤ 5 ms); see RendezvousTable.
    public static let `default`: HashAlgorithm = .rendezvous

    /// Builds this algorithm's table over `members` (order does not matter). Supervisor thread:
    /// it allocates and may take milliseconds for large memberships.
    public func build(_ members: [HashMember]) -> any ConsistentHash {
        switch self {
        case .rendezvous: return RendezvousTable(members: members)
        case .ring: return Ring(members: members)
        case .maglev: return Maglev(members: members)
        case .assignment: return Assignment(members: members)
        }
    }

    /// The concrete type, e.g. to read `algorithmName`.
    public var type: any ConsistentHash.Type {
        switch self {
        case .rendezvous: return RendezvousTable.self
        case .ring: return Ring.self
        case .maglev: return Maglev.self
        case .assignment: return Assignment.self
        }
    }
}
