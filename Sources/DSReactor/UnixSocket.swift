import DSSystem

#if canImport(Glibc)
import Glibc
#endif

/// Client side of a unix stream socket (the Docker engine's API socket), non-blocking, for a loop.
package enum UnixSocket {
    /// The outcome of starting a connect.
    package enum ConnectResult {
        /// Connected (a unix socket usually is at once).
        case connected(Int32)
        /// Wait for EPOLLOUT, then read `Socket.connectResult`.
        case inProgress(Int32)
        /// The listener's backlog is full (EAGAIN: unix sockets say so instead of queueing the
        /// connect): try again a little later, up to the caller's connect timeout.
        case busy
    }

    /// Starts a non-blocking, close-on-exec connect to `path`. Throws for a missing or refused
    /// socket (ENOENT, ECONNREFUSED, EACCES) or a path that does not fit `sun_path`.
    package static func connect(path: String) throws -> ConnectResult {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        // One byte stays zero: sun_path is NUL-terminated for a filesystem socket.
        guard !bytes.isEmpty, bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw SyscallError(errno: ENAMETOOLONG, function: "connect(\(path))")
        }
        // Safe: the raw view covers exactly sun_path, and the guard above keeps the copy inside it.
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
        }
        let fd = try Socket.openStream(family: AF_UNIX)
        // Safe: the pointer is rebound only for the duration of the call, which reads
        // MemoryLayout<sockaddr_un>.size bytes of `address`.
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if rc == 0 { return .connected(fd) }
        let err = errno
        if err == EINPROGRESS || err == EINTR { return .inProgress(fd) }
        Glibc.close(fd)
        if err == EAGAIN { return .busy }
        throw SyscallError(errno: err, function: "connect(\(path))")
    }
}
