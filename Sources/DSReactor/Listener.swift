import DSSystem

#if canImport(Glibc)
import Glibc
#endif

/// Accepts connections on one loop. Several loops may share one listening descriptor: each
/// registers it with EPOLLEXCLUSIVE so a new connection wakes one worker, not all of them.
///
/// Out of descriptors (EMFILE, ENFILE) or kernel memory (ENOBUFS, ENOMEM), accepting is paused
/// and retried from a timer (100 ms, doubling to 1 s): the pending connections wait in the
/// kernel's backlog, established connections keep being served, and the loop does not spin on
/// an error that only a closed descriptor can clear (nginx's ngx_event_accept
/// likewise disables its accept events on EMFILE and re-enables them from a timer). Edges that
/// arrive while paused are ignored: the timer's accept drains the queue to EAGAIN, which
/// re-arms the edge.
package final class Listener: EventHandler {
    /// Raw, not a `FileDescriptor`: the listening socket is shared by every worker's loop (and,
    /// under systemd, owned by systemd), so no one listener may close it.
    package let fd: Int32
    private unowned let loop: EventLoop
    private let onAccept: (consuming FileDescriptor, SocketAddress?) -> Void
    private var closed = false
    private var retry: TimerID?
    private var pauseNanoseconds: UInt64 = 0

    static let firstPauseNanoseconds: UInt64 = 100_000_000
    static let longestPauseNanoseconds: UInt64 = 1_000_000_000

    /// How often accepting was paused for lack of descriptors or memory (loop thread only).
    package private(set) var pauses = 0
    /// Whether accepting is paused now, waiting for its retry timer (loop thread only).
    package var isPaused: Bool { retry != nil }

    /// `fd` stays owned by the caller (it may be shared with other loops); each accepted
    /// connection is `onAccept`'s, which closes it by letting it go.
    package init(fd: Int32, loop: EventLoop, onAccept: @escaping (consuming FileDescriptor, SocketAddress?) -> Void) throws {
        assert(loop.isInLoop)
        self.fd = fd
        self.loop = loop
        self.onAccept = onAccept
        try loop.register(fd, handler: self, exclusive: true)
    }

    package func handle(_ events: IOEvents) {
        guard retry == nil else { return }
        acceptPending()
    }

    private func acceptPending() {
        while !closed {
            do {
                switch try Socket.accept(fd) {
                case .wouldBlock:
                    pauseNanoseconds = 0
                    return
                case .done(let (client, peer)):
                    pauseNanoseconds = 0
                    onAccept(FileDescriptor(adopting: client), peer)
                }
            } catch let error as SyscallError {
                switch error.errno {
                case ECONNABORTED, EPROTO, EPERM:
                    // The one connection is gone (or refused by a firewall rule); the next may not be.
                    continue
                case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                    pause()
                    return
                default:
                    // EBADF/EFAULT/EINVAL would be our bug; anything else leaves the queue to the next edge.
                    return
                }
            } catch {
                return
            }
        }
    }

    private func pause() {
        pauses += 1
        pauseNanoseconds =
            pauseNanoseconds == 0
            ? Self.firstPauseNanoseconds : min(pauseNanoseconds * 2, Self.longestPauseNanoseconds)
        retry = loop.schedule(afterNanoseconds: pauseNanoseconds) { [weak self] in
            guard let self else { return }
            self.retry = nil
            self.acceptPending()
        }
    }

    /// Stops accepting on this loop.
    package func stop() {
        assert(loop.isInLoop)
        guard !closed else { return }
        closed = true
        if let retry { loop.cancel(retry) }
        retry = nil
        loop.unregister(fd)
    }
}
