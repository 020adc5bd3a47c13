// A raw-TCP replica whose answers a test scripts per request, with keep-alive: each connection
// reads request after request (Content-Length bodies skipped) and writes whatever the script
// returns, then keeps the connection open or closes it as told. It counts connections and how
// many of them ds-lb closed (EOF seen here), so a test can tell whether an upstream connection
// was dropped. `GET /heartbeat` always gets a small 200. Sockets carry SO_RCVTIMEO (30 s) so no
// thread can hang for ever; `stop()` shuts everything down.

#if canImport(Glibc)
import Glibc
#endif
import Foundation

final class ScriptedReplica: @unchecked Sendable {
    struct Request {
        let method: String
        let target: String
        let head: String
    }

    struct Reply {
        var bytes: [UInt8]
        /// Close the connection right after writing (`delay` seconds later, if set).
        var close = false
        var closeDelay: TimeInterval = 0

        init(_ text: String, close: Bool = false, closeDelay: TimeInterval = 0) {
            bytes = Array(text.utf8)
            self.close = close
            self.closeDelay = closeDelay
        }
    }

    let port: UInt16
    private let listenFD: Int32
    private let script: @Sendable (Request) -> Reply
    private let lock = NSLock()
    private var connections: [Int32] = []
    private var acceptedCount = 0
    private var closedByPeerCount = 0
    private var requestCount = 0
    private var stopped = false

    init(_ script: @escaping @Sendable (Request) -> Reply) throws {
        self.script = script
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw HTTPClientError(kind: .syscall(function: "socket", errno: errno)) }
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
        port = UInt16(bigEndian: local.sin_port)
        listenFD = fd
        let me = self
        Thread { me.acceptLoop() }.start()
    }

    /// Connections accepted so far (heartbeats included).
    var accepted: Int { lock.withLock { acceptedCount } }
    /// Connections ds-lb closed (EOF or reset seen by the replica before it closed them itself).
    var closedByPeer: Int { lock.withLock { closedByPeerCount } }
    /// Requests other than heartbeats answered so far.
    var requests: Int { lock.withLock { requestCount } }

    /// Waits until `condition` holds, up to `timeout` seconds.
    func wait(timeout: TimeInterval = 3, until condition: (ScriptedReplica) -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition(self) { return true }
            usleep(10_000)
        }
        return condition(self)
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
            Thread { [self] in serve(fd) }.start()
        }
    }

    private func serve(_ fd: Int32) {
        var closedHere = false
        defer {
            lock.withLock {
                connections.removeAll { $0 == fd }
                if !closedHere { closedByPeerCount += 1 }
            }
            Glibc.close(fd)
        }
        var tv = timeval(tv_sec: 30, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var pending: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        let terminator: [UInt8] = [13, 10, 13, 10]
        func fill() -> Bool {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { return false }
            pending.append(contentsOf: chunk[0..<n])
            return true
        }
        while true {
            var end: Int?
            while end == nil {
                if pending.count >= 4 {
                    for i in 0...(pending.count - 4) where pending[i] == 13 && Array(pending[i..<(i + 4)]) == terminator {
                        end = i + 4
                        break
                    }
                }
                if end == nil && !fill() { return }
            }
            let head = String(decoding: pending[0..<end!], as: UTF8.self)
            pending.removeFirst(end!)
            let requestLine = head.prefix { $0 != "\r" }.split(separator: " ")
            let method = requestLine.first.map(String.init) ?? ""
            let target = requestLine.count > 1 ? String(requestLine[1]) : ""
            var bodyLength = 0
            for line in head.components(separatedBy: "\r\n") where line.lowercased().hasPrefix("content-length:") {
                bodyLength = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) ?? 0
            }
            while pending.count < bodyLength { if !fill() { return } }
            pending.removeFirst(bodyLength)
            let reply: Reply
            if target == "/heartbeat" {
                reply = Reply("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            } else {
                lock.withLock { requestCount += 1 }
                reply = script(Request(method: method, target: target, head: head))
            }
            var sent = 0
            while sent < reply.bytes.count {
                let n = reply.bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n <= 0 { return }
                sent += n
            }
            if reply.close {
                if reply.closeDelay > 0 { usleep(UInt32(reply.closeDelay * 1_000_000)) }
                closedHere = true
                return
            }
        }
    }
}
