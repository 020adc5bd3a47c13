import DSReactor
import DSSystem

#if canImport(Glibc)
import Glibc
#endif

/// SIGTERM → graceful stop: stop accepting, let the requests in flight finish, then
/// stop the loops. Under socket activation the listening socket belongs to systemd: it must
/// neither be closed for everyone nor `shutdown(2)` (sd_listen_fds(3)), because connections that
/// arrive while ds-lb restarts wait in its backlog for the next ds-lb.
enum GracefulStop {
    /// Control thread. Makes descriptor `fd` refer to a fresh listening socket on 127.0.0.1:0
    /// that nobody knows, in one `dup2`. The workers' edge-triggered registrations of the real
    /// socket then find nothing to accept (`EAGAIN`), and new connections stay queued in the
    /// real socket — kept open by systemd for the next ds-lb, or closed with our last reference
    /// to it when ds-lb opened the socket itself.
    static func stopAccepting(_ fd: Int32) throws {
        let placeholder = FileDescriptor(adopting: try Socket.listen(on: SocketAddress.parse("127.0.0.1:0")))
        try Socket.setNonBlocking(placeholder.rawValue)
        guard dup2(placeholder.rawValue, fd) == fd else { throw SyscallError(errno: errno, function: "dup2") }
        // dup2 clears close-on-exec; replicas are forked on this same thread, so none can
        // start in between.
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
    }

    /// Control thread. Calls `done` once `inFlight()` has read 0 on `quietPolls` polls in a
    /// row (a response being written when a poll runs shows as in flight), or after `timeout`
    /// with what is still in flight.
    static func drain(
        loop: EventLoop, timeout: UInt64, interval: UInt64 = 50_000_000, quietPolls: Int = 3,
        inFlight: @escaping () -> Int, done: @escaping (_ left: Int) -> Void
    ) {
        let deadline = monotonicNanoseconds() + timeout
        var quiet = 0
        func poll() {
            let now = inFlight()
            quiet = now == 0 ? quiet + 1 : 0
            if quiet >= quietPolls || monotonicNanoseconds() >= deadline {
                done(now)
                return
            }
            loop.schedule(afterNanoseconds: interval) { poll() }
        }
        poll()
    }
}
