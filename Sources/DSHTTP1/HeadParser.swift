/// The outcome of offering buffered bytes to the parser.
package enum HeadParseResult<Head: Sendable>: Sendable {
    /// No complete head yet; search again from `resumeAt` when more bytes arrive.
    case incomplete(resumeAt: Int)
    case complete(Head)
    case failed(HTTPParseError)

    /// The same outcome with a complete head turned into another form.
    func map<Other: Sendable>(_ transform: (Head) -> Other) -> HeadParseResult<Other> {
        switch self {
        case .incomplete(let resume): return .incomplete(resumeAt: resume)
        case .complete(let head): return .complete(transform(head))
        case .failed(let error): return .failed(error)
        }
    }
}

extension RequestHeadInfo: HeadParser.FieldFacts {}
extension ResponseHeadInfo: HeadParser.FieldFacts {}

/// A strict HTTP/1.1 head parser (RFC 9112 §2–§5), pure: it reads bytes and returns values.
///
/// Line endings: only CRLF is accepted. A bare LF (RFC 9112 §2.2 allows a recipient to accept it)
/// is refused with 400 everywhere, heads and chunked framing alike, because a proxy that reads
/// LF while its peer reads CRLF is how requests get smuggled (HAProxy 4837e9989). A bare CR, NUL,
/// obs-fold, whitespace before the colon and empty or non-token names are refused with 400.
package struct HeadParser: Sendable {
    package var limits: HTTPLimits

    package init(limits: HTTPLimits = HTTPLimits()) {
        self.limits = limits
    }

    // MARK: requests

    /// Parses a request head at the start of `bytes`. `from` is the `resumeAt` of the previous
    /// incomplete result (0 the first time), so a head trickling in is not rescanned from the start.
    /// The result carries the method and target as strings and every field: convenient, and it
    /// allocates; the proxy uses `parseRequestInfo`, which does not.
    package func parseRequest(_ bytes: UnsafeRawBufferPointer, from: Int = 0) -> HeadParseResult<RequestHead> {
        var fields = HeaderFieldList()
        var codings: [String] = []
        var head = RequestHeadInfo()
        return scanRequest(bytes, from: from, into: &head) { field, name in
            fields.append(field)
            if name == .transferEncoding { Self.appendCodings(bytes, field, to: &codings) }
        }.map { RequestHead(info: head, bytes: bytes, fields: fields, transferCodings: codings) }
    }

    /// Parses a request head like `parseRequest` (same rules, same errors) into byte ranges and
    /// facts only; allocates nothing.
    package func parseRequestInfo(_ bytes: UnsafeRawBufferPointer, from: Int = 0) -> HeadParseResult<RequestHeadInfo> {
        var head = RequestHeadInfo()
        return parseRequestInfo(bytes, from: from, into: &head).map { head }
    }

    /// `parseRequestInfo` with the head written into `head` (what it holds after any outcome but
    /// `.complete` is unspecified). Loop thread code parses every request this way: the head (a
    /// couple of hundred bytes) is written once, where the caller keeps it, instead of being
    /// copied out of each call's result on its way up.
    package func parseRequestInfo(
        _ bytes: UnsafeRawBufferPointer, from: Int = 0, into head: inout RequestHeadInfo
    ) -> HeadParseResult<Void> {
        scanRequest(bytes, from: from, into: &head, onField: { _, _ in })
    }

    private func scanRequest(
        _ bytes: UnsafeRawBufferPointer, from: Int, into head: inout RequestHeadInfo,
        onField: (HeaderField, KnownField) -> Void
    ) -> HeadParseResult<Void> {
        var start = 0
        // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request-line.
        while start + 1 < bytes.count && bytes[start] == 13 && bytes[start + 1] == 10 { start += 2 }
        // The skipped empty lines count toward the head limit, or a stream of CRLFs would be
        // buffered without bound. The line ends are noted only by a scan from the request line
        // on (`LineEnds`).
        return Self.withLineEnds(noting: from <= start) { lines in
            scanRequest(bytes, from: from, start: start, lines: &lines, into: &head, onField: onField)
        }
    }

    private func scanRequest(
        _ bytes: UnsafeRawBufferPointer, from: Int, start: Int, lines: inout LineEnds,
        into head: inout RequestHeadInfo, onField: (HeaderField, KnownField) -> Void
    ) -> HeadParseResult<Void> {
        switch Self.findHeadEnd(bytes, from: max(from, start), limit: limits.maxHeadBytes, lines: &lines) {
        case .incomplete(let resume):
            if let error = Self.checkCompletedRequestLine(bytes, start: start, scannedFrom: max(from, start)) {
                return .failed(error)
            }
            return .incomplete(resumeAt: resume)
        case .failed(let error):
            // The request line is judged first however the bytes arrived (see
            // `checkCompletedRequestLine`): the same refusal for a head whole or in pieces.
            var lf = start
            while lf < bytes.count && bytes[lf] != 10 { lf += 1 }
            return .failed(Self.requestLineError(bytes, start: start, lf: lf) ?? error)
        case .complete(let end):
            do {
                try parseRequestHead(bytes, start: start, end: end, lines: &lines, into: &head, onField: onField)
                return .complete(())
            } catch {
                return .failed(error)
            }
        }
    }

    /// request-line = method SP request-target SP HTTP-version (RFC 9112 §3); `lineEnd` is its CR.
    static func parseRequestLine(
        _ bytes: UnsafeRawBufferPointer, start: Int,
        lineEnd: Int
    ) throws(HTTPParseError) -> (method: Range<Int>, target: Range<Int>, version: HTTPVersion) {
        var i = start
        while i < lineEnd && isTokenChar(bytes[i]) { i += 1 }
        guard i > start, i < lineEnd, bytes[i] == 32 else { throw HTTPParseError(.badRequest, "Malformed request line") }
        let targetStart = i + 1
        var j = targetStart
        while j < lineEnd && bytes[j] > 32 && bytes[j] != 127 { j += 1 }
        guard j > targetStart else { throw HTTPParseError(.badRequest, "Malformed request target") }
        // `GET /x` alone is HTTP/0.9, which has no head to wait for.
        guard j < lineEnd else {
            throw HTTPParseError(.badRequest, "Request line without an HTTP version (HTTP/0.9 is not supported)")
        }
        guard bytes[j] == 32 else { throw HTTPParseError(.badRequest, "Malformed request target") }
        return (start..<i, targetStart..<j, try parseVersion(bytes, from: j + 1, to: lineEnd))
    }

    /// An incomplete head whose request line is already complete is judged on that line now: a
    /// line no head can follow (HTTP/0.9's `GET /x`, garbage) gets its 400 at once instead of
    /// after the head deadline. Only when the newly scanned bytes hold a line end, and only the
    /// line before it is looked at, so a head trickling in is not rescanned.
    static func checkCompletedRequestLine(_ bytes: UnsafeRawBufferPointer, start: Int, scannedFrom: Int) -> HTTPParseError? {
        var lf = scannedFrom
        while lf < bytes.count && bytes[lf] != 10 { lf += 1 }
        guard lf < bytes.count, lf >= start + 2 else { return nil }
        var lineStart = lf - 1
        while lineStart > start && bytes[lineStart - 1] != 10 { lineStart -= 1 }
        guard lineStart == start else { return nil } // a field line: the request line was checked before
        return requestLineError(bytes, start: start, lf: lf)
    }

    /// Why the request line from `start` to its LF at `lf` is refused, if it is and is complete
    /// (CRLF-terminated; a bare LF is findHeadEnd's to refuse).
    static func requestLineError(_ bytes: UnsafeRawBufferPointer, start: Int, lf: Int) -> HTTPParseError? {
        guard lf < bytes.count, lf >= start + 2, bytes[lf - 1] == 13 else { return nil }
        do {
            let lineEnd = try lineEnd(bytes, from: start, end: lf + 1)
            _ = try parseRequestLine(bytes, start: start, lineEnd: lineEnd)
            return nil
        } catch {
            return error
        }
    }

    private func parseRequestHead(
        _ bytes: UnsafeRawBufferPointer, start: Int, end: Int, lines: inout LineEnds,
        into head: inout RequestHeadInfo, onField: (HeaderField, KnownField) -> Void
    ) throws(HTTPParseError) {
        let lineEnd = try Self.nextLineEnd(bytes, from: start, end: end, &lines)
        let line = try Self.parseRequestLine(bytes, start: start, lineEnd: lineEnd)
        head = RequestHeadInfo(
            method: line.method, methodKind: HTTPMethodKind.classify(bytes, line.method),
            target: line.target, version: line.version, length: end, fieldsStart: lineEnd + 2)
        if let authority = try Self.absoluteFormAuthority(bytes, line.target) {
            head.authority = authority
            head.originTarget = authority.upperBound..<line.target.upperBound
        }
        head.locatePathAndQuery(in: bytes)
        try parseFields(
            bytes, from: lineEnd + 2, end: end, lines: &lines, into: &head,
            requestField: { (field, name, head) throws(HTTPParseError) in
                switch name {
                case .host:
                    head.hostCount += 1
                    try Self.validateHost(bytes, field.valueRange)
                case .expect:
                    head.hasExpect = true
                    head.expectContinue = Self.equalsIgnoringCase(bytes, field.valueStart, field.valueEnd, "100-continue")
                case .forwardedFor:
                    head.forwarded.hasFor = true
                case .forwardedProto:
                    head.forwarded.hasProto = true
                case .contentLength, .transferEncoding, .connection, .hopByHop, .other:
                    break // recorded by parseFields, for requests and responses alike
                }
            }, onField: onField)
        if line.version == .http11 {
            if head.hostCount == 0 { throw HTTPParseError(.badRequest, "Missing Host header") }
        }
        if head.hostCount > 1 { throw HTTPParseError(.badRequest, "Duplicate Host header") }
    }

    // MARK: responses

    /// Parses a response head; like `parseRequest`, it lists every field and allocates.
    package func parseResponse(_ bytes: UnsafeRawBufferPointer, from: Int = 0) -> HeadParseResult<ResponseHead> {
        var fields: [HeaderField] = []
        var codings: [String] = []
        return scanResponse(bytes, from: from) { field, name in
            fields.append(field)
            if name == .transferEncoding { Self.appendCodings(bytes, field, to: &codings) }
        }.map { ResponseHead(info: $0, fields: fields, transferCodings: codings) }
    }

    /// Parses a response head into facts only, allocating nothing (the proxy's response path).
    package func parseResponseInfo(_ bytes: UnsafeRawBufferPointer, from: Int = 0) -> HeadParseResult<ResponseHeadInfo> {
        scanResponse(bytes, from: from, onField: { _, _ in })
    }

    private func scanResponse(
        _ bytes: UnsafeRawBufferPointer, from: Int,
        onField: (HeaderField, KnownField) -> Void
    ) -> HeadParseResult<ResponseHeadInfo> {
        Self.withLineEnds(noting: from == 0) { lines in
            switch Self.findHeadEnd(bytes, from: from, limit: limits.maxHeadBytes, lines: &lines) {
            case .incomplete(let resume): return .incomplete(resumeAt: resume)
            case .failed(let error): return .failed(error)
            case .complete(let end):
                do throws(HTTPParseError) {
                    return .complete(try parseResponseHead(bytes, end: end, lines: &lines, onField: onField))
                } catch {
                    return .failed(error)
                }
            }
        }
    }

    private func parseResponseHead(
        _ bytes: UnsafeRawBufferPointer, end: Int, lines: inout LineEnds,
        onField: (HeaderField, KnownField) -> Void
    ) throws(HTTPParseError) -> ResponseHeadInfo {
        let lineEnd = try Self.nextLineEnd(bytes, from: 0, end: end, &lines)
        // status-line = HTTP-version SP status-code SP [ reason-phrase ] (RFC 9112 §4)
        guard lineEnd >= 12 else { throw HTTPParseError(.badRequest, "Malformed status line") }
        let version = try Self.parseVersion(bytes, from: 0, to: 8)
        guard bytes[8] == 32 else { throw HTTPParseError(.badRequest, "Malformed status line") }
        var status = 0
        for k in 9..<12 {
            let c = bytes[k]
            guard c >= 48 && c <= 57 else { throw HTTPParseError(.badRequest, "Malformed status code") }
            status = status * 10 + Int(c - 48)
        }
        guard status >= 100, lineEnd == 12 || bytes[12] == 32 else { throw HTTPParseError(.badRequest, "Malformed status line") }
        for k in 12..<lineEnd where bytes[k] < 32 && bytes[k] != 9 || bytes[k] == 127 {
            throw HTTPParseError(.badRequest, "Control character in reason phrase")
        }
        var head = ResponseHeadInfo(version: version, status: status, length: end)
        head.fieldsStart = lineEnd + 2
        // Host, Expect and X-Forwarded-* mean nothing to a response's framing: listed, not acted on.
        try parseFields(
            bytes, from: lineEnd + 2, end: end, lines: &lines, into: &head, requestField: { _, _, _ in }, onField: onField)
        return head
    }

    // MARK: shared pieces

    enum FindResult {
        case incomplete(Int)
        case complete(Int)
        case failed(HTTPParseError)
    }

    /// Finds the end of the head (just past the empty line). Fails fast on a bare LF and on a
    /// head longer than `limit`. On the way it notes in `lines` each line's end, and the first
    /// byte `lineEnd` would refuse (a NUL, a CR not followed by LF), for `nextLineEnd`.
    static func findHeadEnd(_ bytes: UnsafeRawBufferPointer, from: Int, limit: Int, lines: inout LineEnds) -> FindResult {
        var i = max(from, 0)
        let count = bytes.count
        while i < count {
            // Most bytes of a head are not below 14. The scan stops at each line's CR and takes
            // its LF with it; at a NUL or a bare CR, which `lineEnd` refuses (noted); and at a
            // bare LF (a tab stopped at is stepped over).
            i = Self.skipWords(bytes, from: i, end: count) { Self.bytesBelow($0, 14) }
            if i == count { break }
            let c = bytes[i]
            if c == 13 {
                if i + 1 == count { break }
                if bytes[i + 1] != 10 {
                    lines.refused(at: i)
                    i += 1
                    continue
                }
                i += 1
            } else if c != 10 {
                if c == 0 { lines.refused(at: i) }
                i += 1
                continue
            }
            // An LF.
            if i == 0 || bytes[i - 1] != 13 { return .failed(HTTPParseError(.badRequest, "Bare LF in message head")) }
            lines.append(i)
            // An empty line: CR LF directly after the previous line's CR LF.
            if i >= 3 && bytes[i - 2] == 10 && bytes[i - 3] == 13 {
                if i + 1 > limit {
                    return .failed(HTTPParseError(.requestHeaderFieldsTooLarge, "Request header section too large"))
                }
                return .complete(i + 1)
            }
            i += 1
        }
        if count > limit { return .failed(HTTPParseError(.requestHeaderFieldsTooLarge, "Request header section too large")) }
        // Resume a few bytes back so a terminator split across reads is still seen.
        return .incomplete(max(0, count - 3))
    }

    /// The index of the CR ending the line that starts at `from`, the next line of the head
    /// `findHeadEnd` noted in `lines`: its LF's index less one when it ends before the first
    /// byte refused, else found by `lineEnd` (which throws what it refuses). Lines are asked
    /// for in order, from the head's first.
    @inline(__always)
    static func nextLineEnd(
        _ bytes: UnsafeRawBufferPointer, from: Int, end: Int, _ lines: inout LineEnds
    ) throws(HTTPParseError) -> Int {
        if let lf = lines.next() {
            assert(lf > from && lf < end && bytes[lf - 1] == 13, "noted line ends out of step")
            return lf - 1
        }
        return try lineEnd(bytes, from: from, end: end)
    }

    /// Runs `body` with `LineEnds` whose storage is on the stack (no allocation), taking notes
    /// only when `noting` (the head is scanned from its first line).
    @inline(__always)
    static func withLineEnds<R>(noting: Bool, _ body: (inout LineEnds) -> R) -> R {
        withUnsafeTemporaryAllocation(of: Int32.self, capacity: LineEnds.capacity) { storage in
            var lines = LineEnds(storage: storage, noting: noting)
            return body(&lines)
        }
    }

    /// Where the lines of a head end, noted by `findHeadEnd` in its one pass over the head so
    /// that parsing the lines does not scan the bytes again for their ends (`nextLineEnd`).
    /// Only a scan from the head's first line notes them (a head that came in pieces was
    /// scanned in pieces: its lines are found by `lineEnd` as they are parsed), and only the
    /// first `capacity` (a longer head's further lines are found by `lineEnd` too).
    struct LineEnds {
        static let capacity = 64
        /// Stack storage from `withLineEnds`, alive for the whole parse that uses this value
        /// (it is never stored beyond it); indices below `count` are initialized.
        private let storage: UnsafeMutableBufferPointer<Int32>
        private var count = 0
        private var taken = 0
        private var noting: Bool
        /// The first NUL or bare CR: a line ending after it is left to `lineEnd`, which
        /// throws the same error for it as without the notes.
        private var firstRefused = Int.max

        init(storage: UnsafeMutableBufferPointer<Int32>, noting: Bool) {
            self.storage = storage
            self.noting = noting
        }

        @inline(__always)
        mutating func append(_ lf: Int) {
            guard noting else { return }
            guard count < storage.count else {
                noting = false
                return
            }
            storage[count] = Int32(truncatingIfNeeded: lf)
            count += 1
        }

        @inline(__always)
        mutating func refused(at index: Int) {
            if index < firstRefused { firstRefused = index }
        }

        /// The LF of the next line, or nil when it is to be found by a scan (and so are all the
        /// following ones).
        @inline(__always)
        mutating func next() -> Int? {
            guard taken < count else { return nil }
            let lf = Int(storage[taken])
            guard lf < firstRefused else {
                count = 0
                return nil
            }
            taken += 1
            return lf
        }
    }

    /// The index of the CR ending the line that starts at `from`.
    static func lineEnd(_ bytes: UnsafeRawBufferPointer, from: Int, end: Int) throws(HTTPParseError) -> Int {
        var i = from
        while i + 1 < end {
            // A CR or a NUL is a byte below 14 (a tab or LF stopped at is stepped over).
            i = Self.skipWords(bytes, from: i, end: end) { Self.bytesBelow($0, 14) }
            if i + 1 >= end { break }
            let c = bytes[i]
            if c == 13 {
                guard bytes[i + 1] == 10 else { throw HTTPParseError(.badRequest, "Bare CR in message head") }
                return i
            }
            if c == 0 { throw HTTPParseError(.badRequest, "NUL in message head") }
            i += 1
        }
        throw HTTPParseError(.badRequest, "Unterminated line")
    }

    /// The offset of the first byte from `start` that `flagged` marks, or where fewer than eight
    /// bytes are left before `end` (the caller goes on byte by byte): the byte scans pass a word
    /// without a flagged byte at once, and jump to a word's first flagged one (the lowest set
    /// bit is exact, see `bytesBelow`).
    @inline(__always)
    static func skipWords(
        _ bytes: UnsafeRawBufferPointer, from start: Int, end: Int,
        _ flagged: (UInt64) -> UInt64
    ) -> Int {
        var i = start
        while i + 8 <= end {
            let flags = flagged(word(bytes, at: i))
            if flags != 0 { return i + flags.trailingZeroBitCount >> 3 }
            i += 8
        }
        return i
    }

    /// The eight bytes at `offset`, the byte at `offset` lowest. Callers check `offset + 8` is
    /// within `bytes`; the load is unaligned because a head's lines start anywhere.
    @inline(__always)
    static func word(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> UInt64 {
        UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    /// The high bit of each byte of `word` below `limit` (at most 128) is set, above the lowest
    /// such byte possibly others too (a borrow runs upward): zero exactly when there is none,
    /// and the lowest set bit is always exact.
    @inline(__always)
    static func bytesBelow(_ word: UInt64, _ limit: UInt8) -> UInt64 {
        (word &- 0x0101_0101_0101_0101 &* UInt64(limit)) & ~word & 0x8080_8080_8080_8080
    }

    /// Like `bytesBelow`, for the bytes of `word` equal to `value`.
    @inline(__always)
    static func bytesEqual(_ word: UInt64, _ value: UInt8) -> UInt64 {
        bytesBelow(word ^ (0x0101_0101_0101_0101 &* UInt64(value)), 1)
    }

    static func parseVersion(_ bytes: UnsafeRawBufferPointer, from: Int, to: Int) throws(HTTPParseError) -> HTTPVersion {
        guard to - from == 8 else { throw HTTPParseError(.badRequest, "Malformed HTTP version") }
        guard bytes[from] == 72, bytes[from + 1] == 84, bytes[from + 2] == 84, bytes[from + 3] == 80, bytes[from + 4] == 47 else {
            throw HTTPParseError(.badRequest, "Malformed HTTP version") // "HTTP/"
        }
        let major = bytes[from + 5], dot = bytes[from + 6], minor = bytes[from + 7]
        guard dot == 46, (48...57).contains(major), (48...57).contains(minor) else {
            throw HTTPParseError(.badRequest, "Malformed HTTP version")
        }
        switch (major, minor) {
        case (49, 49): return .http11
        case (49, 48): return .http10
        default: throw HTTPParseError(.httpVersionNotSupported, "HTTP version not supported")
        }
    }

    /// What requests and responses alike gather from their fields (`parseFields`).
    protocol FieldFacts {
        var contentLength: UInt64? { get set }
        var transferCodings: TransferCodingSummary { get set }
        var connection: ConnectionTokens { get set }
        var hasHopByHopField: Bool { get set }
        var fieldCount: Int { get set }
    }

    enum KnownField {
        /// `hopByHop`: Keep-Alive, Proxy-Connection, TE or Upgrade (Connection has its own case).
        case contentLength, transferEncoding, host, connection, expect, hopByHop, forwardedFor, forwardedProto, other
    }

    /// Parses `field-name ":" OWS field-value OWS CRLF` lines up to the empty line (RFC 9112 §5)
    /// into `head`. The fields that frame a message or are hop-by-hop mean the same in a request
    /// and a response, so they are recorded here, for both; `requestField` is given the names
    /// only a request acts on (Host, Expect, X-Forwarded-*), and `onField` every field once it
    /// has been accepted (the allocating forms list them there).
    func parseFields<Head: FieldFacts>(
        _ bytes: UnsafeRawBufferPointer, from: Int, end: Int, lines: inout LineEnds, into head: inout Head,
        requestField: (HeaderField, KnownField, inout Head) throws(HTTPParseError) -> Void,
        onField: (HeaderField, KnownField) -> Void
    ) throws(HTTPParseError) {
        var lineStart = from
        var contentLengthSeen = false
        while true {
            let cr = try Self.nextLineEnd(bytes, from: lineStart, end: end, &lines)
            if cr == lineStart { return } // the empty line
            let first = bytes[lineStart]
            if first == 32 || first == 9 { throw HTTPParseError(.badRequest, "Obsolete line folding in header") }
            var colon = lineStart
            while colon < cr && Self.isTokenChar(bytes[colon]) { colon += 1 }
            guard colon < cr, bytes[colon] == 58 else {
                if colon < cr && (bytes[colon] == 32 || bytes[colon] == 9) {
                    throw HTTPParseError(.badRequest, "Whitespace before colon in header name")
                }
                throw HTTPParseError(.badRequest, "Invalid header field name")
            }
            guard colon > lineStart else { throw HTTPParseError(.badRequest, "Empty header field name") }
            var valueStart = colon + 1
            while valueStart < cr && (bytes[valueStart] == 32 || bytes[valueStart] == 9) { valueStart += 1 }
            var valueEnd = cr
            while valueEnd > valueStart && (bytes[valueEnd - 1] == 32 || bytes[valueEnd - 1] == 9) { valueEnd -= 1 }
            var k = valueStart
            while k < valueEnd {
                // Values are mostly visible ASCII: control bytes are those below 32, and DEL (a
                // tab stopped at is stepped over).
                k = Self.skipWords(bytes, from: k, end: valueEnd) { Self.bytesBelow($0, 32) | Self.bytesEqual($0, 127) }
                if k == valueEnd { break }
                let c = bytes[k]
                if (c < 32 && c != 9) || c == 127 { throw HTTPParseError(.badRequest, "Control character in header value") }
                k += 1
            }
            head.fieldCount += 1
            if head.fieldCount > limits.maxHeaderCount {
                throw HTTPParseError(.requestHeaderFieldsTooLarge, "Too many header fields")
            }
            let field = HeaderField(
                nameStart: Int32(lineStart), nameEnd: Int32(colon),
                valueStart: Int32(valueStart), valueEnd: Int32(valueEnd))
            let name = Self.classify(bytes, lineStart, colon)
            switch name {
            case .contentLength:
                let value = try Self.parseContentLength(bytes, field)
                if contentLengthSeen && head.contentLength != value {
                    throw HTTPParseError(.badRequest, "Conflicting Content-Length headers")
                }
                contentLengthSeen = true
                head.contentLength = value
            case .transferEncoding:
                try Self.summarizeCodings(bytes, field, into: &head.transferCodings)
            case .connection:
                head.hasHopByHopField = true
                Self.scanConnection(bytes, field, into: &head.connection)
            case .hopByHop:
                head.hasHopByHopField = true
            case .host, .expect, .forwardedFor, .forwardedProto:
                try requestField(field, name, &head)
            case .other:
                break
            }
            onField(field, name)
            lineStart = cr + 2
        }
    }

    /// Whether the field name `bytes[start..<end]` is `lowercase` (letters and `-` only),
    /// ignoring ASCII case, by words rather than bytes: the bytes of a name are tchars, and of
    /// those only a letter's two cases give that letter once 0x20 is set in them, and only `-`
    /// gives `-` (`parseFields` has checked the name before it is classified).
    @inline(__always)
    static func nameIs(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int, _ lowercase: StaticString) -> Bool {
        let length = lowercase.utf8CodeUnitCount
        guard end - start == length else { return false }
        let expected = UnsafeRawPointer(lowercase.utf8Start)
        if length >= 8 {
            // Word by word; the last one overlaps the one before when the length is not a
            // multiple of eight (all its bytes are within the name).
            var k = 0
            while true {
                let at = min(k, length - 8)
                let fold = word(bytes, at: start + at) | 0x2020_2020_2020_2020
                guard fold == UInt64(littleEndian: expected.loadUnaligned(fromByteOffset: at, as: UInt64.self)) else {
                    return false
                }
                if at == length - 8 { return true }
                k += 8
            }
        }
        if length >= 4 {
            // Two (overlapping) four-byte halves.
            let last = length - 4
            let first = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: start, as: UInt32.self)) | 0x2020_2020
            let final = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: start + last, as: UInt32.self)) | 0x2020_2020
            return first == UInt32(littleEndian: expected.loadUnaligned(as: UInt32.self))
                && final == UInt32(littleEndian: expected.loadUnaligned(fromByteOffset: last, as: UInt32.self))
        }
        return equalsIgnoringCase(bytes, Int32(start), Int32(end), lowercase)
    }

    static func classify(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> KnownField {
        switch end - start {
        case 2 where nameIs(bytes, start, end, "te"): return .hopByHop
        case 4 where nameIs(bytes, start, end, "host"): return .host
        case 6 where nameIs(bytes, start, end, "expect"): return .expect
        case 7 where nameIs(bytes, start, end, "upgrade"): return .hopByHop
        case 10 where nameIs(bytes, start, end, "connection"): return .connection
        case 10 where nameIs(bytes, start, end, "keep-alive"): return .hopByHop
        case 16 where nameIs(bytes, start, end, "proxy-connection"): return .hopByHop
        case 14 where nameIs(bytes, start, end, "content-length"): return .contentLength
        case 17 where nameIs(bytes, start, end, "transfer-encoding"): return .transferEncoding
        case 15 where nameIs(bytes, start, end, "x-forwarded-for"): return .forwardedFor
        case 17 where nameIs(bytes, start, end, "x-forwarded-proto"): return .forwardedProto
        default: return .other
        }
    }

    /// Content-Length = 1*DIGIT (RFC 9110 §8.6). Signs, spaces inside, lists, empty values and
    /// values past 2^63 are refused: each is a known desync vector (HAProxy 6492f1f29).
    static func parseContentLength(_ bytes: UnsafeRawBufferPointer, _ field: HeaderField) throws(HTTPParseError) -> UInt64 {
        let start = Int(field.valueStart), end = Int(field.valueEnd)
        guard end > start else { throw HTTPParseError(.badRequest, "Empty Content-Length") }
        guard end - start <= 18 else { throw HTTPParseError(.badRequest, "Content-Length too large") }
        var value: UInt64 = 0
        for k in start..<end {
            let c = bytes[k]
            guard c >= 48 && c <= 57 else { throw HTTPParseError(.badRequest, "Invalid Content-Length") }
            value = value * 10 + UInt64(c - 48)
        }
        return value
    }

    /// Calls `body` with each coding of a Transfer-Encoding field (a comma list, each item
    /// trimmed of OWS); an empty item is refused.
    static func forEachCoding(
        _ bytes: UnsafeRawBufferPointer, _ field: HeaderField,
        _ body: (Range<Int>) -> Void
    ) throws(HTTPParseError) {
        var itemStart = Int(field.valueStart)
        let end = Int(field.valueEnd)
        while true {
            var itemEnd = itemStart
            while itemEnd < end && bytes[itemEnd] != 44 { itemEnd += 1 } // ','
            let item = trimmingOWS(bytes, itemStart..<itemEnd)
            guard !item.isEmpty else { throw HTTPParseError(.badRequest, "Empty transfer coding") }
            body(item)
            if itemEnd >= end { return }
            itemStart = itemEnd + 1
        }
    }

    /// The codings of a Transfer-Encoding field the scan has accepted (no empty one is left),
    /// lowercased: the list the allocating heads carry.
    static func appendCodings(_ bytes: UnsafeRawBufferPointer, _ field: HeaderField, to codings: inout [String]) {
        try? forEachCoding(bytes, field) { range in
            codings.append(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self).lowercased())
        }
    }

    static func summarizeCodings(
        _ bytes: UnsafeRawBufferPointer, _ field: HeaderField,
        into summary: inout TransferCodingSummary
    ) throws(HTTPParseError) {
        try forEachCoding(bytes, field) { range in
            let isChunked = RequestHeadInfo.equalsIgnoringCase(bytes, range, "chunked")
            let (lo, hi) = (Int32(range.lowerBound), Int32(range.upperBound))
            let known =
                isChunked || equalsIgnoringCase(bytes, lo, hi, "gzip") || equalsIgnoringCase(bytes, lo, hi, "x-gzip")
                || equalsIgnoringCase(bytes, lo, hi, "deflate") || equalsIgnoringCase(bytes, lo, hi, "compress")
                || equalsIgnoringCase(bytes, lo, hi, "x-compress")
            summary.add(isChunked: isChunked, isKnown: known)
        }
    }

    /// Connection options (RFC 9110 §7.6.1): a comma list of tokens, empty items skipped.
    static func scanConnection(_ bytes: UnsafeRawBufferPointer, _ field: HeaderField, into tokens: inout ConnectionTokens) {
        var itemStart = Int(field.valueStart)
        let end = Int(field.valueEnd)
        while itemStart < end {
            var itemEnd = itemStart
            while itemEnd < end && bytes[itemEnd] != 44 { itemEnd += 1 }
            let item = trimmingOWS(bytes, itemStart..<itemEnd)
            let (lo, hi) = (Int32(item.lowerBound), Int32(item.upperBound))
            if equalsIgnoringCase(bytes, lo, hi, "close") {
                tokens.close = true
            } else if equalsIgnoringCase(bytes, lo, hi, "keep-alive") {
                tokens.keepAlive = true
            } else if equalsIgnoringCase(bytes, lo, hi, "upgrade") {
                tokens.upgrade = true
            } else if equalsIgnoringCase(bytes, lo, hi, "content-length")
                || equalsIgnoringCase(bytes, lo, hi, "transfer-encoding")
            {
                tokens.namesFramingField = true
            }
            itemStart = itemEnd + 1
        }
    }

    /// Host = uri-host [ ":" port ] (RFC 9112 §3.2, RFC 3986 §3.2.2): a non-empty reg-name or
    /// IP literal, then digits after a colon. Commas (two Host values joined), userinfo (`@`),
    /// paths, spaces and the like are refused with 400, as §3.2 asks for an invalid value: a
    /// replica or a log must never read a different host than the one routed on. An empty value
    /// is valid in the grammar but names no host; nginx refuses it too.
    static func validateHost(_ bytes: UnsafeRawBufferPointer, _ value: Range<Int>) throws(HTTPParseError) {
        guard !value.isEmpty else { throw HTTPParseError(.badRequest, "Empty Host header") }
        var i = value.lowerBound
        if bytes[i] == UInt8(ascii: "[") {
            // IP-literal: hex digits, ':' and '.' (IPv6, IPv4-mapped), up to ']'.
            i += 1
            while i < value.upperBound && bytes[i] != UInt8(ascii: "]") {
                let c = bytes[i]
                guard hexValue(c) != nil || c == UInt8(ascii: ":") || c == UInt8(ascii: ".") else {
                    throw HTTPParseError(.badRequest, "Invalid Host header")
                }
                i += 1
            }
            guard i < value.upperBound, i > value.lowerBound + 1 else { throw HTTPParseError(.badRequest, "Invalid Host header") }
            i += 1
        } else {
            let hostStart = i
            while i < value.upperBound && isRegNameChar(bytes[i]) { i += 1 }
            guard i > hostStart else { throw HTTPParseError(.badRequest, "Invalid Host header") }
        }
        if i < value.upperBound {
            guard bytes[i] == UInt8(ascii: ":") else { throw HTTPParseError(.badRequest, "Invalid Host header") }
            i += 1
            guard value.upperBound - i <= 5 else { throw HTTPParseError(.badRequest, "Invalid port in Host header") }
            while i < value.upperBound {
                guard bytes[i] >= 48 && bytes[i] <= 57 else { throw HTTPParseError(.badRequest, "Invalid port in Host header") }
                i += 1
            }
        }
    }

    /// reg-name = *( unreserved / pct-encoded / sub-delims ) (RFC 3986 §3.2.2), without ',' (a
    /// list of hosts is no host).
    @inline(__always)
    static func isRegNameChar(_ c: UInt8) -> Bool {
        switch c {
        case 48...57, 65...90, 97...122: return true
        case 45, 46, 95, 126: return true // - . _ ~
        case 37: return true // % (pct-encoded)
        case 33, 36, 38, 39, 40, 41, 42, 43, 59, 61: return true // ! $ & ' ( ) * + ; =
        default: return false
        }
    }

    @inline(__always)
    static func hexValue(_ c: UInt8) -> UInt8? { ChunkedScanner.hexValue(c) }

    /// The authority of an absolute-form target (`http://host:port/path?query`, RFC 9112 §3.2.2),
    /// or nil for any other form. Only http and https are proxied; the authority must be a valid
    /// Host value (no userinfo: RFC 9110 §4.2.4 tells a recipient to treat it as an error).
    static func absoluteFormAuthority(_ bytes: UnsafeRawBufferPointer, _ target: Range<Int>) throws(HTTPParseError) -> Range<Int>?
    {
        // origin-form and asterisk-form, by far the usual, are told by their first byte.
        let first = bytes[target.lowerBound]
        guard (first >= 65 && first <= 90) || (first >= 97 && first <= 122) else { return nil }
        // scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then "://" (authority-form, for
        // CONNECT, has no "//").
        var i = target.lowerBound + 1
        while i < target.upperBound, isTokenChar(bytes[i]) && bytes[i] != UInt8(ascii: ":") { i += 1 }
        guard target.upperBound - i >= 3, bytes[i] == UInt8(ascii: ":"), bytes[i + 1] == UInt8(ascii: "/"),
            bytes[i + 2] == UInt8(ascii: "/")
        else { return nil }
        let scheme = Int32(target.lowerBound), schemeEnd = Int32(i)
        guard equalsIgnoringCase(bytes, scheme, schemeEnd, "http") || equalsIgnoringCase(bytes, scheme, schemeEnd, "https") else {
            throw HTTPParseError(.badRequest, "Unsupported scheme in absolute-form request target")
        }
        let authorityStart = i + 3
        var authorityEnd = authorityStart
        while authorityEnd < target.upperBound {
            let c = bytes[authorityEnd]
            if c == UInt8(ascii: "/") || c == UInt8(ascii: "?") || c == UInt8(ascii: "#") { break }
            authorityEnd += 1
        }
        guard authorityEnd > authorityStart else {
            throw HTTPParseError(.badRequest, "Absolute-form request target without a host")
        }
        do {
            try validateHost(bytes, authorityStart..<authorityEnd)
        } catch {
            throw HTTPParseError(.badRequest, "Invalid authority in absolute-form request target")
        }
        return authorityStart..<authorityEnd
    }

    static func trimmingOWS(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Range<Int> {
        var lo = range.lowerBound, hi = range.upperBound
        while lo < hi && (bytes[lo] == 32 || bytes[lo] == 9) { lo += 1 }
        while hi > lo && (bytes[hi - 1] == 32 || bytes[hi - 1] == 9) { hi -= 1 }
        return lo..<hi
    }

    static func equalsIgnoringCase(
        _ bytes: UnsafeRawBufferPointer, _ start: Int32, _ end: Int32, _ lowercase: StaticString
    ) -> Bool {
        let length = lowercase.utf8CodeUnitCount
        guard Int(end - start) == length else { return false }
        let expected = lowercase.utf8Start
        for k in 0..<length {
            var c = bytes[Int(start) + k]
            if c >= 65 && c <= 90 { c += 32 }
            if c != expected[k] { return false }
        }
        return true
    }

    /// tchar (RFC 9110 §5.6.2).
    @inline(__always)
    static func isTokenChar(_ c: UInt8) -> Bool {
        switch c {
        case 48...57, 65...90, 97...122: return true
        case 33, 35, 36, 37, 38, 39, 42, 43, 45, 46, 94, 95, 96, 124, 126: return true
        default: return false
        }
    }
}
