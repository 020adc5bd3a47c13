import DSHTTP1
import DSReactor
import DSSystem

/// One client connection to the replica: reads requests (pipelined ones included), answers them
/// in order, keeps the connection open unless the client or an error says otherwise.
final class ReplicaConnection: EventHandler {
    private let fd: Int32
    private unowned let server: ReplicaServer
    private let input = ByteBuffer(capacity: 4096)
    private let output = ByteBuffer(capacity: 4096)
    private var parseFrom = 0
    private var bodyToSkip: UInt64 = 0
    private var closeAfterFlush = false
    private var closed = false

    init(fd: Int32, server: ReplicaServer) {
        self.fd = fd
        self.server = server
    }

    func handle(_ events: IOEvents) {
        if events.contains(.readable) || events.contains(.readHangup) || events.contains(.hangup) {
            readAvailable()
        }
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
                // Pipelining is bounded: stop reading while answers pile up unsent.
                if output.readableCount > 256 * 1024 { flush(); if output.readableCount > 256 * 1024 { return } }
            }
        }
    }

    private func process() {
        while !closeAfterFlush {
            if bodyToSkip > 0 {
                let skip = Int(min(UInt64(input.readableCount), bodyToSkip))
                input.consume(skip)
                bodyToSkip -= UInt64(skip)
                if bodyToSkip > 0 { return }
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
                input.consume(head.length)
                switch Framing.request(head) {
                case .failure(let error):
                    output.append(ResponseWriter.failure(status: error.status, message: error.message, close: true))
                    closeAfterFlush = true
                case .success(let framing):
                    if case .contentLength(let length) = framing { bodyToSkip = length }
                    let keepAlive = head.wantsKeepAlive
                    output.append(server.respond(to: head, close: !keepAlive))
                    if !keepAlive { closeAfterFlush = true }
                }
            }
        }
    }

    private func flush() {
        while !output.isEmpty {
            do {
                guard case .done = try output.write(to: fd) else { return }
            } catch {
                close()
                return
            }
        }
        if closeAfterFlush { close() }
    }

    func close() {
        guard !closed else { return }
        closed = true
        server.loop.unregister(fd)
        Socket.close(fd)
        server.forget(self)
    }
}
