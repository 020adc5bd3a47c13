import DSReactor
import DSSystem

/// A worker's side of a listening socket every worker shares: it accepts, and keeps each
/// connection or hands it to a worker with fewer (`AcceptBalance`). `serve` receives every
/// connection this worker is to serve, accepted here or handed over, already counted for it,
/// with the listener it counts in (whose `connectionEnded` uncounts it when it closes): the
/// owner's closure is made before the listener exists, so it cannot capture it. Loop thread only (a hand-over arrives through
/// the loop's `execute`).
final class BalancedListener {
    private let serve: (BalancedListener, consuming FileDescriptor, SocketAddress?) -> Void
    private var listener: Listener?
    private let group: AcceptBalance
    private let member: AcceptBalance.Member
    private let listenFD: Int32

    /// Whether connections are still accepted here (not after `stop`).
    var isListening: Bool { listener != nil }

    init(
        fd: Int32, loop: EventLoop, worker index: Int,
        serve: @escaping (BalancedListener, consuming FileDescriptor, SocketAddress?) -> Void
    )
        throws
    {
        self.serve = serve
        listenFD = fd
        // The socket's handler and the group's member are made before this listener exists, so
        // they reach it through `target`. Weakly: this listener holds its member, and a member
        // holding it back would keep both, and the loop the member's closure captures, once the
        // worker has ended.
        let target = Target()
        listener = try Listener(fd: fd, loop: loop) { client, peer in
            // Gone only if dropped without `stop`: the connection closes.
            guard let listener = target.listener else { return }
            listener.accept(client, peer: peer)
        }
        member = AcceptBalance.Member(index: index) { client, peer in
            loop.execute {
                // Handed over as this worker's loop ended: nothing will serve it here.
                guard let listener = target.listener else { return Socket.close(client) }
                listener.serve(listener, FileDescriptor(adopting: client), peer)
            }
        }
        group = AcceptBalance.join(member, listening: fd)
        target.listener = self
    }

    /// A connection `serve` received has closed (or was never served).
    func connectionEnded() {
        member.connections.subtract(1, ordering: .relaxed)
    }

    /// Stops accepting on this worker (the descriptor stays open: it is shared).
    func stop() {
        listener?.stop()
        listener = nil
        group.leave(member, listening: listenFD)
    }

    /// This listener, for its socket's handler and its member. Loop thread only: set at the end
    /// of `init`, read in the handler and in a hand-over's task, both on this listener's loop.
    private final class Target: @unchecked Sendable {
        weak var listener: BalancedListener?
    }

    private func accept(_ fd: consuming FileDescriptor, peer: SocketAddress?) {
        if let other = group.handOver(from: member) {
            other.adopt(fd.release(), peer)
            return
        }
        serve(self, fd, peer)
    }
}
