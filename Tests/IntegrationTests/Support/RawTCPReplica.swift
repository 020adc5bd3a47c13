// The raw-TCP plumbing of the test replicas that must send bytes no real server would
// (FakeReplica: canned answers for the smuggling corpus; ScriptedReplica: scripted answers for
// the proxy tests): it listens on 127.0.0.1:0, accepts on its own thread and runs a subclass's
// `serve(_:)` on a thread per connection. `stop()` shuts the listener and every open connection
// down, which ends those threads. Sockets carry SO_RCVTIMEO so no thread can hang for ever.
// Its threads only touch the connection list under the lock.

import Foundation

#if canImport(Glibc)
import Glibc
#endif

class RawTCPReplica: @unchecked Sendable {
    /// One accepted connection, used by the one thread that serves it; closed when `serve` returns.
    final class Connection {
        let fd: Int32
        /// Bytes received and not yet taken as a head or skipped as a body.
        private var pending: [UInt8] = []
        /// How far `pending` is known to hold no head terminator.
        private var scanned = 0
        private var chunk = [UInt8](repeating: 0, count: 16 * 1024)

        fileprivate init(fd: Int32) { self.fd = fd }

        /// The next request head through its empty line, as text (bodies are the caller's:
        /// `skip` them); nil when the peer closed, reset or the receive timeout passed first.
        func readHead() -> String? {
            while true {
                if pending.count >= 4 {
                    for i in scanned...(pending.count - 4)
                    where pending[i] == 13 && pending[i + 1] == 10 && pending[i + 2] == 13 && pending[i + 3] == 10 {
                        let head = String(decoding: pending[0..<(i + 4)], as: UTF8.self)
                        pending.removeFirst(i + 4)
                        scanned = 0
                        return head
                    }
                    scanned = pending.count - 3
                }
                guard fill() else { return nil }
            }
        }

        /// Drops `count` bytes of body; false when the connection ended first.
        func skip(_ count: Int) -> Bool {
            while pending.count < count { if !fill() { return false } }
            pending.removeFirst(count)
            scanned = 0
            return true
        }

        /// Writes all of `bytes`; false when the connection broke first.
        @discardableResult
        func send(_ bytes: [UInt8]) -> Bool {
            var offset = 0
            while offset < bytes.count {
                let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return false }
                offset += n
            }
            return true
        }

        /// Ends the replica's side (the peer reads EOF) and keeps reading.
        func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }

        /// Reads until the peer closes; true when it did (EOF or reset) before the receive timeout.
        func readUntilEOF() -> Bool {
            while true {
                let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n > 0 { continue }
                if n == 0 { return true }
                if errno == EINTR { continue }
                return errno == ECONNRESET
            }
        }

        private func fill() -> Bool {
            while true {
                let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return false }
                pending.append(contentsOf: chunk[0..<n])
                return true
            }
        }
    }

    let port: UInt16
    private let listenFD: Int32
    private let receiveTimeout: Int
    private let lock = NSLock()
    private var connections: [Int32] = []
    private var acceptedCount = 0
    private var closedCount = 0
    private var stopped = false

    /// Listens on 127.0.0.1:0 and starts accepting; every connection's reads time out after
    /// `receiveTimeout` seconds.
    init(receiveTimeout: Int) throws {
        self.receiveTimeout = receiveTimeout
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw HTTPClientError(kind: .syscall(function: "socket", errno: errno)) }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = try SocketAddress.ipv4("127.0.0.1", port: 0)
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 128) == 0 else {
            let err = errno
            Glibc.close(fd)
            throw HTTPClientError(kind: .syscall(function: "bind/listen", errno: err))
        }
        var local = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        listenFD = fd
        port = UInt16(bigEndian: local.sin_port)
        // A subclass's stored properties are set before it calls this init, so `serve` may run.
        let me = self
        Thread { me.acceptLoop() }.start()
    }

    /// Connections accepted so far (heartbeats included).
    var accepted: Int { lock.withLock { acceptedCount } }
    /// Connections closed on this side so far (after `serve` returned), heartbeats included.
    var closed: Int { lock.withLock { closedCount } }

    /// What the replica does with one connection, on that connection's own thread; the
    /// connection is closed when it returns. Every subclass overrides it.
    func serve(_ connection: Connection) {
        preconditionFailure("\(type(of: self)) does not override serve(_:)")
    }

    func stop() {
        let fds: [Int32] = lock.withLock {
            stopped = true
            return connections
        }
        shutdown(listenFD, Int32(SHUT_RDWR))
        for fd in fds { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    deinit { Glibc.close(listenFD) }

    private func acceptLoop() {
        while true {
            let fd = accept(listenFD, nil, nil)
            if fd < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return
            }
            let stopped: Bool = lock.withLock {
                if !self.stopped {
                    connections.append(fd)
                    acceptedCount += 1
                }
                return self.stopped
            }
            if stopped { Glibc.close(fd); return }
            Thread { [self] in run(fd) }.start()
        }
    }

    private func run(_ fd: Int32) {
        var tv = timeval(tv_sec: receiveTimeout, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        serve(Connection(fd: fd))
        // Off the list before the close, so `stop()` never shuts down a number reused since.
        lock.withLock { connections.removeAll { $0 == fd } }
        Glibc.close(fd)
        lock.withLock { closedCount += 1 }
    }
}
