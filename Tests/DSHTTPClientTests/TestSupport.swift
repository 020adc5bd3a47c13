import DSHTTP1
import DSReactor
import DSSystem
import Dispatch
import Foundation
import XCTest

@testable import DSHTTPClient

#if canImport(Glibc)
import Glibc
#endif

/// A server for the client's tests, on 127.0.0.1 or a unix socket in a temporary directory:
/// each connection is served by `script` on a thread of its own with blocking calls (every read
/// bounded by a poll timeout, so nothing hangs), and counted.
final class ScriptedServer: @unchecked Sendable {
    /// One accepted connection, as the script sees it.
    final class Peer {
        let fd: Int32
        private var buffered: [UInt8] = []
        init(fd: Int32) { self.fd = fd }

        /// The next request's head and body (by Content-Length), or nil when the client closed.
        /// DSHTTP1's parser reads the head: the client's requests must pass the proxy's rules.
        /// `withBody: false` leaves the body unread (a server that answers early).
        func readRequest(seconds: Int32 = 10, withBody: Bool = true) -> (head: String, body: String)? {
            while true {
                let parsed = buffered.withUnsafeBytes { HeadParser().parseRequest($0) }
                if case .complete(let head) = parsed {
                    let end = head.length + (withBody ? Int(head.contentLength ?? 0) : 0)
                    if buffered.count >= end {
                        // The head without its blank line, as the tests compare it.
                        let text = String(decoding: buffered[..<(head.length - 4)], as: UTF8.self)
                        let body = String(decoding: buffered[head.length..<end], as: UTF8.self)
                        buffered.removeFirst(end)
                        return (text, body)
                    }
                } else if case .failed(let error) = parsed {
                    XCTFail("the client sent a malformed request: \(error)")
                    return nil
                }
                guard readMore(seconds: seconds) else { return nil }
            }
        }

        /// Reads and drops bytes until the client closes, or `seconds` pass without a byte.
        func waitForClose(seconds: Int32 = 10) {
            while readMore(seconds: seconds) {}
        }

        private func readMore(seconds: Int32) -> Bool {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, seconds * 1000) > 0 else { return false }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { return false }
            buffered += chunk[..<n]
            return true
        }

        func write(_ text: String) {
            let bytes = Array(text.utf8)
            _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
    }

    let address: HTTPClientAddress
    let accepted = Locked(0)
    private let fd: Int32
    private let script: @Sendable (Peer) -> Void
    private var unixDirectory: String?

    /// `unix`: listen on a socket in a fresh temporary directory instead of 127.0.0.1.
    init(unix: Bool = false, script: @escaping @Sendable (Peer) -> Void) throws {
        self.script = script
        if unix {
            let directory = NSTemporaryDirectory() + "/ds-lb-http-client-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            unixDirectory = directory
            let path = directory + "/server.sock"
            let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in raw.copyBytes(from: Array(path.utf8)) }
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            guard bound == 0, listen(listener, 16) == 0 else {
                throw SyscallError(errno: errno, function: "bind/listen(\(path))")
            }
            fd = listener
            self.address = .unix(path: path)
        } else {
            fd = try Socket.listen(on: .v4(ip: 0x7f00_0001, port: 0), backlog: 16)
            address = .tcp(try Socket.localAddress(fd))
        }
        // The listener is non-blocking from Socket.listen; the accept loop waits with poll.
        Thread { [self] in acceptLoop() }.start()
    }

    private func acceptLoop() {
        while true {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 30_000) > 0 else { return }
            let client = accept(fd, nil, nil)
            if client < 0 {
                if errno == EAGAIN || errno == EINTR { continue }
                return
            }
            // Blocking from here: the script's reads are bounded by poll.
            _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) & ~O_NONBLOCK)
            accepted.withLock { $0 += 1 }
            Thread { [self] in
                script(Peer(fd: client))
                close(client)
            }.start()
        }
    }

    func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        if let unixDirectory { try? FileManager.default.removeItem(atPath: unixDirectory) }
    }
}

/// An event loop on its own thread and a client on it. The client is created and used on the
/// loop thread only; the test thread waits for results with a timeout.
final class ClientHarness: @unchecked Sendable {
    let loop: EventLoop
    private var client: HTTPClient?
    private let exited = DispatchSemaphore(value: 0)

    init(address: HTTPClientAddress, options: HTTPClientOptions = HTTPClientOptions()) throws {
        let loop = try EventLoop()
        self.loop = loop
        let exited = self.exited
        LoopThread.start(name: "test-http-client") {
            loop.run()
            exited.signal()
        }
        onLoop { self.client = HTTPClient(loop: loop, address: address, options: options) }
    }

    /// Runs `body` on the loop thread with the client and waits for it.
    @discardableResult
    func onLoop<T>(_ body: @escaping () -> T) -> T {
        let result = Locked<T?>(nil)
        let done = DispatchSemaphore(value: 0)
        let box = UncheckedBox(body)
        loop.execute {
            let value = box.value()
            result.withLock { $0 = value }
            done.signal()
        }
        precondition(done.wait(timeout: .now() + 10) == .success, "the loop did not run the task")
        return result.withLock { $0! }
    }

    @discardableResult
    func withClient<T>(_ body: @escaping (HTTPClient) -> T) -> T { onLoop { body(self.client!) } }

    /// One whole exchange, waited for (up to `wait` seconds).
    func send(
        _ request: HTTPClientRequest, timeout: Duration = .seconds(10), wait: Double = 15
    ) -> Result<HTTPClientResponse, HTTPClientError>? {
        let result = Locked<Result<HTTPClientResponse, HTTPClientError>?>(nil)
        let done = DispatchSemaphore(value: 0)
        withClient { client in
            client.send(request, timeout: timeout) { outcome in
                result.withLock { $0 = outcome }
                done.signal()
            }
        }
        guard done.wait(timeout: .now() + wait) == .success else { return nil }
        return result.withLock { $0 }
    }

    func stop() {
        onLoop { self.client = nil }
        loop.stop()
        _ = exited.wait(timeout: .now() + 10)
    }
}

/// A bound socket that does not listen: connecting to its port is refused, and nobody else can
/// take the port meanwhile. `close()` at the test's end.
final class RefusingPort {
    let address: HTTPClientAddress
    private let fd: Int32

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            Glibc.close(fd)
            throw SyscallError(errno: errno, function: "bind(127.0.0.1:0)")
        }
        self.address = .tcp(.v4(ip: 0x7f00_0001, port: try Socket.localAddress(fd).port))
    }

    func close() { Glibc.close(fd) }
}

struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}

extension HTTPClientRequest {
    static func get(_ target: String, keepAlive: Bool = true) -> HTTPClientRequest {
        HTTPClientRequest(method: "GET", target: target, host: "test", keepAlive: keepAlive)
    }
}
