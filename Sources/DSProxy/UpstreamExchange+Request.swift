import DSHTTP1
import DSReactor
import DSSystem

#if canImport(Glibc)
import Glibc
#endif

/// The request side of an exchange: the head as it arrived (plus the proxy's fields), then the
/// body, client → replica. Loop thread only.
extension UpstreamExchange {
    /// Writes the head as it arrived, minus hop-by-hop fields, plus X-Forwarded-For and
    /// X-Forwarded-Proto, in one writev (docs/ARCHITECTURE.md §3): the kept bytes are never copied. The
    /// client's own X-Forwarded-* fields are left out unless it is a trusted proxy, and an
    /// absolute-form target goes out in origin-form with its authority as Host (HopByHop).
    func sendHead(_ upstream: UpstreamConnection, _ client: ClientLease) -> Bool {
        guard upstream.mayWrite else { return false }
        // One copy of the (large) head for the calls below: each call given the property would
        // be given a copy of its own, since a call could change it.
        let head = self.head
        let headBytes = client.input.readable
        // An upgrade request (Connection: upgrade) keeps its Upgrade field and says so again.
        let upgrading = head.connection.upgrade
        let trusted = client.trustsForwardedFields(of: head)
        // An HTTP/1.0 client's request goes out asking for keep-alive: the connection to the
        // replica is ours to reuse, whatever the client does with its own.
        let added = client.forwardedFields(
            upgrading: upgrading, http10: head.version == .http10,
            proto: !(trusted && head.forwarded.hasProto))
        let iov = worker.iovecs
        let sent: Int
        var total = 0
        do {
            sent = try added.withUnsafeBytes { extra -> Int in
                iov.removeAll()
                HopByHop.forEachForwardedPiece(
                    of: head, in: headBytes, upgrading: upgrading, replaceForwarded: !trusted,
                    routingFields: worker.config.routingFields
                ) {
                    iov.append($0)
                }
                iov.append(extra)
                total = iov.totalLength
                let n: Int
                switch try Socket.writev(upstream.fd, iov.buffer) {
                case .done(let written): n = written
                case .wouldBlock: n = 0
                }
                if n < total {
                    // Keep what the socket did not take; it goes out before anything else.
                    upstream.mayWrite = false
                    iov.forEachRemaining(after: n) { upstream.output.append($0) }
                }
                return n
            }
        } catch {
            upstreamFailed(upstream, reason: "\(error)")
            return false
        }
        _ = machine.handle(.headSent)
        if bodyRemaining > 0 || sent < total {
            client.input.consume(head.length)
            headConsumed = true
        }
        return true
    }

    /// Streams the request body from the client to the replica; returns whether bytes moved.
    /// Bytes buffered in `input` are written from there; the rest of a large Content-Length body,
    /// or the data of a large chunk, goes by splice (`pumpSpliced`), and the chunk framing around
    /// it is read and checked here as usual. When the body waits for client bytes, `bodyWant`
    /// says so and the connection reads them after the step.
    func sendBody(_ upstream: UpstreamConnection, _ client: ClientLease) -> Bool {
        let input = client.input
        var progressed = false
        while !client.closed && !upstream.closed && !ended {
            if !upstream.output.isEmpty {
                switch writeToSink(.request, upstream, client, { try upstream.output.write(to: $0) }) {
                case .moved: progressed = true; continue
                case .blocked: return progressed
                case .failed: return false
                }
            }
            guard bodyRemaining > 0 else { return progressed }
            if let pipe = pipeToSplice(.request, bufferedBytesLeft: !input.isEmpty, client) {
                return pumpSpliced(.request, upstream, pipe, client) || progressed
            }
            if input.isEmpty {
                bodyWant = .read
                return progressed
            }
            guard upstream.mayWrite else { return progressed }
            if requestChunks != nil && chunkReady == 0 {
                do {
                    switch try requestChunks!.scan(input.readable) {
                    case .needMore: chunkReady = input.readableCount
                    case .complete(let consumed): chunkReady = consumed
                    }
                } catch let error as HTTPParseError {
                    // Bad chunked framing: whatever reached the replica is cut off with it.
                    fail(.badRequest(error))
                    return false
                } catch {
                    cutClient()
                    return false
                }
                if chunkReady == 0 {
                    // Only the final CRLF of the trailer section was missing and has now come.
                    if requestChunks!.isDone { bodyRemaining = 0 }
                    continue
                }
            }
            let chunk =
                requestChunks != nil
                ? chunkReady : Int(min(UInt64(input.readableCount), bodyRemaining))
            switch writeToSink(
                .request, upstream, client, { try Socket.write($0, UnsafeRawBufferPointer(rebasing: input.readable[0..<chunk])) })
            {
            case .blocked: return progressed
            case .failed: return false
            case .moved(let n):
                input.consume(n)
                if requestChunks != nil {
                    chunkReady -= n
                    if chunkReady == 0 && requestChunks!.isDone { bodyRemaining = 0 }
                } else {
                    bodyRemaining -= UInt64(n)
                }
                progressed = true
            }
        }
        return progressed
    }
}
