#if canImport(Glibc)
import Glibc
#endif
import DSHTTP1
import DSReactor
import DSSystem

/// One request to the engine and its answer, on a unix-socket connection of its own driven by
/// the client's loop: connect, send, read the head with our HTTP/1 parser, then the body by its
/// framing (RFC 9112 §6.3) — whole, or line by line for a stream such as `/events`. Nothing here
/// blocks; a timer bounds the connect and another the whole answer (for a stream: its head).
///
/// Loop thread only. The loop's registration keeps the connection alive until it finishes;
/// every path ends in `finish`, which closes the socket and calls back exactly once.
final class EngineConnection: EventHandler {
    enum Handling {
        /// The whole answer, body de-chunked.
        case whole((Result<DockerResponse, DockerError>) -> Void)
        /// A 200 answer's body, line by line, until `onEnd`; any other status ends it with the
        /// engine's message.
        case lines(onLine: ([UInt8]) -> Void, onEnd: (DockerError) -> Void)
    }

    static let maxBody = 64 * 1024 * 1024

    private let loop: EventLoop
    private let socketPath: String
    private let method: String
    private let label: String
    private var output: [UInt8]
    private var written = 0
    private let handling: Handling
    private let timeout: Double
    private let connectTimeout: Double

    private var fd: Int32 = -1
    private var connected = false
    private var finished = false
    private var timer: TimerID?
    private var connectDeadline: UInt64 = 0

    private var input: [UInt8] = []
    private var head: ResponseHead?
    private var framing: BodyFraming = .none
    private var chunks = ChunkedDecoder()
    private var body: [UInt8] = []
    private var streaming = false

    init(loop: EventLoop, socketPath: String, method: String, target: String, body: [UInt8]?,
         timeout: Double, connectTimeout: Double, handling: Handling) {
        self.loop = loop
        self.socketPath = socketPath
        self.method = method
        self.label = "\(method) \(target.split(separator: "?").first ?? "")"
        self.timeout = timeout
        self.connectTimeout = min(connectTimeout, timeout)
        self.handling = handling
        var text = "\(method) \(target) HTTP/1.1\r\nHost: docker\r\nUser-Agent: ds-lb\r\nConnection: close\r\n"
        if let body {
            text += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n"
        } else if method == "POST" {
            text += "Content-Length: 0\r\n"
        }
        text += "\r\n"
        output = Array(text.utf8) + (body ?? [])
    }

    func start() {
        assert(loop.isInLoop)
        connectDeadline = monotonicNanoseconds() &+ Self.nanoseconds(connectTimeout)
        timer = loop.schedule(afterNanoseconds: Self.nanoseconds(connectTimeout)) { [self] in
            fail(.timedOut("cannot connect to \(socketPath) within \(connectTimeout)s"))
        }
        attemptConnect()
    }

    /// Ends the exchange without calling back (a stream nobody follows).
    func cancel() {
        assert(loop.isInLoop)
        guard !finished else { return }
        finished = true
        close()
    }

    private func attemptConnect() {
        guard !finished else { return }
        do {
            switch try UnixSocket.connect(path: socketPath) {
            case .connected(let fd):
                try adopt(fd)
                becameConnected()
            case .inProgress(let fd):
                try adopt(fd)
            case .busy:
                // Backlog full: retry until the connect timer fires.
                guard monotonicNanoseconds() < connectDeadline else { return fail(.unreachable("\(socketPath): the engine accepts no connection")) }
                loop.schedule(afterNanoseconds: 10_000_000) { [self] in attemptConnect() }
            }
        } catch {
            fail(.unreachable("cannot connect to \(socketPath): \(error)"))
        }
    }

    private func adopt(_ fd: Int32) throws {
        self.fd = fd
        try loop.register(fd, handler: self)
    }

    private func becameConnected() {
        connected = true
        if let timer { loop.cancel(timer) }
        // From here the call's own timeout bounds the answer (a stream: until its head).
        timer = loop.schedule(afterNanoseconds: Self.nanoseconds(timeout)) { [self] in
            fail(.timedOut("\(label): no \(head == nil ? "answer" : "complete answer") within \(timeout)s"))
        }
        flush()
    }

    func handle(_ events: IOEvents) {
        guard !finished else { return }
        if !connected {
            let err = Socket.connectResult(fd)
            guard err == 0 else { return fail(.unreachable("cannot connect to \(socketPath): \(String(cString: strerror(err)))")) }
            becameConnected()
            guard !finished else { return }
        } else if written < output.count {
            flush()
            guard !finished else { return }
        }
        readAvailable()
    }

    private func flush() {
        while written < output.count {
            do {
                let result = try output.withUnsafeBytes { raw in
                    try Socket.write(fd, UnsafeRawBufferPointer(rebasing: raw[written...]))
                }
                switch result {
                case .done(let n): written += n
                case .wouldBlock: return
                }
            } catch {
                return fail(.unreachable("\(label): sending to \(socketPath): \(error)"))
            }
        }
    }

    private func readAvailable() {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while !finished {
            let result: IOResult<Int>
            do {
                result = try buffer.withUnsafeMutableBytes { try Socket.read(fd, into: $0) }
            } catch {
                return fail(.unreachable("\(label): reading from \(socketPath): \(error)"))
            }
            switch result {
            case .wouldBlock:
                return
            case .done(0):
                return endOfStream()
            case .done(let n):
                do { try received(buffer[0..<n]) } catch let error as DockerError { return fail(error) } catch {
                    return fail(.protocolError("\(error)"))
                }
            }
        }
    }

    private func received(_ bytes: ArraySlice<UInt8>) throws {
        guard head != nil else {
            input.append(contentsOf: bytes)
            let parsed: HeadParseResult<ResponseHead> = input.withUnsafeBytes { HeadParser().parseResponse($0) }
            switch parsed {
            case .incomplete:
                return
            case .failed(let error):
                throw DockerError.protocolError("\(label): malformed response from the engine: \(error)")
            case .complete(let value):
                // 1xx answers are not expected from the engine for these calls; treat as final.
                self.head = value
                switch Framing.response(value, requestMethod: method) {
                case .success(let framing): self.framing = framing
                case .failure(let error): throw DockerError.protocolError("\(label): bad response framing: \(error)")
                }
                if case .lines = handling, value.status == 200 {
                    streaming = true
                    guard framing != .none else { throw DockerError.protocolError("\(label): the stream has no body") }
                    if let timer { loop.cancel(timer); self.timer = nil }
                }
                let rest = input[value.length...]
                input = []
                try receivedBody(rest)
            }
            return
        }
        try receivedBody(bytes)
    }

    private func receivedBody(_ bytes: ArraySlice<UInt8>) throws {
        var data: [UInt8] = []
        switch framing {
        case .chunked: try chunks.decodeEngineBody(bytes, into: &data, label: "\(label): ")
        default: data = Array(bytes)
        }
        if streaming {
            guard case .lines(let onLine, _) = handling else { return }
            body += data
            while let newline = body.firstIndex(of: 10) {
                let line = Array(body[..<newline])
                body.removeSubrange(...newline)
                onLine(line)
                if finished { return }
            }
            // The engine's lines are small JSON objects: a runaway one is an error, not unbounded memory.
            if body.count > 1024 * 1024 { return fail(.protocolError("\(label): a line longer than 1 MiB in the stream")) }
            if chunks.isDone { fail(.unreachable("\(label): the engine ended the stream")) }
            return
        }
        if case .contentLength(let length) = framing {
            data = Array(data.prefix(Int(length) - body.count))
        }
        body += data
        guard body.count <= Self.maxBody else { throw DockerError.protocolError("\(label): response larger than 64 MiB") }
        switch framing {
        case .none: complete()
        case .contentLength(let length): if body.count >= Int(length) { complete() }
        case .chunked: if chunks.isDone { complete() }
        case .untilClose: break
        }
    }

    private func endOfStream() {
        if head == nil { return fail(.protocolError("\(label): the engine closed the connection before a complete response head")) }
        if streaming { return fail(.unreachable("\(label): the engine closed the stream")) }
        switch framing {
        case .untilClose, .none: complete()
        case .contentLength(let length): fail(.protocolError("\(label): response body cut short: \(body.count) of \(length) bytes"))
        case .chunked: fail(.protocolError("\(label): chunked body cut short"))
        }
    }

    private func complete() {
        guard !finished, let head else { return }
        finished = true
        close()
        let response = DockerResponse(status: head.status, body: body)
        switch handling {
        case .whole(let done): done(.success(response))
        case .lines(_, let onEnd): onEnd(.engine(status: response.status, message: response.engineMessage))
        }
    }

    private func fail(_ error: DockerError) {
        guard !finished else { return }
        finished = true
        close()
        switch handling {
        case .whole(let done): done(.failure(error))
        case .lines(_, let onEnd): onEnd(error)
        }
    }

    private func close() {
        if let timer { loop.cancel(timer); self.timer = nil }
        guard fd >= 0 else { return }
        loop.unregister(fd)
        Socket.close(fd)
        fd = -1
    }

    static func nanoseconds(_ seconds: Double) -> UInt64 {
        UInt64(max(0, seconds) * 1_000_000_000)
    }
}
