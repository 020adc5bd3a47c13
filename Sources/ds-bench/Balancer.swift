import DSHTTPClient
import DSSystem
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A ds-lb an analysis talks to: one it started itself (`launch`, with local replicas, stopped by
/// PID in `stop`), or a running one given by `--url` (`attach`, never stopped). Main thread only,
/// except the log reader, which appends under a lock.
final class Balancer: @unchecked Sendable {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    let address: SocketAddress
    let port: UInt16
    private let process: Process?
    private let stateDir: String?
    /// ds-lb's stderr lines with the monotonic time each was read (ns), for the A-3 timeline.
    private let lines: Locked<[(at: UInt64, text: String)]>
    private var http: BlockingHTTPClient?

    private init(
        address: SocketAddress, process: Process?, stateDir: String?,
        lines: Locked<[(at: UInt64, text: String)]> = Locked([])
    ) {
        self.address = address
        port = address.port
        self.process = process
        self.stateDir = stateDir
        self.lines = lines
    }

    static func attach(_ url: TargetURL) -> Balancer {
        Balancer(address: url.address, process: nil, stateDir: nil)
    }

    /// Starts `ds-lb serve` on a free loopback port with `replicas` process replicas and a fresh
    /// state directory, and waits for its `Listening on` line.
    static func launch(binary: String, replicas: Int, hash: String, extra: [String] = []) throws -> Balancer {
        let stateDir = NSTemporaryDirectory() + "ds-bench-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: stateDir, withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments =
            [
                "serve", "--listen", "127.0.0.1:0", "--replicas", String(replicas), "--hash", hash,
                "--state-dir", stateDir, "--reset-state",
            ] + extra
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let lines = Locked<[(at: UInt64, text: String)]>([])
        let handle = pipe.fileHandleForReading
        Thread.detachNewThread {
            var pending = Data()
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                pending.append(chunk)
                while let newline = pending.firstIndex(of: 10) {
                    let text = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                    pending.removeSubrange(pending.startIndex...newline)
                    let now = Clock.now()
                    lines.withLock { $0.append((now, text)) }
                }
            }
        }
        let deadline = Clock.now() + 30_000_000_000
        while Clock.now() < deadline {
            if let line = lines.withLock({ $0.first { $0.text.contains("ds-lb Listening on ") } }) {
                let rest = line.text.components(separatedBy: "ds-lb Listening on ")[1]
                let text = String(rest.prefix { $0 != " " })
                return Balancer(address: try SocketAddress.parse(text), process: process, stateDir: stateDir, lines: lines)
            }
            if !process.isRunning { break }
            usleep(20_000)
        }
        let log = lines.withLock { $0.map(\.text).joined(separator: "\n") }
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        throw Failure(description: "ds-lb did not start (\(binary) \(process.arguments!.joined(separator: " "))):\n\(log)")
    }

    /// Whether ds-bench started it and reads its log.
    var hasLog: Bool { process != nil }

    /// The log so far (started balancers only).
    var log: [(at: UInt64, text: String)] {
        lines.withLock { $0 }
    }

    /// Waits for a log line containing `text` that was read after `after` (monotonic ns).
    func waitForLine(containing text: String, after: UInt64, timeout seconds: Double) -> UInt64? {
        let deadline = Clock.now() + UInt64(seconds * 1e9)
        while Clock.now() < deadline {
            if let hit = log.first(where: { $0.at >= after && $0.text.contains(text) }) { return hit.at }
            usleep(5_000)
        }
        return nil
    }

    /// SIGTERM, then SIGKILL after 15 s; removes the state directory. Only for launched ones.
    func stop() {
        guard let process else { return }
        if process.isRunning {
            kill(process.processIdentifier, SIGTERM)
            let deadline = Clock.now() + 15_000_000_000
            while process.isRunning && Clock.now() < deadline { usleep(20_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        if let stateDir { try? FileManager.default.removeItem(atPath: stateDir) }
    }

    // MARK: HTTP

    struct Response {
        var status: Int
        var body: String
        var json: [String: Any]? {
            (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any]
        }
    }

    /// One request on a fresh connection (Connection: close), 10 s timeout.
    func request(_ method: String, _ target: String, body: String? = nil) throws -> Response {
        let request = HTTPClientRequest(
            method: method, target: target, host: "\(address)",
            headers: body == nil ? [] : [("Content-Type", "application/json")],
            body: body.map { Array($0.utf8) }, keepAlive: false)
        let client = try adminClient()
        let response: HTTPClientResponse
        do { response = try client.send(request, timeout: .seconds(10)) } catch {
            switch error {
            case .connectFailed(let cause):
                throw Failure(description: "cannot reach ds-lb at \(address): \(String(cString: strerror(cause.errno)))")
            case .connectTimedOut: throw Failure(description: "cannot reach ds-lb at \(address): connect timed out")
            case .sendFailed(let cause):
                throw Failure(description: "cannot send to \(address): \(String(cString: strerror(cause.errno)))")
            default: throw Failure(description: "no answer from \(address) to \(method) \(target): \(error)")
            }
        }
        return Response(status: response.status, body: String(decoding: response.body, as: UTF8.self))
    }

    /// The shared blocking client, started on the first request.
    private func adminClient() throws -> BlockingHTTPClient {
        if let http { return http }
        do {
            let client = try BlockingHTTPClient(address: .tcp(address), threadName: "ds-bench-admin")
            http = client
            return client
        } catch {
            throw Failure(description: "cannot start an HTTP client for \(address): \(error)")
        }
    }

    /// `GET /status`'s `message` object.
    func status() throws -> [String: Any] {
        let r = try request("GET", "/status")
        guard r.status == 200, let message = r.json?["message"] as? [String: Any] else {
            throw Failure(description: "GET /status on \(address) answered \(r.status): \(r.body.prefix(200))")
        }
        return message
    }

    /// Replica name → served requests, from `/status`.
    func servedByReplica() throws -> [String: Int] {
        let replicas = try status()["replicas"] as? [[String: Any]] ?? []
        var result: [String: Int] = [:]
        for r in replicas { if let name = r["name"] as? String { result[name] = (r["requests"] as? Int) ?? 0 } }
        return result
    }

    /// `PATCH /weight` of one replica.
    func setWeight(_ weight: Int, of name: String) throws {
        let r = try request("PATCH", "/weight", body: "{\"hostnames\": [\"\(name)\"], \"weight\": \(weight)}")
        guard r.status == 200 else { throw Failure(description: "PATCH /weight answered \(r.status): \(r.body)") }
    }

    /// Scales the pool to `n` by `/add` (new names) or `/rm` of the named replicas.
    func scale(to n: Int) throws {
        let names = try status()["replicas"] as? [[String: Any]] ?? []
        if names.count < n {
            let r = try request("POST", "/add", body: "{\"n\": \(n - names.count)}")
            guard r.status == 200 else { throw Failure(description: "POST /add answered \(r.status): \(r.body)") }
        } else if names.count > n {
            let sorted = names.compactMap { $0["name"] as? String }.sorted { LoadReport.naturalLess($0, $1) }
            let victims = sorted.suffix(names.count - n).map { "\"\($0)\"" }.joined(separator: ", ")
            let r = try request("DELETE", "/rm", body: "{\"n\": \(names.count - n), \"hostnames\": [\(victims)]}")
            guard r.status == 200 else { throw Failure(description: "DELETE /rm answered \(r.status): \(r.body)") }
        }
    }
}
