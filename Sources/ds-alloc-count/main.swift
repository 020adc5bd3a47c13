// ds-alloc-count: heap allocations per proxied request on a ds-lb worker thread, in steady state.
//
// Runs one worker in this process (the code ds-lb runs), an in-process replica and a blocking
// client; malloc and friends are wrapped by CAllocCounter, which counts only on the worker's
// thread. After a warm-up (buffers grown, upstream connections pooled, key bytes cached) it
// counts the allocations made while the client sends `--requests` small keep-alive requests of
// several shapes (plain GET, hop-by-hop fields, HTTP/1.0 keep-alive, a small POST body, long
// targets, header and cookie keys), and prints one line:
// `requests=N allocations=K per_request=K/N build=release|debug`.
// IntegrationTests/AllocationTests runs it and expects zero from a release build.
//
// Usage: ds-alloc-count [--requests N] [--warmup N] [--connections C] [--hash-key SPEC]
//        [--weights W1,W2,...] [--balance-factor C] [--trace]
// (--trace writes a backtrace of each counted allocation to stderr).

import CAllocCounter
import DSBalancer
import DSHashing
import DSProxy
import DSReactor
import DSSystem
import Foundation

#if canImport(Glibc)
import Glibc
#endif

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("ds-alloc-count: \(message)\n".utf8))
    exit(2)
}

var requests = 2000
var warmup = 1000
var connections = 4
var hashKey = KeyExtractor.default.description
var trace = false
var weights = [1]
var balanceFactor: Double?
var arguments = CommandLine.arguments.dropFirst()
while let argument = arguments.popFirst() {
    func value() -> String {
        guard let v = arguments.popFirst() else { fail("\(argument) needs a value") }
        return v
    }
    func number() -> Int {
        let v = value()
        guard let n = Int(v), n > 0 else { fail("\(argument): '\(v)' is not a positive number") }
        return n
    }
    switch argument {
    case "--requests": requests = number()
    case "--warmup": warmup = number()
    case "--connections": connections = number()
    case "--hash-key": hashKey = value()
    case "--trace": trace = true
    case "--weights":
        let v = value()
        let parsed = v.split(separator: ",", omittingEmptySubsequences: false).map { Int($0) }
        guard !parsed.isEmpty, parsed.allSatisfy({ $0.map { (1...HashMember.maxWeight).contains($0) } ?? false }) else {
            fail("--weights: '\(v)' is not a list of integers 1...\(HashMember.maxWeight)")
        }
        weights = parsed.compactMap { $0 }
    case "--balance-factor":
        let v = value()
        guard let c = Double(v), c >= 1, c <= 1000 else { fail("--balance-factor: '\(v)' is not a number 1...1000") }
        balanceFactor = c
    default:
        fail(
            "unknown argument '\(argument)' (use --requests, --warmup, --connections, --hash-key, --weights, --balance-factor, --trace)"
        )
    }
}

// MARK: replica: answers every request with a 2-byte body, keep-alive

func listenLoopback() -> (fd: Int32, port: UInt16) {
    do {
        let fd = try Socket.listen(on: try SocketAddress.parse("127.0.0.1:0"))
        return (fd, try Socket.localAddress(fd).port)
    } catch {
        fail("cannot listen on 127.0.0.1: \(error)")
    }
}

func setBlocking(_ fd: Int32) {
    let flags = fcntl(fd, F_GETFL)
    _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK)
}

/// Reads one message (head plus Content-Length body) from a blocking socket; false on EOF.
func readMessage(_ fd: Int32, _ buffer: inout [UInt8], _ pending: inout Int) -> Bool {
    while true {
        if let end = headEnd(buffer, pending) {
            let body = contentLength(buffer, end)
            if pending >= end + body {
                buffer.withUnsafeMutableBytes { raw in
                    _ = memmove(raw.baseAddress!, raw.baseAddress! + end + body, pending - end - body)
                }
                pending -= end + body
                return true
            }
        }
        if pending == buffer.count { buffer.append(contentsOf: repeatElement(0, count: buffer.count)) }
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + pending, $0.count - pending, 0) }
        if n <= 0 { return false }
        pending += n
    }
}

func headEnd(_ b: [UInt8], _ count: Int) -> Int? {
    guard count >= 4 else { return nil }
    for i in 3..<count where b[i] == 10 && b[i - 1] == 13 && b[i - 2] == 10 && b[i - 3] == 13 { return i + 1 }
    return nil
}

func contentLength(_ b: [UInt8], _ end: Int) -> Int {
    let head = String(decoding: b[0..<end], as: UTF8.self).lowercased()
    guard let range = head.range(of: "\r\ncontent-length:") else { return 0 }
    let digits = head[range.upperBound...].drop(while: { $0 == " " }).prefix(while: { $0.isNumber })
    return Int(digits) ?? 0
}

let replica = listenLoopback()
setBlocking(replica.fd)
Thread {
    while true {
        let fd = accept(replica.fd, nil, nil)
        if fd < 0 { continue }
        setBlocking(fd)
        Thread {
            var buffer = [UInt8](repeating: 0, count: 4096)
            var pending = 0
            let answer = Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".utf8)
            while readMessage(fd, &buffer, &pending) {
                _ = answer.withUnsafeBytes { send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
            }
            close(fd)
        }.start()
    }
}.start()

// MARK: the worker under test

let keyExtractor: KeyExtractor
do { keyExtractor = try KeyExtractor(parsing: hashKey) } catch { fail("\(error)") }
var config = ProxyConfig(adminAllow: ProxyConfig.defaultAdminAllow())
config.keyExtractor = keyExtractor
config.balanceFactor = balanceFactor
// With --weights, one member per weight, all served by the one replica: the weighted table and
// the weight-proportional caps are what the requests go through.
let snapshot = Snapshot(
    generation: 1,
    backends: weights.enumerated().map { index, weight in
        Backend(name: "server-\(index + 1)", number: index + 1, host: "127.0.0.1", port: replica.port, weight: weight)
    },
    algorithm: .rendezvous)
let publisher = SnapshotPublisher(initial: snapshot, workers: 1)
let front = listenLoopback()
let loop: EventLoop
do {
    loop = try Worker.start(
        index: 0, listenFD: front.fd, publisher: publisher, config: config, admin: nil,
        metrics: ProxyMetrics(), onUnreachable: { _ in })
} catch {
    fail("cannot start the worker: \(error)")
}
let enabled = DispatchSemaphore(value: 0)
loop.execute {
    alloc_counter_enable_this_thread()
    enabled.signal()
}
enabled.wait()

// MARK: client

let shapes: [[UInt8]] = [
    "GET /home?id=12345 HTTP/1.1\r\nHost: lb\r\n\r\n",
    "GET /a/rather/long/path/that/is/not/a/small/string?x=1&id=98765&y=2 HTTP/1.1\r\nHost: lb\r\nUser-Agent: ds-alloc-count\r\nAccept: */*\r\n\r\n",
    "GET /home?id=7 HTTP/1.1\r\nHost: lb\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nX-Kept: yes\r\n\r\n",
    "GET /home?id=8 HTTP/1.0\r\nHost: lb\r\nConnection: Keep-Alive\r\n\r\n",
    "POST /home?id=9 HTTP/1.1\r\nHost: lb\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello",
    "GET /home HTTP/1.1\r\nHost: lb\r\nX-User: alice\r\nCookie: theme=dark; session=abc123\r\n\r\n",
].map { Array($0.utf8) }

var sockets: [Int32] = []
for _ in 0..<connections {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = front.port.bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let rc = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    if rc != 0 { fail("cannot connect to the worker: \(String(cString: strerror(errno)))") }
    sockets.append(fd)
}
var buffers = [[UInt8]](repeating: [UInt8](repeating: 0, count: 4096), count: connections)
var pendings = [Int](repeating: 0, count: connections)

@MainActor func run(_ count: Int) {
    for i in 0..<count {
        let c = i % connections
        let shape = shapes[(i / connections) % shapes.count]
        let sent = shape.withUnsafeBytes { send(sockets[c], $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
        if sent != shape.count { fail("send failed: \(String(cString: strerror(errno)))") }
        if !readMessage(sockets[c], &buffers[c], &pendings[c]) { fail("the proxy closed connection \(c) after \(i) requests") }
    }
}

run(warmup)
alloc_counter_reset()
if trace { alloc_counter_set_tracing(1) }
run(requests)
alloc_counter_set_tracing(0)
let total = alloc_counter_total()
// Unoptimized code allocates where optimized code does not (generic code is not specialized,
// so values of generic type go through boxes): the count means something for release builds.
#if DEBUG
let build = "debug"
#else
let build = "release"
#endif
print(
    "requests=\(requests) allocations=\(total) per_request=\(String(format: "%.3f", Double(total) / Double(requests))) build=\(build)"
)
loop.stop()
exit(0)
