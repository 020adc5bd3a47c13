import DSHTTP1
import DSReactor
import DSSystem

#if canImport(Glibc)
import Glibc
#endif

/// The response side of an exchange: the head parsed and relayed (rewritten), the body passed
/// on unchanged, replica → client, and the 101 that turns the connection into a tunnel. Loop
/// thread only.
extension UpstreamExchange {
    /// Reads the response and passes it to the client: the head rewritten (hop-by-hop fields
    /// out, our own `Connection` in), the body bytes unchanged.
    func forwardResponse(_ upstream: UpstreamConnection, _ client: ClientLease) -> Bool {
        var progressed = false
        while !client.closed && !upstream.closed && !ended {
            // 0. Our own bytes first: a 100 Continue, the response head as rewritten. Body
            // bytes already here go along in the same write when they are few (one syscall for
            // a small response, as when the head was relayed unchanged).
            if !client.output.isEmpty {
                // From here the relayed head may be on its way: too late to answer 502 instead.
                headOnlyQueued = false
                if readyForClient > 0 && client.output.readableCount + readyForClient <= Self.coalescedWriteLimit {
                    client.output.append(UnsafeRawBufferPointer(rebasing: upstream.input.readable[0..<readyForClient]))
                    upstream.input.consume(readyForClient)
                    readyForClient = 0
                }
                guard client.flushOutput() else { return progressed }
                progressed = true
            }
            // 1. Write what is ready.
            if readyForClient > 0 {
                // A client that fails mid-response can only be dropped (`writeToClient` does).
                switch client.writeBytesToClient(UnsafeRawBufferPointer(rebasing: upstream.input.readable[0..<readyForClient])) {
                case .wrote(let n):
                    upstream.input.consume(n)
                    readyForClient -= n
                    progressed = true
                    continue
                case .blocked: return progressed
                case .failed: return false
                }
            }
            // 2. Finished?
            if isResponseComplete(upstream) {
                finish(upstream, client)
                return true
            }
            // 3. Classify bytes already buffered.
            if upstream.input.readableCount > readyForClient {
                guard classifyResponseBytes(upstream, client) else { return false }
                if readyForClient > 0 || !client.output.isEmpty || isResponseComplete(upstream) { continue }
            }
            // 4. Read more from the replica: the rest of a large Content-Length body, or a large
            // chunk's data, by splice once everything buffered has gone to the client. Bytes
            // still in the pipe go first (even when all have been pulled from the replica: no
            // event would come for them).
            let buffered = readyForClient > 0 || !upstream.input.isEmpty || !client.output.isEmpty
            if let pipe = pipeToSplice(.response, bufferedBytesLeft: buffered, client) {
                return pumpSpliced(.response, upstream, pipe, client) || progressed
            }
            guard upstream.mayRead else { return progressed }
            do {
                switch try upstream.read() {
                case .wouldBlock:
                    return progressed
                case .done(0):
                    if !machine.responding {
                        if upstream.input.isEmpty {
                            upstreamFailed(upstream, reason: "connection closed before a response")
                        } else {
                            invalidResponse(upstream, .incompleteHead)
                        }
                        return false
                    }
                    if case .untilClose = framing { continue } // complete once flushed
                    // The replica closed mid-body: the client cannot get a complete response.
                    cutClient()
                    return false
                case .done:
                    // The request head stays in the client's input until the response head is
                    // known good: an invalid one may send the request to the next replica.
                    responseStarted = true
                    progressed = true
                }
            } catch {
                if !machine.responding && upstream.input.isEmpty {
                    upstreamFailed(upstream, reason: "\(error)")
                } else {
                    cutClient()
                }
                return false
            }
        }
        return progressed
    }

    /// Decides which newly buffered bytes belong to the response. False after an error reply.
    private func classifyResponseBytes(_ upstream: UpstreamConnection, _ client: ClientLease) -> Bool {
        if !machine.responding {
            // The head is parsed from the first byte not yet classified; `responseParseFrom` is
            // relative to that point, which stays put while earlier bytes go to the client.
            let unparsed = UnsafeRawBufferPointer(rebasing: upstream.input.readable[readyForClient...])
            switch worker.parser.parseResponseInfo(unparsed, from: responseParseFrom) {
            case .incomplete(let resume):
                responseParseFrom = resume
                return true
            case .failed(let error):
                invalidResponse(upstream, .invalidHead(error.message))
                return false
            case .complete(let responseHead):
                responseParseFrom = 0
                if responseHead.status == 101 {
                    return switchProtocols(upstream, responseHead, client)
                }
                if responseHead.status >= 100 && responseHead.status < 200 {
                    // Interim responses are passed on (`ContinueExpectation` says which); the
                    // final one follows.
                    if expectation.relaysInterim(status: responseHead.status, clientHTTP11: head.version == .http11) {
                        client.output.append(UnsafeRawBufferPointer(rebasing: upstream.input.readable[0..<responseHead.length]))
                        interimRelayed = true
                    }
                    upstream.input.consume(responseHead.length)
                    return true
                }
                switch Framing.response(responseHead, requestIsHead: head.isHead) {
                case .failure(let error):
                    invalidResponse(upstream, .invalidHead(error.message))
                    return false
                case .success(let framing):
                    releaseHeadFromInput(client)
                    perform(machine.handle(.responseHead(framing: framing, keepsConnection: responseHead.keepsConnection)))
                    closeAfterResponse = ExchangeEnding.closesClient(
                        clientAsked: closeClientAfter, framing: framing, draining: worker.draining)
                    relayHead(
                        responseHead, from: upstream, to: client,
                        connection: closeAfterResponse
                            ? Self.connectionClose
                            : head.version == .http10 ? Self.connectionKeepAlive : [])
                }
            }
        }
        let unclassified = upstream.input.readableCount - readyForClient
        guard unclassified > 0 else { return true }
        switch framing {
        case .none:
            return true
        case .contentLength:
            let take = Int(min(UInt64(unclassified), machine.responseRemaining))
            machine.responseBodyMoved(UInt64(take))
            readyForClient += take
        case .untilClose:
            readyForClient += unclassified
        case .chunked:
            let fresh = UnsafeRawBufferPointer(rebasing: upstream.input.readable[readyForClient...])
            do {
                switch try chunked.scan(fresh) {
                case .needMore: readyForClient += unclassified
                case .complete(let consumed): readyForClient += consumed
                }
            } catch {
                let error = ProxyError.invalidResponse(
                    replica: upstream.backend.name,
                    .invalidChunkedFraming((error as? HTTPParseError)?.message ?? "\(error)"))
                if headOnlyQueued {
                    // Nothing of the response has gone to the client yet: take the relayed head
                    // back and answer 502, as for an invalid head.
                    client.output.truncate(toReadable: outputBeforeHead)
                    fail(error)
                    return false
                }
                // Part of the response is already with the client: all we can do is cut both ends.
                worker.counters.count(error.kind)
                cutClient()
                return false
            }
        }
        return true
    }

    /// Up to this many bytes of head and body are copied into one write (a copy is cheaper than
    /// a second syscall).
    static let coalescedWriteLimit = 16 * 1024
    static let continueLine: [UInt8] = Array("\(HTTPStatus.continue.statusLine)\r\n\r\n".utf8)
    static let connectionClose: [UInt8] = Array("Connection: close\r\n".utf8)
    static let connectionKeepAlive: [UInt8] = Array("Connection: keep-alive\r\n".utf8)
    static let connectionUpgrade: [UInt8] = Array("Connection: Upgrade\r\n".utf8)

    /// Moves a response head from the replica's bytes to the client's output without its
    /// hop-by-hop fields (RFC 9110 §7.6.1), with our own `Connection` field: whether the client
    /// connection stays open is ours to say, not the replica's.
    private func relayHead(
        _ responseHead: ResponseHeadInfo, from upstream: UpstreamConnection, to client: ClientLease,
        connection: [UInt8], upgrading: Bool = false
    ) {
        let bytes = upstream.input.readable
        let output = client.output
        outputBeforeHead = output.readableCount
        headOnlyQueued = true
        HopByHop.forEachKeptResponseRange(of: responseHead, in: bytes, upgrading: upgrading) {
            output.append(UnsafeRawBufferPointer(rebasing: bytes[$0]))
        }
        client.output.append(connection)
        client.output.append(Self.crlf)
        upstream.input.consume(responseHead.length)
    }

    private static let crlf: [UInt8] = [13, 10]

    /// A 101: the replica switched protocols (RFC 9110 §15.2.2). Only an upgrade the client asked
    /// for is accepted; the connections then become a tunnel. False after an error reply.
    private func switchProtocols(
        _ upstream: UpstreamConnection, _ responseHead: ResponseHeadInfo, _ client: ClientLease
    ) -> Bool {
        guard ExchangeEnding.acceptsUpgrade(requested: head.connection.upgrade, requestBodyLeft: bodyRemaining > 0) else {
            invalidResponse(upstream, .unrequestedUpgrade)
            return false
        }
        tracked.take()?.end(answered: true, nanoseconds: monotonicNanoseconds() - trackedSince)
        releaseHeadFromInput(client)
        relayHead(responseHead, from: upstream, to: client, connection: Self.connectionUpgrade, upgrading: true)
        self.upstream = nil
        perform(machine.handle(.end))
        outcome = .upgraded(upstream)
        return false
    }

    private func isResponseComplete(_ upstream: UpstreamConnection) -> Bool {
        guard machine.responding, readyForClient == 0, (responsePipe?.buffered ?? 0) == 0 else { return false }
        switch framing {
        case .none: return true
        case .contentLength: return machine.responseRemaining == 0
        case .chunked: return chunked.isDone
        case .untilClose: return upstream.peerClosed && upstream.input.isEmpty
        }
    }

    func releaseHeadFromInput(_ client: ClientLease) {
        if !headConsumed {
            client.input.consume(head.length)
            headConsumed = true
        }
    }
}
