#if canImport(Glibc)
import Glibc
#endif
import DSSystem

/// Accepts connections on one loop. Several loops may share one listening descriptor: each
/// registers it with EPOLLEXCLUSIVE so a new connection wakes one worker, not all of them.
public final class Listener: EventHandler {
    public let fd: Int32
    private unowned let loop: EventLoop
    private let onAccept: (Int32, SocketAddress?) -> Void
    private var closed = false

    /// Loop thread only. `fd` stays owned by the caller (it may be shared with other loops).
    public init(fd: Int32, loop: EventLoop, onAccept: @escaping (Int32, SocketAddress?) -> Void) throws {
        self.fd = fd
        self.loop = loop
        self.onAccept = onAccept
        try loop.register(fd, handler: self, exclusive: true)
    }

    public func handle(_ events: IOEvents) {
        while !closed {
            do {
                switch try Socket.accept(fd) {
                case .wouldBlock:
                    return
                case .done(let (client, peer)):
                    onAccept(client, peer)
                }
            } catch let error as SyscallError {
                // EMFILE/ENFILE/ENOBUFS: out of descriptors or memory. The pending connection
                // stays queued; the next edge (or a new connection) retries.
                if error.errno == ECONNABORTED || error.errno == EPROTO { continue }
                return
            } catch {
                return
            }
        }
    }

    /// Loop thread only. Stops accepting on this loop.
    public func stop() {
        guard !closed else { return }
        closed = true
        loop.unregister(fd)
    }
}
