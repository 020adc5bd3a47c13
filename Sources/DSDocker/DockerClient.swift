import DSHTTPClient
import DSReactor
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A Docker Engine API client over the engine's unix socket (HTTP/1.1, one connection per call,
/// `Connection: close`), on our own reactor: the client runs one `EventLoop` on a thread of its
/// own (a `BlockingHTTPClient`'s), every call is a non-blocking `HTTPClient` request on it, and
/// calls run concurrently. A slow or silent engine costs a timer, never a blocked thread
/// (docs/ARCHITECTURE.md §2).
///
/// Calls take a completion, called once on the client's loop thread; `wait` turns one into a
/// blocking call for code that runs before any loop (start-up, tests) — never call it from a
/// completion. Any thread otherwise; the client's own state is immutable.
package final class DockerClient: Sendable {
    package let socketPath: String
    /// The negotiated API version, e.g. "1.41"; every call is sent as `/v<version>/...`.
    package let apiVersion: String
    /// The engine's own version string (for logs).
    package let engineVersion: String
    /// Bounds connecting (a missing socket fails at once; a full backlog is retried until then).
    package let connectTimeout: Duration
    /// Owns the loop thread (stopped when the last client on it is gone) and blocks for `wait`.
    private let blocking: BlockingHTTPClient
    private var loop: EventLoop { blocking.loop }

    /// The newest API version whose behaviour for the calls we make we have read; a newer engine
    /// is spoken to in this version as long as it still accepts it (docs/version-history: 1.44
    /// moved MacAddress per endpoint and allows several EndpointsConfig entries at create, 1.52
    /// dropped `status`/`id`/`from` from events — none of it changes the fields we send or read).
    package static let newestKnown = APIVersion(1, 47)

    /// `DOCKER_HOST=unix:///path` when set, else /var/run/docker.sock.
    package static func defaultSocketPath() -> String {
        if let value = getenv("DOCKER_HOST") {
            let host = String(cString: value)
            if host.hasPrefix("unix://") { return String(host.dropFirst(7)) }
        }
        return "/var/run/docker.sock"
    }

    /// Starts the client's loop thread and negotiates the version with an unversioned
    /// `GET /version`. Blocks up to `timeout` (any thread but a loop's).
    package static func connect(
        socketPath: String = defaultSocketPath(), timeout: Duration = .seconds(5),
        connectTimeout: Duration = .seconds(2)
    ) throws -> DockerClient {
        let transport = EngineTransport(
            socketPath: socketPath, method: "GET", target: "/version", timeout: timeout,
            connectTimeout: min(connectTimeout, timeout))
        let blocking = try BlockingHTTPClient(
            address: .unix(path: socketPath), options: transport.options, threadName: "ds-lb-docker")
        let answer: HTTPClientResponse
        do { answer = try blocking.send(transport.request(body: nil), timeout: timeout) } catch { throw transport.error(error) }
        let response = DockerResponse(status: answer.status, body: answer.body)
        guard response.status == 200, let object = response.json as? [String: Any] else {
            throw DockerError.engine(status: response.status, message: response.engineMessage)
        }
        guard let serverText = object["ApiVersion"] as? String, let server = APIVersion(serverText) else {
            throw DockerError.protocolError("GET /version has no ApiVersion")
        }
        let minimum = (object["MinAPIVersion"] as? String).flatMap(APIVersion.init)
        let chosen = APIVersion.negotiate(ours: newestKnown, server: server, serverMinimum: minimum)
        return DockerClient(
            socketPath: socketPath, apiVersion: chosen.description,
            engineVersion: object["Version"] as? String ?? "unknown", connectTimeout: connectTimeout, blocking: blocking)
    }

    private init(
        socketPath: String, apiVersion: String, engineVersion: String, connectTimeout: Duration, blocking: BlockingHTTPClient
    ) {
        self.socketPath = socketPath
        self.apiVersion = apiVersion
        self.engineVersion = engineVersion
        self.connectTimeout = connectTimeout
        self.blocking = blocking
    }

    /// One call: `path` without the version prefix, `body` a JSON-serialisable value. `timeout`
    /// bounds the whole answer. Any thread; `completion` runs on the client's loop thread.
    package func request(
        _ method: String, _ path: String, query: [(String, String)] = [], body: Any? = nil,
        timeout: Duration = .seconds(10), completion: @escaping @Sendable (Result<DockerResponse, DockerError>) -> Void
    ) {
        var target = "/v\(apiVersion)\(path)"
        if !query.isEmpty {
            target += "?" + query.map { "\(Self.percentEncode($0.0))=\(Self.percentEncode($0.1))" }.joined(separator: "&")
        }
        let bytes: [UInt8]?
        do { bytes = try body.map { [UInt8](try JSONSerialization.data(withJSONObject: $0, options: .sortedKeys)) } } catch {
            return loop.execute { completion(.failure(.protocolError("request body is not JSON: \(error)"))) }
        }
        exchange(method, target, body: bytes, timeout: timeout, completion: completion)
    }

    /// Like `request`, but any status outside `accept` is a failure carrying the engine's message.
    package func call(
        _ method: String, _ path: String, query: [(String, String)] = [], body: Any? = nil, timeout: Duration = .seconds(10),
        accept: Set<Int>, completion: @escaping @Sendable (Result<DockerResponse, DockerError>) -> Void
    ) {
        request(method, path, query: query, body: body, timeout: timeout) { result in
            completion(
                result.flatMap { response in
                    accept.contains(response.status)
                        ? .success(response)
                        : .failure(.engine(status: response.status, message: response.engineMessage))
                })
        }
    }

    /// Runs `task` on the client's loop thread after `delay` (retries, backoff). Any thread.
    package func after(_ delay: Duration, _ task: @escaping @Sendable () -> Void) {
        let loop = self.loop
        loop.execute { loop.schedule(after: delay, task) }
    }

    /// Blocks the calling thread until the call `start` begins has completed. For start-up code
    /// and tests only: never on the client's loop thread (it would wait for itself).
    package func wait<T: Sendable>(_ start: (@escaping @Sendable (Result<T, DockerError>) -> Void) -> Void) throws -> T {
        try blocking.wait(start).get()
    }

    // MARK: transport

    func exchange(
        _ method: String, _ target: String, body: [UInt8]?, timeout: Duration,
        completion: @escaping @Sendable (Result<DockerResponse, DockerError>) -> Void
    ) {
        let loop = self.loop, transport = makeTransport(method, target, timeout: timeout)
        loop.execute {
            transport.client(on: loop).send(transport.request(body: body), timeout: timeout) { result in
                completion(result.map { DockerResponse(status: $0.status, body: $0.body) }.mapError(transport.error))
            }
        }
    }

    /// Opens a stream whose 200 body is read line by line (see `followContainerEvents`).
    func stream(
        _ target: String, timeout: Duration, onLine: @escaping @Sendable ([UInt8]) -> Void,
        onEnd: @escaping @Sendable (DockerError) -> Void
    ) -> StreamHandle {
        let handle = StreamHandle(loop: loop)
        let loop = self.loop, transport = makeTransport("GET", target, timeout: timeout)
        loop.execute {
            let reader = EngineStream(transport: transport, onLine: onLine, onEnd: onEnd)
            handle.attach(reader.start(on: loop))
        }
        return handle
    }

    private func makeTransport(_ method: String, _ target: String, timeout: Duration) -> EngineTransport {
        EngineTransport(
            socketPath: socketPath, method: method, target: target, timeout: timeout, connectTimeout: min(connectTimeout, timeout)
        )
    }

    /// RFC 3986 §2.3: everything but unreserved characters is percent-encoded.
    static func percentEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }
}

/// A stream in progress (`/events`): `cancel` closes it without calling its `onEnd`. Any thread.
package final class StreamHandle: @unchecked Sendable {
    // @unchecked: `exchange` is touched on the loop thread only (attach and cancel both hop there).
    private let loop: EventLoop
    private var exchange: HTTPClientExchange?
    private var cancelled = false

    init(loop: EventLoop) { self.loop = loop }

    func attach(_ exchange: HTTPClientExchange) {
        assert(loop.isInLoop)
        if cancelled { exchange.cancel() } else { self.exchange = exchange }
    }

    package func cancel() {
        loop.execute { [self] in
            cancelled = true
            exchange?.cancel()
            exchange = nil
        }
    }
}

/// An Engine API version, `major.minor`, ordered numerically (1.9 < 1.41).
package struct APIVersion: Comparable, Sendable, CustomStringConvertible {
    package let major: Int
    package let minor: Int

    package init(_ major: Int, _ minor: Int) {
        self.major = major
        self.minor = minor
    }

    package init?(_ text: String) {
        let parts = text.split(separator: ".")
        guard parts.count == 2, let major = Int(parts[0]), let minor = Int(parts[1]) else { return nil }
        self.init(major, minor)
    }

    package var description: String { "\(major).\(minor)" }

    package static func < (a: APIVersion, b: APIVersion) -> Bool { (a.major, a.minor) < (b.major, b.minor) }

    /// min(ours, the server's), but never below the server's minimum.
    package static func negotiate(ours: APIVersion, server: APIVersion, serverMinimum: APIVersion?) -> APIVersion {
        let chosen = Swift.min(ours, server)
        if let serverMinimum, chosen < serverMinimum { return serverMinimum }
        return chosen
    }
}
