/// A request head as byte ranges into the buffer it was parsed from, plus the facts the proxy
/// needs, gathered in the parser's one pass. It holds no reference (no String, no array), so
/// parsing into it allocates nothing: the proxy's per-request path (docs/ARCHITECTURE.md §7, "no
/// allocation per request in steady state"). Field values are found again by re-scanning the
/// head's lines on demand; the parser has already validated them, and the proxy asks for at
/// most a few per request.
///
/// Every method that takes `bytes` expects the same bytes the head was parsed from.
///
/// Usable from inline with inlinable `wantsKeepAlive` and `isHead`: the proxy asks them per request
/// from another module, where a call would cost more than the test.
@usableFromInline package struct RequestHeadInfo: Sendable, Equatable {
    package var method: Range<Int>
    @usableFromInline package var methodKind: HTTPMethodKind
    /// The request-target as sent.
    package var target: Range<Int>
    /// The target in origin-form (path and query): `target` itself, or for an absolute-form
    /// target (`http://host/path`) the part after its authority, empty when it has no path ("/").
    /// Routing reads the path and query from here, and the replica is sent this form.
    package var originTarget: Range<Int>
    /// The authority of an absolute-form target: the request's host (RFC 9112 §3.2.2), which
    /// replaces its Host field on the way to the replica.
    package var authority: Range<Int>?
    /// `originTarget`'s path (before `?` and `#`) and query (after `?`, before `#`; nil without
    /// `?`), found by the parser in one scan (`locatePathAndQuery`): the admin route check and
    /// the routing key both read them, and neither scans the target again.
    package var pathRange: Range<Int>
    package var queryRange: Range<Int>?
    @usableFromInline package var version: HTTPVersion
    /// The number of bytes of the head, including the final empty line.
    package var length: Int
    package var contentLength: UInt64?
    package var transferCodings = TransferCodingSummary()
    package var hostCount = 0
    @usableFromInline package var connection = ConnectionTokens()
    package var expectContinue = false
    /// Whether any Expect field came (`expectContinue` says what the last one asked).
    package var hasExpect = false
    package var fieldCount = 0
    /// Where the first field line starts (just after the request line's CRLF).
    package var fieldsStart: Int
    /// Whether a field is hop-by-hop by its name alone (Connection, Keep-Alive,
    /// Proxy-Connection, TE, Upgrade): when none is, the head is forwarded whole.
    package var hasHopByHopField = false
    /// Which X-Forwarded-* fields the client sent (the proxy replaces them unless it trusts it).
    @usableFromInline package var forwarded = ForwardedFields()

    package init(
        method: Range<Int>, methodKind: HTTPMethodKind, target: Range<Int>, version: HTTPVersion,
        length: Int, fieldsStart: Int
    ) {
        self.method = method
        self.methodKind = methodKind
        self.target = target
        self.originTarget = target
        self.pathRange = target
        self.version = version
        self.length = length
        self.fieldsStart = fieldsStart
    }

    /// A placeholder for a parse to write into (`HeadParser.parseRequestInfo(_:from:into:)`):
    /// an empty GET with no fields.
    package init() {
        self.init(method: 0..<0, methodKind: .get, target: 0..<0, version: .http11, length: 0, fieldsStart: 0)
    }

    /// Whether the connection stays open after this exchange (RFC 9112 §9.3).
    @inlinable package var wantsKeepAlive: Bool {
        switch version {
        case .http11: return !connection.close
        case .http10: return connection.keepAlive && !connection.close
        }
    }

    @inlinable package var isHead: Bool { methodKind == .head }

    // MARK: target

    /// Finds `pathRange` and `queryRange` in `originTarget` (set first).
    mutating func locatePathAndQuery(in bytes: UnsafeRawBufferPointer) {
        let end = originTarget.upperBound
        var i = originTarget.lowerBound
        while i < end && bytes[i] != UInt8(ascii: "?") && bytes[i] != UInt8(ascii: "#") { i += 1 }
        pathRange = originTarget.lowerBound..<i
        guard i < end, bytes[i] == UInt8(ascii: "?") else {
            queryRange = nil
            return
        }
        var j = i + 1
        while j < end && bytes[j] != UInt8(ascii: "#") { j += 1 }
        queryRange = (i + 1)..<j
    }

    /// The target without a fragment (clients should not send one; some do, and nginx drops it).
    package func targetWithoutFragment(in bytes: UnsafeRawBufferPointer) -> Range<Int> {
        originTarget.lowerBound..<(queryRange?.upperBound ?? pathRange.upperBound)
    }

    /// The value of the first query parameter called `name` (compared byte for byte, not
    /// percent-decoded: keys are hashed as sent). Empty pairs (`&&`) are skipped; a parameter
    /// without `=` has an empty value.
    package func queryParameter(_ name: String, in bytes: UnsafeRawBufferPointer) -> Range<Int>? {
        guard let query = queryRange else { return nil }
        var pairStart = query.lowerBound
        while pairStart < query.upperBound {
            var pairEnd = pairStart
            while pairEnd < query.upperBound && bytes[pairEnd] != UInt8(ascii: "&") { pairEnd += 1 }
            if pairEnd > pairStart {
                var eq = pairStart
                while eq < pairEnd && bytes[eq] != UInt8(ascii: "=") { eq += 1 }
                if Self.equals(bytes, pairStart..<eq, name) {
                    return eq < pairEnd ? (eq + 1)..<pairEnd : pairEnd..<pairEnd
                }
            }
            pairStart = pairEnd + 1
        }
        return nil
    }

    // MARK: fields

    /// Calls `body` with each field in order until it returns false.
    package func forEachField(in bytes: UnsafeRawBufferPointer, _ body: (HeaderField) -> Bool) {
        HeaderField.forEach(in: bytes, from: fieldsStart, headLength: length, body)
    }

    /// The first field whose name equals `name` ignoring ASCII case.
    package func firstField(named name: String, in bytes: UnsafeRawBufferPointer) -> HeaderField? {
        var found: HeaderField?
        forEachField(in: bytes) { field in
            if Self.equalsIgnoringCase(bytes, field.nameRange, name) { found = field; return false }
            return true
        }
        return found
    }

    /// The value of cookie `name` from the Cookie fields (RFC 6265 §4.2.1, read leniently the
    /// way the proxy always has): pairs split at `;`, the name trimmed of spaces and compared
    /// byte for byte, the value taken as it is after the first `=` (a pair with an empty name
    /// or value is skipped).
    package func cookie(_ name: String, in bytes: UnsafeRawBufferPointer) -> Range<Int>? {
        var found: Range<Int>?
        forEachField(in: bytes) { field in
            guard Self.equalsIgnoringCase(bytes, field.nameRange, "cookie") else { return true }
            let value = field.valueRange
            var pairStart = value.lowerBound
            while pairStart < value.upperBound {
                var pairEnd = pairStart
                while pairEnd < value.upperBound && bytes[pairEnd] != UInt8(ascii: ";") { pairEnd += 1 }
                // Leading `=` would make an empty first piece, which a split omitting empty
                // pieces drops: the name starts after them.
                var nameStart = pairStart
                while nameStart < pairEnd && bytes[nameStart] == UInt8(ascii: "=") { nameStart += 1 }
                var eq = nameStart
                while eq < pairEnd && bytes[eq] != UInt8(ascii: "=") { eq += 1 }
                if eq < pairEnd && eq + 1 < pairEnd {
                    var n = nameStart..<eq
                    while !n.isEmpty && bytes[n.lowerBound] == 32 { n = (n.lowerBound + 1)..<n.upperBound }
                    while !n.isEmpty && bytes[n.upperBound - 1] == 32 { n = n.lowerBound..<(n.upperBound - 1) }
                    if Self.equals(bytes, n, name) {
                        found = (eq + 1)..<pairEnd
                        return false
                    }
                }
                pairStart = pairEnd + 1
            }
            return true
        }
        return found
    }

    // MARK: byte comparisons

    /// Whether `bytes[range]` is exactly the UTF-8 of `text`.
    package static func equals(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ text: String) -> Bool {
        matches(bytes, range, text) { $0 == $1 }
    }

    /// Whether `bytes[range]` equals `text` ignoring ASCII case.
    package static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ text: String) -> Bool {
        matches(bytes, range, text) { asciiLower($0) == asciiLower($1) }
    }

    /// Whether `bytes[range]` and `text`'s UTF-8 have the same length and `same` holds byte by
    /// byte. Stepping a String's UTF-8 view checks its representation at every byte; its bytes as
    /// one buffer (a literal's, a native string's, or a small one's copied to the stack) are
    /// compared by a plain loop, after the lengths; the view's iterator only when there is none.
    @inline(__always)
    static func matches(
        _ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ text: String, _ same: (UInt8, UInt8) -> Bool
    ) -> Bool {
        let contiguous = text.utf8.withContiguousStorageIfAvailable { expected -> Bool in
            guard expected.count == range.count else { return false }
            for k in 0..<expected.count where !same(bytes[range.lowerBound + k], expected[k]) { return false }
            return true
        }
        if let contiguous { return contiguous }
        var i = range.lowerBound
        for c in text.utf8 {
            guard i < range.upperBound, same(bytes[i], c) else { return false }
            i += 1
        }
        return i == range.upperBound
    }

    @inline(__always)
    static func asciiLower(_ c: UInt8) -> UInt8 { c >= 65 && c <= 90 ? c + 32 : c }
}

/// The request methods the proxy treats specially (HEAD has no response body; RFC 9110 §9.2.2's
/// idempotent methods may be retried after a connection failure).
///
/// Usable from inline with an inlinable `isIdempotent`: the proxy asks it per request from another
/// module.
@usableFromInline package enum HTTPMethodKind: Sendable, Equatable {
    case get, head, post, put, delete, options, trace, connect, patch, other

    /// Method names are case-sensitive (RFC 9110 §9.1).
    static func classify(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> HTTPMethodKind {
        switch range.count {
        case 3:
            if RequestHeadInfo.equals(bytes, range, "GET") { return .get }
            if RequestHeadInfo.equals(bytes, range, "PUT") { return .put }
        case 4:
            if RequestHeadInfo.equals(bytes, range, "HEAD") { return .head }
            if RequestHeadInfo.equals(bytes, range, "POST") { return .post }
        case 5:
            if RequestHeadInfo.equals(bytes, range, "TRACE") { return .trace }
            if RequestHeadInfo.equals(bytes, range, "PATCH") { return .patch }
        case 6:
            if RequestHeadInfo.equals(bytes, range, "DELETE") { return .delete }
        case 7:
            if RequestHeadInfo.equals(bytes, range, "OPTIONS") { return .options }
            if RequestHeadInfo.equals(bytes, range, "CONNECT") { return .connect }
        default:
            break
        }
        return .other
    }

    /// RFC 9110 §9.2.2: repeating the request has the same effect as sending it once.
    @inlinable package var isIdempotent: Bool {
        switch self {
        case .get, .head, .options, .trace, .put, .delete: return true
        case .post, .connect, .patch, .other: return false
        }
    }
}

/// The X-Forwarded-* fields a request carries.
///
/// Usable from inline with an inlinable `any`: the proxy asks it per request from another module.
@usableFromInline package struct ForwardedFields: Sendable, Equatable {
    @usableFromInline package var hasFor = false
    @usableFromInline package var hasProto = false

    package init() {}

    @inlinable package var any: Bool { hasFor || hasProto }
}

/// The Transfer-Encoding codings of a message, summarised while parsing so the framing decision
/// needs no list of strings: how many, whether the last is `chunked`, whether `chunked` also
/// came earlier, and whether every coding is one this proxy knows (RFC 9112 §6.1, §7).
package struct TransferCodingSummary: Sendable, Equatable {
    package var count = 0
    package var lastIsChunked = false
    package var chunkedBeforeLast = false
    package var allKnown = true

    package init() {}

    package var isEmpty: Bool { count == 0 }

    mutating func add(isChunked: Bool, isKnown: Bool) {
        if lastIsChunked { chunkedBeforeLast = true }
        count += 1
        lastIsChunked = isChunked
        if !isKnown { allKnown = false }
    }
}

extension HeaderField {
    /// Calls `body` with each field line of a head that the parser accepted (`fieldsStart` and
    /// `headLength` as it reported them) until it returns false: lines are found again, not
    /// stored, so a head needs no field array.
    package static func forEach(
        in bytes: UnsafeRawBufferPointer, from fieldsStart: Int, headLength: Int,
        _ body: (HeaderField) -> Bool
    ) {
        var lineStart = fieldsStart
        let end = headLength - 2
        while lineStart < end {
            var cr = lineStart
            while bytes[cr] != 13 { cr += 1 }
            var colon = lineStart
            while bytes[colon] != UInt8(ascii: ":") { colon += 1 }
            var valueStart = colon + 1
            while valueStart < cr && (bytes[valueStart] == 32 || bytes[valueStart] == 9) { valueStart += 1 }
            var valueEnd = cr
            while valueEnd > valueStart && (bytes[valueEnd - 1] == 32 || bytes[valueEnd - 1] == 9) { valueEnd -= 1 }
            let field = HeaderField(
                nameStart: Int32(lineStart), nameEnd: Int32(colon),
                valueStart: Int32(valueStart), valueEnd: Int32(valueEnd))
            if !body(field) { return }
            lineStart = cr + 2
        }
    }

    package var nameRange: Range<Int> { Int(nameStart)..<Int(nameEnd) }
    package var valueRange: Range<Int> { Int(valueStart)..<Int(valueEnd) }
}
