import DSHTTP1

/// Reads one response from the bytes of a connection: the head with DSHTTP1's strict parser
/// (interim 1xx heads skipped), then the body by its framing (RFC 9112 §6.3) — Content-Length,
/// chunked through `ChunkedDecoder`, or until the peer closes. Pure: the connection feeds it
/// what it reads, and `DockerResponse.parse` a whole answer.
package struct HTTPResponseDecoder {
    private let parser: HeadParser
    private let requestMethod: String
    /// The final head, once parsed.
    package private(set) var head: HTTPClientResponseHead?
    /// Whether the server keeps the connection after this response (valid once `head` is set).
    package private(set) var keepsConnection = false
    package private(set) var bodyReceived: UInt64 = 0
    package private(set) var isComplete = false
    private var chunks = ChunkedDecoder()

    package init(requestMethod: String, limits: HTTPLimits = HTTPLimits()) {
        parser = HeadParser(limits: limits)
        self.requestMethod = requestMethod
    }

    /// Decodes what it can of `bytes`, appending body data to `body`, and returns how many bytes
    /// it used: none while the head is incomplete (the caller keeps them and offers them again
    /// with more), and never any past the end of the response (bytes left over then are not
    /// ours: a connection holding them cannot be reused).
    package mutating func decode(_ bytes: UnsafeRawBufferPointer, body: inout [UInt8]) throws(HTTPClientError) -> Int {
        var used = 0
        while head == nil {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[used...])
            switch parser.parseResponse(rest) {
            case .incomplete:
                return used
            case .failed(let error):
                throw .malformedHead(error)
            case .complete(let parsed):
                used += parsed.length
                // An interim answer (100 Continue, 103 Early Hints) is followed by the real one.
                if (100..<200).contains(parsed.status) && parsed.status != 101 { continue }
                let framing: BodyFraming
                switch Framing.response(parsed, requestMethod: requestMethod) {
                case .success(let value): framing = value
                case .failure(let error): throw .badFraming(error)
                }
                let headers = parsed.fields.map { ($0.name(in: rest), $0.value(in: rest)) }
                head = HTTPClientResponseHead(status: parsed.status, headers: headers, framing: framing)
                // A 101 hands the connection to another protocol: nothing more of it is HTTP.
                keepsConnection = parsed.keepsConnection && parsed.status != 101
                if framing == .none { isComplete = true }
            }
        }
        guard !isComplete, let framing = head?.framing else { return used }
        let rest = UnsafeRawBufferPointer(rebasing: bytes[used...])
        switch framing {
        case .none:
            isComplete = true
        case .contentLength(let length):
            let take = Int(min(UInt64(rest.count), length - bodyReceived))
            body.append(contentsOf: UnsafeRawBufferPointer(rebasing: rest[..<take]))
            bodyReceived += UInt64(take)
            used += take
            if bodyReceived == length { isComplete = true }
        case .chunked:
            let before = body.count
            let outcome: ChunkedScanner.Outcome
            do { outcome = try chunks.decode(rest, into: &body) } catch {
                throw .malformedChunkedBody(error as? HTTPParseError ?? HTTPParseError(.badGateway, "\(error)"))
            }
            bodyReceived += UInt64(body.count - before)
            switch outcome {
            case .complete(let consumed):
                used += consumed
                isComplete = true
            case .needMore:
                used += rest.count
            }
        case .untilClose:
            body.append(contentsOf: rest)
            bodyReceived += UInt64(rest.count)
            used += rest.count
        }
        return used
    }

    /// The peer closed the connection: the end of an until-close body, an error otherwise.
    package mutating func endOfInput() throws(HTTPClientError) {
        if isComplete { return }
        guard let head else { throw .closedBeforeHead }
        switch head.framing {
        case .untilClose, .none: isComplete = true
        case .contentLength(let length): throw .bodyCutShort(received: bodyReceived, expected: length)
        case .chunked: throw .bodyCutShort(received: bodyReceived, expected: nil)
        }
    }

    /// Decodes a whole response read until the peer closed (a test's, or a recorded answer).
    package static func decodeWhole(
        _ bytes: [UInt8], requestMethod: String = "GET",
        limits: HTTPLimits = HTTPLimits()
    ) throws(HTTPClientError) -> HTTPClientResponse {
        var decoder = HTTPResponseDecoder(requestMethod: requestMethod, limits: limits)
        var body: [UInt8] = []
        let outcome: Result<Int, HTTPClientError> = bytes.withUnsafeBytes { raw in
            Result { () throws(HTTPClientError) -> Int in try decoder.decode(raw, body: &body) }
        }
        _ = try outcome.get()
        try decoder.endOfInput()
        // Complete by now: `endOfInput` threw otherwise.
        return HTTPClientResponse(head: decoder.head!, body: body)
    }
}
