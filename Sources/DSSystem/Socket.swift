import CLinux

#if canImport(Glibc)
import Glibc
#endif

/// Typed wrappers over the socket calls the reactor and the proxy use. Every descriptor these
/// return is non-blocking and close-on-exec; the caller owns it, and holds it as a
/// `FileDescriptor` (or hands it to `EventLoop.register`) unless it must stay shared.
package enum Socket {
    /// Opens a listening TCP socket. `reusePort` lets several sockets (one per worker, or an old
    /// and a new process during a restart) share the address.
    package static func listen(on address: SocketAddress, backlog: Int32 = 1024, reusePort: Bool = false) throws -> Int32 {
        let fd = try openStream(family: address.family)
        do {
            _ = try syscall("setsockopt(SO_REUSEADDR)") { cl_set_int_option(fd, CL_SOL_SOCKET, CL_SO_REUSEADDR, 1) }
            if reusePort {
                _ = try syscall("setsockopt(SO_REUSEPORT)") { cl_set_int_option(fd, CL_SOL_SOCKET, CL_SO_REUSEPORT, 1) }
            }
            _ = try address.withSockAddr { sa, len in try syscall("bind(\(address))") { Glibc.bind(fd, sa, len) } }
            _ = try syscall("listen") { Glibc.listen(fd, backlog) }
        } catch {
            Glibc.close(fd)
            throw error
        }
        return fd
    }

    /// A non-blocking, close-on-exec stream socket of `family` (AF_INET, AF_INET6, AF_UNIX).
    package static func openStream(family: Int32) throws -> Int32 {
        try syscall(family == AF_UNIX ? "socket(AF_UNIX)" : "socket") {
            cl_socket_nonblocking(family, Int32(SOCK_STREAM.rawValue))
        }
    }

    /// Accepts one connection, or `.wouldBlock` when the queue is empty.
    package static func accept(_ listener: Int32) throws -> IOResult<(fd: Int32, peer: SocketAddress?)> {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = try withUnsafeMutablePointer(to: &storage) { ptr in
            try ptr.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                try nonBlockingSyscall("accept4") { cl_accept4(listener, sa, &length) }
            }
        }
        switch result {
        case .wouldBlock: return .wouldBlock
        case .done(let fd):
            // Accepted sockets do not inherit TCP_NODELAY from the listener on Linux.
            if storage.ss_family != sa_family_t(AF_UNIX) { setNoDelay(fd) }
            return .done((fd, withUnsafePointer(to: &storage) { SocketAddress(storage: $0) }))
        }
    }

    /// Starts a non-blocking connect. Returns the fd and whether the connection is already
    /// established (loopback often is); otherwise wait for EPOLLOUT and call `connectResult`.
    package static func connect(to address: SocketAddress) throws -> (fd: Int32, connected: Bool) {
        let fd = try openStream(family: address.family)
        setNoDelay(fd)
        let rc = address.withSockAddr { sa, len in Glibc.connect(fd, sa, len) }
        if rc == 0 { return (fd, true) }
        let err = errno
        if err == EINPROGRESS || err == EINTR { return (fd, false) }
        Glibc.close(fd)
        throw SyscallError(errno: err, function: "connect(\(address))")
    }

    /// The outcome of a non-blocking connect once the socket became writable: 0 or an errno.
    package static func connectResult(_ fd: Int32) -> Int32 {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        if getsockopt(fd, SOL_SOCKET, SO_ERROR, &value, &length) != 0 { return errno }
        return value
    }

    package static func localAddress(_ fd: Int32) throws -> SocketAddress {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = try withUnsafeMutablePointer(to: &storage) { ptr in
            try ptr.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                try syscall("getsockname") { getsockname(fd, sa, &length) }
            }
        }
        guard let address = withUnsafePointer(to: &storage, { SocketAddress(storage: $0) }) else {
            throw SyscallError(errno: EAFNOSUPPORT, function: "getsockname")
        }
        return address
    }

    /// True when `fd` is a listening TCP socket (used to vet an inherited systemd socket).
    package static func isListeningStream(_ fd: Int32) -> Bool {
        var type: Int32 = 0
        var accepting: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) == 0 else { return false }
        length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &length) == 0 else { return false }
        return type == Int32(SOCK_STREAM.rawValue) && accepting != 0
    }

    package static func setNonBlocking(_ fd: Int32) throws {
        _ = try syscall("fcntl(O_NONBLOCK)") { cl_set_nonblocking(fd) }
    }

    /// Disables Nagle's algorithm. A proxy's writes are whole messages or parts of one; with Nagle
    /// a response written in two sends waits for the peer's delayed ACK (≈ 40 ms) before its
    /// second part leaves. Best effort: a socket that refuses it still works.
    package static func setNoDelay(_ fd: Int32) {
        _ = cl_set_int_option(fd, CL_IPPROTO_TCP, CL_TCP_NODELAY, 1)
    }

    /// Reads into `buffer`; `.done(0)` is end of stream.
    @inline(__always)
    package static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws -> IOResult<Int> {
        try nonBlockingSyscall("read") { Glibc.read(fd, buffer.baseAddress, buffer.count) }
    }

    @inline(__always)
    package static func write(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws -> IOResult<Int> {
        // send with MSG_NOSIGNAL: a peer that went away must be an EPIPE error, not a SIGPIPE.
        try nonBlockingSyscall("send") { Glibc.send(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL)) }
    }

    /// The next byte the peer sent, left in the socket for the next read; `.done(nil)` at the
    /// end of the stream.
    package static func peekByte(_ fd: Int32) throws -> IOResult<UInt8?> {
        var byte: UInt8 = 0
        switch try nonBlockingSyscall("recv(MSG_PEEK)", { Glibc.recv(fd, &byte, 1, Int32(MSG_PEEK)) }) {
        case .wouldBlock: return .wouldBlock
        case .done(let n): return .done(n == 1 ? byte : nil)
        }
    }

    /// Ends the sending direction (FIN); reading goes on. Best effort: a peer that is gone
    /// already needs no FIN.
    package static func shutdownWrite(_ fd: Int32) {
        _ = Glibc.shutdown(fd, Int32(SHUT_WR))
    }

    /// Gathers several buffers into one send (the request head as it arrived + added headers).
    package static func writev(_ fd: Int32, _ iov: UnsafeMutableBufferPointer<iovec>) throws -> IOResult<Int> {
        var message = msghdr()
        message.msg_iov = iov.baseAddress
        message.msg_iovlen = iov.count
        return try nonBlockingSyscall("sendmsg") { Glibc.sendmsg(fd, &message, Int32(MSG_NOSIGNAL)) }
    }

    /// Whether an idle connection can no longer carry a request: the peer closed it (EOF or a
    /// pending error) or sent bytes nobody asked for. A non-blocking peek; nothing is consumed.
    package static func idleConnectionIsDead(_ fd: Int32) -> Bool {
        var byte: UInt8 = 0
        while true {
            let n = Glibc.recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
            if n >= 0 { return true }
            if errno == EINTR { continue }
            return errno != EAGAIN && errno != EWOULDBLOCK
        }
    }

    package static func close(_ fd: Int32) {
        // close() must not be retried on EINTR on Linux: the descriptor is already released.
        _ = Glibc.close(fd)
    }
}
