import DSReactor
import DSSystem
import Synchronization

/// Evens out client connections over the workers that share one listening socket.
///
/// EPOLLEXCLUSIVE wakes the first *idle* worker in the order the workers registered, so when
/// connections arrive one at a time (an idle ds-lb, a client that opens its connections in
/// turn) the first worker accepts all of them and the others sit idle. So the worker that
/// accepted a connection keeps it only when no other worker has at least two fewer; otherwise it
/// hands the descriptor to the least loaded one through that worker's loop (`EventLoop.execute`).
/// This costs one cross-thread wake-up per handed-over connection and nothing per request.
///
/// Workers find their group by the listening descriptor they share (one group per listener
/// in the process). Any thread.
final class AcceptBalance: Sendable {
    final class Member: Sendable {
        let index: Int
        /// Connections this worker owns or was handed and has not closed yet.
        let connections = Atomic<Int>(0)
        let adopt: @Sendable (Int32, SocketAddress?) -> Void

        init(index: Int, adopt: @escaping @Sendable (Int32, SocketAddress?) -> Void) {
            self.index = index
            self.adopt = adopt
        }
    }

    private let members = Locked<[Member]>([])
    private static let groups = Locked<[Int32: AcceptBalance]>([:])

    /// Puts `member` in the group of the workers accepting on `listenFD` and returns that group.
    /// Looked up and joined under one lock, so a group its last member is leaving is never joined.
    static func join(_ member: Member, listening listenFD: Int32) -> AcceptBalance {
        groups.withLock { groups in
            let group = groups[listenFD] ?? AcceptBalance()
            groups[listenFD] = group
            group.members.withLock { $0.append(member) }
            return group
        }
    }

    /// `member`'s worker stopped accepting on `listenFD`: it is handed nothing more. The last
    /// member to leave takes the group out of the registry, so a listener opened later on the same
    /// descriptor number (workers started again in one process) starts a group of its own rather
    /// than joining workers that are gone.
    func leave(_ member: Member, listening listenFD: Int32) {
        Self.groups.withLock { groups in
            let empty = members.withLock { members in
                members.removeAll { $0 === member }
                return members.isEmpty
            }
            if empty, groups[listenFD] === self { groups[listenFD] = nil }
        }
    }

    /// The members now in the group (tests).
    var memberCount: Int { members.withLock { $0.count } }

    /// Called by `member` on its own loop with a connection it just accepted: the member that
    /// should own it (counted already). Another member is chosen only when it has at least two
    /// connections fewer, so a balanced group never hands anything over.
    func owner(for member: Member) -> Member {
        let all = members.withLock { $0 }
        var best = member
        var bestCount = member.connections.load(ordering: .relaxed)
        for other in all where other !== member {
            let count = other.connections.load(ordering: .relaxed)
            if count + 1 < bestCount { best = other; bestCount = count }
        }
        best.connections.add(1, ordering: .relaxed)
        return best
    }

    /// The member a connection `member` just accepted goes to, or nil when `member` keeps it
    /// (counted for the one that serves it either way). The descriptor crosses to the other
    /// worker's thread in an escaping closure, which cannot carry a noncopyable value: callers
    /// hand over its number (`adopt`), and that worker adopts it again on arrival.
    func handOver(from member: Member) -> Member? {
        let owner = owner(for: member)
        return owner === member ? nil : owner
    }
}
