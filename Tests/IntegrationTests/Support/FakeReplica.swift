// A raw-TCP replica that answers with canned bytes, for tests of what ds-lb does with responses
// no real server would send (invalid framing, smuggling shapes). It records every request head
// it received and whether ds-lb closed the connection after a canned answer.
// Its threads only touch `state` under the lock; sockets carry SO_RCVTIMEO so none can hang.

#if canImport(Glibc)
import Glibc
#endif
import Foundation

final class FakeReplica: @unchecked Sendable {
    /// What the replica saw on one connection that asked for a canned answer.
    struct Exchange {
        var closedByPeer = false
        var finished = false
    }

    private struct State {
        var canned: [String: (bytes: [UInt8], thenClose: Bool)] = [:]
        var exchanges: [String: Exchange] = [:]
        var paths: [String] = []
        var connections: [Int32] = []
        var stopped = false
    }

    let port: UInt16
    private let listenFD: Int32
    private let lock = NSLock()
    private var state = State()

    /// Listens on 127.0.0.1:0. `GET /heartbeat` gets a 200; `/reply/NAME` gets the bytes given to
    /// `setReply(NAME, ...)`; `/ok` a small 200 (keep-alive); anything else is read and never
    /// answered, so the only answer a client can get for it is ds-lb's own.
    init() throws {
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
        let me = self
        Thread { me.acceptLoop() }.start()
    }

    /// The bytes `/reply/NAME` answers with (written in one send, then the connection is
    /// watched for ds-lb closing it). `thenClose`: the replica shuts its side down after them.
    func setReply(_ name: String, _ bytes: [UInt8], thenClose: Bool = false) {
        lock.withLock { state.canned[name] = (bytes, thenClose) }
    }

    /// Every request target received, in order (heartbeats excluded).
    var paths: [String] { lock.withLock { state.paths } }

    /// Waits until the connection that got reply `name` has been closed by ds-lb (true) or
    /// `timeout` passed while it stayed open (false).
    func waitForClose(of name: String, timeout: TimeInterval = 3) -> Bool? {
        let deadline = Date().addingTimeInterval(timeout + 1)
        while Date() < deadline {
            if let exchange = lock.withLock({ state.exchanges[name] }), exchange.finished { return exchange.closedByPeer }
            usleep(10_000)
        }
        return lock.withLock { state.exchanges[name] }.map { $0.closedByPeer }
    }

    func stop() {
        let fds: [Int32] = lock.withLock {
            state.stopped = true
            return state.connections
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
                if !state.stopped { state.connections.append(fd) }
                return state.stopped
            }
            if stopped { Glibc.close(fd); return }
            Thread { [self] in serve(fd) }.start()
        }
    }

    private func serve(_ fd: Int32) {
        defer { Glibc.close(fd) }
        var tv = timeval(tv_sec: 3, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var pending: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        let terminator: [UInt8] = [13, 10, 13, 10]
        while true {
            // One request head (bodies are not parsed: a canned answer ends the connection's use).
            var end: Int?
            while end == nil {
                if pending.count >= 4 {
                    for i in 0...(pending.count - 4) where Array(pending[i..<(i + 4)]) == terminator { end = i + 4; break }
                }
                if end != nil { break }
                let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n <= 0 { return }
                pending.append(contentsOf: chunk[0..<n])
            }
            let head = String(decoding: pending[0..<end!], as: UTF8.self)
            pending.removeFirst(end!)
            let parts = head.split(separator: " ", maxSplits: 2)
            let target = parts.count > 1 ? String(parts[1]) : ""
            let path = String(target.split(separator: "?", maxSplits: 1).first ?? "")
            if path == "/heartbeat" {
                sendAll(fd, Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK".utf8))
                return
            }
            lock.withLock { state.paths.append(target) }
            if path == "/ok" {
                sendAll(fd, Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".utf8))
                continue
            }
            if path.hasPrefix("/reply/") {
                let name = String(path.dropFirst("/reply/".count))
                guard let reply = lock.withLock({ state.canned[name] }) else { return }
                lock.withLock { state.exchanges[name] = Exchange() }
                sendAll(fd, reply.bytes)
                if reply.thenClose { shutdown(fd, Int32(SHUT_WR)) }
                let closed = readUntilEOF(fd)
                lock.withLock { state.exchanges[name] = Exchange(closedByPeer: closed, finished: true) }
                return
            }
            _ = readUntilEOF(fd)
            return
        }
    }

    /// True when the peer closed (EOF or reset) before the 3 s receive timeout.
    private func readUntilEOF(_ fd: Int32) -> Bool {
        var sink = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let n = sink.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { continue }
            if n == 0 { return true }
            if errno == EINTR { continue }
            return errno == ECONNRESET
        }
    }

    private func sendAll(_ fd: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { if n < 0 && errno == EINTR { continue }; return }
            offset += n
        }
    }
}
