// A raw-TCP replica whose answers a test scripts per request, with keep-alive: each connection
// reads request after request (Content-Length bodies skipped) and writes whatever the script
// returns, then keeps the connection open or closes it as told. It counts connections and how
// many of them ds-lb closed (EOF seen here), so a test can tell whether an upstream connection
// was dropped. `GET /heartbeat` always gets a small 200. The sockets are RawTCPReplica's (30 s
// receive timeout); `stop()` shuts everything down.

import Foundation

final class ScriptedReplica: RawTCPReplica, @unchecked Sendable {
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

    private let script: @Sendable (Request) -> Reply
    private let lock = NSLock()
    private var closedByPeerCount = 0
    private var requestCount = 0

    init(_ script: @escaping @Sendable (Request) -> Reply) throws {
        self.script = script
        try super.init(receiveTimeout: 30)
    }

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

    override func serve(_ connection: Connection) {
        var closedHere = false
        defer { if !closedHere { lock.withLock { closedByPeerCount += 1 } } }
        while let head = connection.readHead() {
            let requestLine = head.prefix { $0 != "\r" }.split(separator: " ")
            let method = requestLine.first.map(String.init) ?? ""
            let target = requestLine.count > 1 ? String(requestLine[1]) : ""
            var bodyLength = 0
            for line in head.components(separatedBy: "\r\n") where line.lowercased().hasPrefix("content-length:") {
                bodyLength = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) ?? 0
            }
            guard connection.skip(bodyLength) else { return }
            let reply: Reply
            if target == "/heartbeat" {
                reply = Reply("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            } else {
                lock.withLock { requestCount += 1 }
                reply = script(Request(method: method, target: target, head: head))
            }
            guard connection.send(reply.bytes) else { return }
            if reply.close {
                if reply.closeDelay > 0 { usleep(UInt32(reply.closeDelay * 1_000_000)) }
                closedHere = true
                return
            }
        }
    }
}
