import DSHTTP1
import DSReactor
import DSSystem

#if canImport(Glibc)
import Glibc
#endif

/// The body path both directions share: the sink a body's bytes are written to (from a buffer
/// or from a pipe), and the splice(2) pump that moves a body's bytes socket → pipe → socket
/// without copying them into user space (docs/ARCHITECTURE.md §3). Loop thread only.
///
/// What splices: the rest of a Content-Length body of at least `config.spliceThreshold` bytes
/// once the bytes buffered with its head have gone, and the data of a chunk of a chunked body
/// that has at least that many bytes left once everything buffered has gone. The chunk framing
/// (size lines, extensions, CRLFs, trailers and the `--max-body-size` count, which a size line
/// is checked against before any byte of its chunk moves) is still read into the buffer and
/// checked by the `ChunkedScanner`; only the data bytes the scanner already knows to expect
/// are spliced, exactly that many, and the scanner is told they went by (`skipData`).
extension UpstreamExchange {
    /// Which way a body moves: the request's client → replica, the response's replica → client.
    enum BodyDirection {
        case request
        case response
    }

    /// What one attempt to move body bytes did: moved some (`n`, where the caller needs it),
    /// could not now (the side's readiness flag is cleared; an event will come), or ended the
    /// exchange or connection (the failure is already handled).
    enum BodyStep {
        case moved(Int)
        case blocked
        case failed
    }

    /// One write of body bytes to the direction's sink (the replica for a request, the client
    /// for a response) by `write`, given the sink's descriptor; the sink's readiness and what a
    /// failed write means are handled here. (The closure does not escape: nothing allocated.)
    @inline(__always)
    func writeToSink(
        _ direction: BodyDirection, _ upstream: UpstreamConnection, _ client: ClientLease,
        _ write: (Int32) throws -> IOResult<Int>
    ) -> BodyStep {
        guard direction == .request else {
            // A client that fails mid-response can only be dropped (`writeToClient` does).
            switch client.writeToClient(write) {
            case .wrote(let n): return .moved(n)
            case .blocked: return .blocked
            case .failed: return .failed
            }
        }
        guard upstream.mayWrite else { return .blocked }
        do {
            switch try write(upstream.fd) {
            case .wouldBlock:
                upstream.mayWrite = false
                return .blocked
            case .done(let n):
                return .moved(n)
            }
        } catch {
            // A replica that fails mid-request gets the request's usual failure handling.
            upstreamFailed(upstream, reason: "\(error)")
            return .failed
        }
    }

    /// The pipe to splice `direction`'s body through now, or nil for the buffered path: the one
    /// still holding bytes (they go before anything else), else a pipe if nothing is buffered
    /// (`bufferedBytesLeft`) and enough is left to pull (`spliceBudget`), or a splice of it is
    /// already under way.
    func pipeToSplice(_ direction: BodyDirection, bufferedBytesLeft: Bool, _ client: ClientLease) -> SplicePipe? {
        // The pipe is read from its property at each step rather than held in a local across
        // the checks: the usual answer, nil, then costs no retain and release of it.
        if pipeBuffered(direction) > 0 { return direction == .request ? requestPipe : responsePipe }
        guard !bufferedBytesLeft, client.canSplice, let threshold = worker.config.spliceThreshold else { return nil }
        let budget = spliceBudget(direction)
        let underWay = direction == .request ? splicingRequest : splicingResponse
        guard budget > 0, underWay || budget >= threshold,
            let pipe = (direction == .request ? requestPipe : responsePipe) ?? makePipe()
        else { return nil }
        if direction == .request {
            requestPipe = pipe
            splicingRequest = true
        } else {
            responsePipe = pipe
            splicingResponse = true
        }
        return pipe
    }

    /// The bytes `direction`'s pipe holds (0 without a pipe).
    @inline(__always)
    func pipeBuffered(_ direction: BodyDirection) -> Int {
        switch direction {
        case .request: return requestPipe?.buffered ?? 0
        case .response: return responsePipe?.buffered ?? 0
        }
    }

    /// Bytes of `direction`'s body that may be pulled into its (empty) pipe: the rest of a
    /// Content-Length body, or the rest of the data of the chunk the scanner is in (0 while it
    /// reads framing).
    func spliceBudget(_ direction: BodyDirection) -> UInt64 {
        switch direction {
        case .request:
            if let requestChunks { return requestChunks.dataRemaining }
            return bodyRemaining
        case .response:
            switch framing {
            case .contentLength: return machine.responseRemaining
            case .chunked: return chunked.dataRemaining
            case .none, .untilClose: return 0
            }
        }
    }

    /// Moves `direction`'s body from its source socket to its sink's through `pipe`: drains the
    /// pipe, then pulls at most the budget into it, until both are spent (true: the buffered
    /// path goes on with what follows, the next chunk's framing or the end) or a side blocks
    /// (whether bytes moved) or fails (false).
    func pumpSpliced(
        _ direction: BodyDirection, _ upstream: UpstreamConnection, _ pipe: SplicePipe, _ client: ClientLease
    ) -> Bool {
        var progressed = false
        while !client.closed && !upstream.closed && !ended {
            if pipe.buffered > 0 {
                switch writeToSink(direction, upstream, client, { try pipe.drain(to: $0) }) {
                case .moved(let n):
                    spliced(direction, drained: n)
                    progressed = true
                    continue
                case .blocked: return progressed
                case .failed: return false
                }
            }
            let budget = spliceBudget(direction)
            guard budget > 0 else {
                if direction == .request { splicingRequest = false } else { splicingResponse = false }
                return true
            }
            let limit = Int(min(budget, 1 << 20))
            if direction == .request {
                // The client's socket is the connection's to read: it fills the pipe after the
                // step and reports what came (`requestBodySpliced`).
                bodyWant = .splice(pipe, limit: limit)
                return progressed
            }
            // The pipe is empty here, so what it holds after a fill is what the fill moved.
            switch fillPipe(upstream, pipe, limit: limit) {
            case .moved:
                spliced(direction, pulled: UInt64(pipe.buffered))
                progressed = true
            case .blocked: return progressed
            case .failed: return false
            }
        }
        return progressed
    }

    /// One splice from the replica's socket into the empty `pipe` (a response body).
    private func fillPipe(_ upstream: UpstreamConnection, _ pipe: SplicePipe, limit: Int) -> BodyStep {
        guard upstream.mayRead else { return .blocked }
        do {
            switch try upstream.read(into: pipe, limit: limit) {
            case .wouldBlock:
                return .blocked
            case .done(0):
                // The replica closed mid-body: the client cannot get a complete response.
                cutClient()
                return .failed
            case .done(let n):
                return .moved(n)
            }
        } catch {
            cutClient()
            return .failed
        }
    }

    /// Counts `n` bytes pulled into the pipe: off the Content-Length response's rest, or off the
    /// chunk's data in the scanner (which did not see them). A Content-Length request counts
    /// when the bytes reach the replica instead (`bodyRemaining` also says whether the replica
    /// got the whole body, see `finish`).
    func spliced(_ direction: BodyDirection, pulled n: UInt64) {
        switch direction {
        case .request:
            requestChunks?.skipData(n)
        case .response:
            if case .chunked = framing { chunked.skipData(n) } else { machine.responseBodyMoved(n) }
        }
    }

    /// Counts `n` bytes spliced to the sink.
    private func spliced(_ direction: BodyDirection, drained n: Int) {
        worker.counters.countSpliced(request: direction == .request, bytes: n)
        guard direction == .request, requestChunks == nil else { return }
        bodyRemaining -= UInt64(n)
    }

    /// A pipe for splicing, or nil (then the body goes through the buffers as usual).
    private func makePipe() -> SplicePipe? {
        try? SplicePipe()
    }
}
