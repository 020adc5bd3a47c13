// A raw-TCP replica that answers with canned bytes, for tests of what ds-lb does with responses
// no real server would send (invalid framing, smuggling shapes). It records every request head
// it received and whether ds-lb closed the connection after a canned answer. The sockets are
// RawTCPReplica's (3 s receive timeout); its threads only touch `state` under the lock.

import Foundation

final class FakeReplica: RawTCPReplica, @unchecked Sendable {
    /// What the replica saw on one connection that asked for a canned answer.
    struct Exchange {
        var closedByPeer = false
        var finished = false
    }

    private struct State {
        var canned: [String: (bytes: [UInt8], thenClose: Bool)] = [:]
        var exchanges: [String: Exchange] = [:]
        var paths: [String] = []
    }

    private let lock = NSLock()
    private var state = State()

    /// Listens on 127.0.0.1:0. `GET /heartbeat` gets a 200; `/reply/NAME` gets the bytes given to
    /// `setReply(NAME, ...)`; `/ok` a small 200 (keep-alive); anything else is read and never
    /// answered, so the only answer a client can get for it is ds-lb's own.
    init() throws {
        try super.init(receiveTimeout: 3)
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

    /// Bodies are not parsed: a canned answer ends the connection's use.
    override func serve(_ connection: Connection) {
        while let head = connection.readHead() {
            let parts = head.split(separator: " ", maxSplits: 2)
            let target = parts.count > 1 ? String(parts[1]) : ""
            let path = String(target.split(separator: "?", maxSplits: 1).first ?? "")
            if path == "/heartbeat" {
                connection.send(Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK".utf8))
                return
            }
            lock.withLock { state.paths.append(target) }
            if path == "/ok" {
                connection.send(Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".utf8))
                continue
            }
            if path.hasPrefix("/reply/") {
                let name = String(path.dropFirst("/reply/".count))
                guard let reply = lock.withLock({ state.canned[name] }) else { return }
                lock.withLock { state.exchanges[name] = Exchange() }
                connection.send(reply.bytes)
                if reply.thenClose { connection.shutdownWrite() }
                let closed = connection.readUntilEOF()
                lock.withLock { state.exchanges[name] = Exchange(closedByPeer: closed, finished: true) }
                return
            }
            _ = connection.readUntilEOF()
            return
        }
    }
}
