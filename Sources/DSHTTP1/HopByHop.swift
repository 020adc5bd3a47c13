/// Which parts of a request head a proxy forwards (RFC 9110 §7.6.1): everything except the
/// hop-by-hop fields — `Connection` and the fields it names, `Keep-Alive`, `Proxy-Connection`,
/// `TE`, `Transfer-Encoding`'s hop-specific companion `Trailer` stays — and `Upgrade` unless the
/// request is upgrading. The result is byte ranges of the original head, so the kept bytes go
/// out as they came (by writev), never re-serialised.
package enum HopByHop {
    /// Ranges of `bytes` (the head as parsed into `head`) to forward, in order, covering the
    /// request line and the kept field lines, without the final empty line.
    package static func keptRanges(
        of head: RequestHead, in bytes: UnsafeRawBufferPointer, upgrading: Bool = false
    ) -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        forEachKeptRange(of: head.info, in: bytes, upgrading: upgrading) { ranges.append($0) }
        return ranges
    }

    /// Calls `body` with each range `keptRanges` would return, in order, without allocating for
    /// any ordinary head: names are compared in place, ignoring case.
    package static func forEachKeptRange(
        of head: RequestHeadInfo, in bytes: UnsafeRawBufferPointer, upgrading: Bool = false,
        _ body: (Range<Int>) -> Void
    ) {
        forEachKept(
            fieldsStart: head.fieldsStart, length: head.length, fieldCount: head.fieldCount,
            hasHopByHopField: head.hasHopByHopField, in: bytes, upgrading: upgrading, body)
    }

    /// The bytes of a request head as a proxy sends it on, without the final empty line, in
    /// order: the kept ranges of `bytes`, and for an absolute-form target (RFC 9112 §3.2.2) the
    /// request line in origin-form and a `Host` field with the target's authority instead of the
    /// client's. `replaceForwarded` drops the client's X-Forwarded-For and X-Forwarded-Proto
    /// (the proxy adds its own); `routingFields` are names the routing key is read from, which
    /// a `Connection` list cannot remove either. The pieces point into `bytes` or into static
    /// text; an ordinary head (no hop-by-hop, forwarded or absolute-form part) is one piece.
    package static func forEachForwardedPiece(
        of head: RequestHeadInfo, in bytes: UnsafeRawBufferPointer, upgrading: Bool,
        replaceForwarded: Bool, routingFields: [String] = [],
        _ body: (UnsafeRawBufferPointer) -> Void
    ) {
        let dropForwarded = replaceForwarded && head.forwarded.any
        guard let authority = head.authority else {
            forEachKept(
                fieldsStart: head.fieldsStart, length: head.length, fieldCount: head.fieldCount,
                hasHopByHopField: head.hasHopByHopField, in: bytes, upgrading: upgrading,
                dropForwarded: dropForwarded, routingFields: routingFields
            ) {
                body(UnsafeRawBufferPointer(rebasing: bytes[$0]))
            }
            return
        }
        body(UnsafeRawBufferPointer(rebasing: bytes[0..<head.target.lowerBound]))
        if head.originTarget.isEmpty || bytes[head.originTarget.lowerBound] != UInt8(ascii: "/") {
            // `http://host` or `http://host?q`: the path is "/" (RFC 9110 §4.2.3).
            body(staticBytes("/"))
        }
        body(UnsafeRawBufferPointer(rebasing: bytes[head.originTarget.lowerBound..<head.fieldsStart]))
        forEachKept(
            fieldsStart: head.fieldsStart, length: head.length, fieldCount: head.fieldCount,
            hasHopByHopField: head.hasHopByHopField, in: bytes, upgrading: upgrading, from: head.fieldsStart,
            dropHost: true, dropForwarded: dropForwarded, routingFields: routingFields
        ) {
            body(UnsafeRawBufferPointer(rebasing: bytes[$0]))
        }
        body(staticBytes("Host: "))
        body(UnsafeRawBufferPointer(rebasing: bytes[authority]))
        body(staticBytes("\r\n"))
    }

    /// A static string's bytes: they live as long as the program, so the pointer may be kept
    /// for a writev after this returns.
    private static func staticBytes(_ text: StaticString) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount)
    }

    /// The same for a response head (RFC 9110 §7.6.1 applies to both directions): the status
    /// line and the kept field lines, without the final empty line; `upgrading` for a 101 that
    /// switches to the Upgrade the client asked for.
    package static func forEachKeptResponseRange(
        of head: ResponseHeadInfo, in bytes: UnsafeRawBufferPointer, upgrading: Bool,
        _ body: (Range<Int>) -> Void
    ) {
        forEachKept(
            fieldsStart: head.fieldsStart, length: head.length, fieldCount: head.fieldCount,
            hasHopByHopField: head.hasHopByHopField, in: bytes, upgrading: upgrading, body)
    }

    /// `from`: where the first range starts (0: the start line is included). `dropHost` and
    /// `dropForwarded` remove those fields too (the proxy writes its own).
    static func forEachKept(
        fieldsStart: Int, length: Int, fieldCount: Int, hasHopByHopField: Bool,
        in bytes: UnsafeRawBufferPointer, upgrading: Bool, from: Int = 0,
        dropHost: Bool = false, dropForwarded: Bool = false, routingFields: [String] = [],
        _ body: (Range<Int>) -> Void
    ) {
        let end = length - 2
        guard hasHopByHopField || dropHost || dropForwarded else {
            if end > from { body(from..<end) }
            return
        }
        let drops = Drops(upgrading: upgrading, host: dropHost, forwarded: dropForwarded, routingFields: routingFields)
        func forEachField(_ visit: (HeaderField) -> Bool) {
            HeaderField.forEach(in: bytes, from: fieldsStart, headLength: length, visit)
        }
        // Names listed in Connection are hop-by-hop too (§7.6.1). They are looked up by scanning
        // the Connection values again for each field; when that could cost more than a few
        // thousand comparisons (a huge Connection list), a set is built once instead.
        var connectionBytes = 0
        forEachField { field in
            if RequestHeadInfo.equalsIgnoringCase(bytes, field.nameRange, "connection") {
                connectionBytes += field.valueRange.count
            }
            return true
        }
        if connectionBytes * fieldCount > 16 * 1024 {
            var listed: Set<String> = []
            forEachField { field in
                if RequestHeadInfo.equalsIgnoringCase(bytes, field.nameRange, "connection") {
                    forEachToken(bytes, field.valueRange) { listed.insert(lowercased(bytes, $0)) }
                }
                return true
            }
            emit(fieldsStart, length, from, bytes, drops, isListed: { listed.contains(lowercased(bytes, $0)) }, body)
        } else {
            emit(
                fieldsStart, length, from, bytes, drops,
                isListed: { name in
                    var found = false
                    forEachField { field in
                        guard RequestHeadInfo.equalsIgnoringCase(bytes, field.nameRange, "connection") else { return true }
                        forEachToken(bytes, field.valueRange) { token in
                            if !found && equalsIgnoringCase(bytes, token, name) { found = true }
                        }
                        return !found
                    }
                    return found
                }, body)
        }
    }

    /// What besides the hop-by-hop fields leaves the head.
    struct Drops {
        var upgrading: Bool
        var host: Bool
        var forwarded: Bool
        var routingFields: [String]
    }

    private static func emit(
        _ fieldsStart: Int, _ length: Int, _ from: Int, _ bytes: UnsafeRawBufferPointer, _ drops: Drops,
        isListed: (Range<Int>) -> Bool, _ body: (Range<Int>) -> Void
    ) {
        let end = length - 2
        var segmentStart = from
        var dropping: Int?
        HeaderField.forEach(in: bytes, from: fieldsStart, headLength: length) { field in
            let lineStart = Int(field.nameStart)
            if dropping != nil {
                // The previous field was dropped: its line ends where this one starts.
                segmentStart = lineStart
                dropping = nil
            }
            let name = field.nameRange
            let isUpgrade = RequestHeadInfo.equalsIgnoringCase(bytes, name, "upgrade")
            let drop =
                isAlwaysRemoved(bytes, name) || (isUpgrade && !drops.upgrading)
                || (drops.host && RequestHeadInfo.equalsIgnoringCase(bytes, name, "host"))
                || (drops.forwarded && isForwarded(bytes, name))
                || (!(drops.upgrading && isUpgrade) && !isEndToEnd(bytes, name, drops.routingFields) && isListed(name))
            if drop {
                if lineStart > segmentStart { body(segmentStart..<lineStart) }
                dropping = lineStart
            }
            return true
        }
        if dropping != nil { segmentStart = end }
        if end > segmentStart { body(segmentStart..<end) }
    }

    /// Fields a `Connection` list cannot remove (its token is ignored, as HAProxy and nginx
    /// do): the body's framing (Content-Length, Transfer-Encoding), the host, the cookies and
    /// whatever field the routing key is read from. Dropping them would let a client make the
    /// replica read a different request than ds-lb framed and routed: `Connection:
    /// content-length` with a body would turn the body into a second request on a pooled
    /// connection, answered to another client. A legitimate client never lists them, so
    /// ignoring the token refuses nobody.
    static func isEndToEnd(_ bytes: UnsafeRawBufferPointer, _ name: Range<Int>, _ routingFields: [String]) -> Bool {
        switch name.count {
        case 4: if RequestHeadInfo.equalsIgnoringCase(bytes, name, "host") { return true }
        case 6: if RequestHeadInfo.equalsIgnoringCase(bytes, name, "cookie") { return true }
        case 14: if RequestHeadInfo.equalsIgnoringCase(bytes, name, "content-length") { return true }
        case 17: if RequestHeadInfo.equalsIgnoringCase(bytes, name, "transfer-encoding") { return true }
        default: break
        }
        for routing in routingFields where RequestHeadInfo.equalsIgnoringCase(bytes, name, routing) { return true }
        return false
    }

    static func isForwarded(_ bytes: UnsafeRawBufferPointer, _ name: Range<Int>) -> Bool {
        RequestHeadInfo.equalsIgnoringCase(bytes, name, "x-forwarded-for")
            || RequestHeadInfo.equalsIgnoringCase(bytes, name, "x-forwarded-proto")
    }

    static func isAlwaysRemoved(_ bytes: UnsafeRawBufferPointer, _ name: Range<Int>) -> Bool {
        switch name.count {
        case 2: return RequestHeadInfo.equalsIgnoringCase(bytes, name, "te")
        case 10:
            return RequestHeadInfo.equalsIgnoringCase(bytes, name, "connection")
                || RequestHeadInfo.equalsIgnoringCase(bytes, name, "keep-alive")
        case 16: return RequestHeadInfo.equalsIgnoringCase(bytes, name, "proxy-connection")
        default: return false
        }
    }

    /// The comma-separated tokens of a value, trimmed of OWS, empty ones skipped.
    static func forEachToken(_ bytes: UnsafeRawBufferPointer, _ value: Range<Int>, _ body: (Range<Int>) -> Void) {
        var start = value.lowerBound
        while start < value.upperBound {
            var stop = start
            while stop < value.upperBound && bytes[stop] != 44 { stop += 1 }
            let token = HeadParser.trimmingOWS(bytes, start..<stop)
            if !token.isEmpty { body(token) }
            start = stop + 1
        }
    }

    static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ a: Range<Int>, _ b: Range<Int>) -> Bool {
        guard a.count == b.count else { return false }
        for k in 0..<a.count
        where RequestHeadInfo.asciiLower(bytes[a.lowerBound + k]) != RequestHeadInfo.asciiLower(bytes[b.lowerBound + k]) {
            return false
        }
        return true
    }

    static func lowercased(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self).lowercased()
    }
}
