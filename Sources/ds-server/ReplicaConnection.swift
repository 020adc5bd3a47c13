import DSHTTP1
import DSReactor
import DSSystem

/// One client connection to the replica: reads requests (pipelined ones included), answers them
/// in order, keeps the connection open unless the client or an error says otherwise.
final class ReplicaConnection: EventHandler {
    /// The number for system calls; the descriptor is the loop's, closed by `close()`.
    private let fd: Int32
    private unowned let server: ReplicaServer
    private let input = ByteBuffer(capacity: 4096)
    private let output = ByteBuffer(capacity: 4096)
    private var parseFrom = 0
    private var bodyToSkip: UInt64 = 0
    /// Body bytes of an `/echo` request still to copy back.
    private var bodyToEcho: UInt64 = 0
    /// A chunked request body in progress (skipped, or echoed as it came for `/echo`).
    private var chunkedBody: ChunkedScanner?
    private var echoChunks = false
    /// A `/slow` answer is pending: later requests wait so answers stay in order.
    private var paused = false
    private var closeAfterFlush = false
    private var closed = false
    /// After `/ws-echo` switched protocols: every byte that arrives goes back as it came.
    private var echoingTunnel = false
    /// `/bytes` body still to produce. It is made a slice at a time as the socket takes it, so
    /// a client that asks for 64 MiB and does not read holds one slice here, not 64 MiB; later
    /// requests wait (answers stay in order).
    private var bytesToStream: UInt64 = 0

    init(fd: Int32, server: ReplicaServer) {
        self.fd = fd
        self.server = server
    }

    func handle(_ events: IOEvents) {
        // Edge-triggered: reading may have stopped early while answers piled up, so every event
        // (a writable edge included) first drains output, then resumes reading.
        flush()
        if !closed { readAvailable() }
        if !closed { flush() }
    }

    private func readAvailable() {
        while !closed && !closeAfterFlush {
            let result: IOResult<Int>
            do { result = try input.read(from: fd) } catch { close(); return }
            switch result {
            case .wouldBlock:
                return
            case .done(0):
                // The client finished sending; answer what it asked, then close.
                process()
                closeAfterFlush = true
                return
            case .done:
                process()
                // Pipelining is bounded: stop reading while answers pile up unsent, or while a
                // /bytes body streams (the requests behind it wait in `input`).
                if output.readableCount > 256 * 1024 || bytesToStream > 0 {
                    flush()
                    if output.readableCount > 256 * 1024 || bytesToStream > 0 { return }
                }
            }
        }
    }

    private func process() {
        while !closeAfterFlush && !paused && bytesToStream == 0 {
            if echoingTunnel {
                output.append(input.readable)
                input.consume(input.readableCount)
                return
            }
            if bodyToSkip > 0 {
                let skip = Int(min(UInt64(input.readableCount), bodyToSkip))
                input.consume(skip)
                bodyToSkip -= UInt64(skip)
                if bodyToSkip > 0 { return }
            }
            if bodyToEcho > 0 {
                let take = Int(min(UInt64(input.readableCount), bodyToEcho))
                output.append(UnsafeRawBufferPointer(rebasing: input.readable[0..<take]))
                input.consume(take)
                bodyToEcho -= UInt64(take)
                if bodyToEcho > 0 { return }
            }
            if chunkedBody != nil {
                guard !input.isEmpty else { return }
                let consumed: Int
                do {
                    switch try chunkedBody!.scan(input.readable) {
                    case .needMore: consumed = input.readableCount
                    case .complete(let n): consumed = n
                    }
                } catch let error as HTTPParseError {
                    output.append(ResponseWriter.failure(status: error.status, message: error.message, close: true))
                    closeAfterFlush = true
                    return
                } catch { return }
                if echoChunks { output.append(UnsafeRawBufferPointer(rebasing: input.readable[0..<consumed])) }
                input.consume(consumed)
                if chunkedBody!.isDone { chunkedBody = nil } else { return }
            }
            if input.isEmpty { return }
            switch server.parser.parseRequest(input.readable, from: parseFrom) {
            case .incomplete(let resume):
                parseFrom = resume
                return
            case .failed(let error):
                output.append(ResponseWriter.failure(status: error.status, message: error.message, close: true))
                closeAfterFlush = true
            case .complete(let head):
                parseFrom = 0
                let headBytes = head.path == "/debug/head" ? Array(input.readable[0..<head.length]) : []
                input.consume(head.length)
                switch Framing.request(head) {
                case .failure(let error):
                    output.append(ResponseWriter.failure(status: error.status, message: error.message, close: true))
                    closeAfterFlush = true
                case .success(let framing):
                    var length: UInt64 = 0
                    if case .contentLength(let n) = framing { length = n }
                    echoChunks = false
                    if framing == .chunked { chunkedBody = ChunkedScanner() }
                    let keepAlive = head.wantsKeepAlive
                    switch head.path {
                    case "/echo" where framing == .chunked:
                        // A chunked body comes back chunked, its chunks exactly as they came.
                        output.append(
                            Array(
                                "\(HTTPStatus.ok.statusLine)\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\(keepAlive ? "" : "Connection: close\r\n")\r\n"
                                    .utf8))
                        echoChunks = true
                    case "/echo":
                        // Test endpoint: the request body back, streamed, any size.
                        output.append(
                            ResponseWriter.head(
                                status: .ok, contentType: "application/octet-stream",
                                contentLength: length, close: !keepAlive))
                        bodyToEcho = length
                    case "/slow":
                        // Test endpoint: answers after ?ms= milliseconds (at most 60 s).
                        bodyToSkip = length
                        let ms = head.queryParameter("ms").flatMap { UInt64($0) }.map { min($0, 60_000) } ?? 1000
                        paused = true
                        let response = server.respond(to: head, close: !keepAlive, path: "/home")
                        server.loop.schedule(after: .milliseconds(ms)) { [weak self] in
                            guard let self, !self.closed else { return }
                            self.output.append(response)
                            self.paused = false
                            self.process()
                            self.flush()
                        }
                    case "/ws-echo" where head.connection.upgrade:
                        // Test endpoint: a WebSocket-style upgrade (no frames, no handshake key
                        // check); after the 101 every byte is echoed until the client closes.
                        bodyToSkip = length
                        output.append(
                            Array(
                                "\(HTTPStatus.switchingProtocols.statusLine)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
                                    .utf8))
                        echoingTunnel = true
                    case "/bytes":
                        // Test endpoint: a response of ?n= bytes (at most 64 MiB), for tests of
                        // large responses and slow readers.
                        bodyToSkip = length
                        let n = head.queryParameter("n").flatMap { Int($0) }.map { min(max($0, 0), 64 << 20) } ?? 0
                        output.append(
                            ResponseWriter.head(
                                status: .ok, contentType: "application/octet-stream",
                                contentLength: UInt64(n), close: !keepAlive))
                        bytesToStream = UInt64(n)
                    case "/debug/head":
                        // Test endpoint: the request head exactly as received.
                        bodyToSkip = length
                        output.append(
                            ResponseWriter.response(
                                status: .ok, contentType: "text/plain",
                                body: String(decoding: headBytes, as: UTF8.self), close: !keepAlive))
                    default:
                        bodyToSkip = length
                        output.append(server.respond(to: head, close: !keepAlive))
                    }
                    if !keepAlive { closeAfterFlush = true }
                }
            }
        }
    }

    private func flush() {
        while true {
            if bytesToStream > 0 && output.readableCount < Self.streamSlice.count {
                let take = Int(min(UInt64(Self.streamSlice.count), bytesToStream))
                Self.streamSlice.withUnsafeBytes { output.append(UnsafeRawBufferPointer(rebasing: $0[0..<take])) }
                bytesToStream -= UInt64(take)
                if bytesToStream == 0 {
                    // The body is all queued: requests that waited behind it go on.
                    process()
                }
            }
            if output.isEmpty { break }
            do {
                guard case .done = try output.write(to: fd) else { return }
            } catch {
                close()
                return
            }
        }
        if closeAfterFlush && !paused { close() }
    }

    /// One slice of the `/bytes` pattern ("0123456789abcdef" repeated). Its length is a multiple
    /// of 16, so slice after slice continues the pattern where the last one stopped.
    private static let streamSlice: [UInt8] = {
        let pattern = Array("0123456789abcdef".utf8)
        return (0..<(64 * 1024)).map { pattern[$0 & 15] }
    }()

    func close() {
        guard !closed else { return }
        closed = true
        server.loop.close(fd, of: self)
        server.forget(self)
    }
}
