import DSHTTP1
import DSHTTPClient
import DSReactor

/// One engine call on the shared `HTTPClient`: the request as the engine gets it (a connection
/// of its own, `Connection: close`) and the client's errors in the engine's words, each naming
/// the call ("GET /v1.41/containers/json: ..."). Sendable: it only carries values to the loop.
struct EngineTransport: Sendable {
    let socketPath: String
    let method: String
    let target: String
    let timeout: Duration
    let connectTimeout: Duration

    static let maxBody = 64 * 1024 * 1024

    /// "GET /v1.41/containers/json", the query left out (it can be long, and says little).
    var label: String { "\(method) \(target.split(separator: "?").first ?? "")" }

    /// Loop thread only. A client per call: the engine gets a connection per call, so there is
    /// nothing to pool.
    func client(on loop: EventLoop) -> HTTPClient {
        HTTPClient(loop: loop, address: .unix(path: socketPath), options: options)
    }

    var options: HTTPClientOptions { HTTPClientOptions(maxBodyBytes: Self.maxBody, connectTimeout: connectTimeout) }

    func request(body: [UInt8]?) -> HTTPClientRequest {
        var headers: [(name: String, value: String)] = [("User-Agent", "ds-lb")]
        if body != nil { headers.append(("Content-Type", "application/json")) }
        return HTTPClientRequest(method: method, target: target, host: "docker", headers: headers, body: body, keepAlive: false)
    }

    @Sendable func error(_ error: HTTPClientError) -> DockerError {
        switch error {
        case .connectFailed(let cause): return .unreachable("cannot connect to \(socketPath): \(cause)")
        case .connectTimedOut: return .timedOut("cannot connect to \(socketPath) within \(Self.text(connectTimeout))")
        case .timedOut(let headReceived):
            return .timedOut("\(label): no \(headReceived ? "complete answer" : "answer") within \(Self.text(timeout))")
        case .sendFailed(let cause): return .unreachable("\(label): sending to \(socketPath): \(cause)")
        case .receiveFailed(let cause): return .unreachable("\(label): reading from \(socketPath): \(cause)")
        case .bodyTooLarge: return .protocolError("\(label): response larger than 64 MiB")
        default: return Self.answerError(error, label: "\(label): ")
        }
    }

    /// Seconds as a decimal, "2.0s" or "0.3s", as the timeout messages word them.
    static func text(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        return "\(Double(seconds) + Double(attoseconds) / 1e18)s"
    }

    /// The errors an answer itself can carry, as `DockerResponse.parse` reports them too.
    static func answerError(_ error: HTTPClientError, label: String) -> DockerError {
        switch error {
        case .malformedHead(let cause): return .protocolError("\(label)malformed response from the engine: \(cause)")
        case .badFraming(let cause): return .protocolError("\(label)bad response framing from the engine: \(cause)")
        case .malformedChunkedBody(let cause):
            return .protocolError("\(label)malformed chunked body from the engine: \(cause.message)")
        case .closedBeforeHead: return .protocolError("\(label)the engine closed the connection before a complete response head")
        case .bodyCutShort(let received, let expected?):
            return .protocolError("\(label)response body cut short: \(received) of \(expected) bytes")
        case .bodyCutShort: return .protocolError("\(label)chunked body cut short")
        default: return .protocolError("\(label)\(error)")
        }
    }
}

/// An engine stream (`/events`): a 200 answer's body split into lines as it arrives, until the
/// stream ends; any other status ends it with the engine's message. The head is bounded by the
/// call's timeout, the stream itself by nothing (it is meant to last). Loop thread only.
final class EngineStream {
    private let transport: EngineTransport
    private let onLine: ([UInt8]) -> Void
    private let onEnd: (DockerError) -> Void
    private var status = 0
    private var framing = BodyFraming.none
    /// The answer's body when it is not a 200 (the engine's error message).
    private var errorBody: [UInt8] = []
    private var lines = StreamLines()
    private var exchange: HTTPClientExchange?
    private var ended = false

    /// The engine's lines are small JSON objects: a runaway one is an error, not unbounded memory.

    init(transport: EngineTransport, onLine: @escaping ([UInt8]) -> Void, onEnd: @escaping (DockerError) -> Void) {
        self.transport = transport
        self.onLine = onLine
        self.onEnd = onEnd
    }

    func start(on loop: EventLoop) -> HTTPClientExchange {
        let exchange = transport.client(on: loop).stream(
            transport.request(body: nil), timeout: transport.timeout,
            onHead: { [self] in head($0) }, onBody: { [self] in body($0) },
            onEnd: { [self] in end($0) })
        self.exchange = exchange
        return exchange
    }

    private func head(_ head: HTTPClientResponseHead) {
        status = head.status
        framing = head.framing
        if status == 200 && framing == .none { finish(.protocolError("\(transport.label): the stream has no body")) }
    }

    private func body(_ bytes: [UInt8]) {
        guard status == 200 else {
            errorBody += bytes
            if errorBody.count > EngineTransport.maxBody {
                finish(.protocolError("\(transport.label): response larger than 64 MiB"))
            }
            return
        }
        lines.append(bytes)
        while let line = lines.next() {
            onLine(line)
            if ended { return }
        }
        if lines.isOverlong { finish(.protocolError("\(transport.label): a line longer than 1 MiB in the stream")) }
    }

    private func end(_ result: Result<Void, HTTPClientError>) {
        switch result {
        case .success where status == 200:
            finish(.unreachable("\(transport.label): the engine \(framing == .untilClose ? "closed" : "ended") the stream"))
        case .success:
            finish(.engine(status: status, message: DockerResponse(status: status, body: errorBody).engineMessage))
        case .failure(.bodyCutShort) where status == 200:
            finish(.unreachable("\(transport.label): the engine closed the stream"))
        case .failure(let error):
            finish(transport.error(error))
        }
    }

    /// Ends the stream with `error`, once: a stream cut off here is closed without its own `onEnd`.
    private func finish(_ error: DockerError) {
        guard !ended else { return }
        ended = true
        exchange?.cancel()
        exchange = nil
        onEnd(error)
    }
}
