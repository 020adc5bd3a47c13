/// Which parts of a request head a proxy forwards (RFC 9110 §7.6.1): everything except the
/// hop-by-hop fields — `Connection` and the fields it names, `Keep-Alive`, `Proxy-Connection`,
/// `TE`, `Transfer-Encoding`'s hop-specific companion `Trailer` stays — and `Upgrade` unless the
/// request is upgrading. The result is byte ranges of the original head, so the kept bytes go
/// out as they came (by writev), never re-serialised.
public enum HopByHop {
    /// Ranges of `bytes` (the head as parsed into `head`) to forward, in order, covering the
    /// request line and the kept field lines, without the final empty line.
    public static func keptRanges(of head: RequestHead, in bytes: UnsafeRawBufferPointer, upgrading: Bool = false) -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        forEachKeptRange(of: head.info, in: bytes, upgrading: upgrading) { ranges.append($0) }
        return ranges
    }

    /// Calls `body` with each range `keptRanges` would return, in order, without allocating for
    /// any ordinary head: names are compared in place, ignoring case.
    public static func forEachKeptRange(of head: RequestHeadInfo, in bytes: UnsafeRawBufferPointer, upgrading: Bool = false,
                                        _ body: (Range<Int>) -> Void) {
        forEachKept(fieldsStart: head.fieldsStart, length: head.length, fieldCount: head.fieldCount,
                    hasHopByHopField: head.hasHopByHopField, in: bytes, upgrading: upgrading, body)
    }

    /// The same for a response head (RFC 9110 §7.6.1 applies to both directions): the status
    /// line and the kept field lines, without the final empty line; `upgrading` for a 101 that
    /// switches to the Upgrade the client asked for.
    public static func forEachKeptResponseRange(of head: ResponseHeadInfo, in bytes: UnsafeRawBufferPointer, upgrading: Bool,
                                                _ body: (Range<Int>) -> Void) {
        forEachKept(fieldsStart: head.fieldsStart, length: head.length, fieldCount: head.fieldCount,
                    hasHopByHopField: head.hasHopByHopField, in: bytes, upgrading: upgrading, body)
    }

    static func forEachKept(fieldsStart: Int, length: Int, fieldCount: Int, hasHopByHopField: Bool,
                            in bytes: UnsafeRawBufferPointer, upgrading: Bool, _ body: (Range<Int>) -> Void) {
        let end = length - 2
        guard hasHopByHopField else { return body(0..<end) }
        func forEachField(_ visit: (HeaderField) -> Bool) {
            HeaderField.forEach(in: bytes, from: fieldsStart, headLength: length, visit)
        }
        // Names listed in Connection are hop-by-hop too (§7.6.1). They are looked up by scanning
        // the Connection values again for each field; when that could cost more than a few
        // thousand comparisons (a huge Connection list), a set is built once instead.
        var connectionBytes = 0
        forEachField { field in
            if RequestHeadInfo.equalsIgnoringCase(bytes, field.nameRange, "connection") { connectionBytes += field.valueRange.count }
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
            emit(fieldsStart, length, bytes, upgrading, isListed: { listed.contains(lowercased(bytes, $0)) }, body)
        } else {
            emit(fieldsStart, length, bytes, upgrading, isListed: { name in
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

    private static func emit(_ fieldsStart: Int, _ length: Int, _ bytes: UnsafeRawBufferPointer, _ upgrading: Bool,
                             isListed: (Range<Int>) -> Bool, _ body: (Range<Int>) -> Void) {
        let end = length - 2
        var segmentStart = 0
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
            let drop = isAlwaysRemoved(bytes, name) || (isUpgrade && !upgrading)
                || (!(upgrading && isUpgrade) && isListed(name))
            if drop {
                if lineStart > segmentStart { body(segmentStart..<lineStart) }
                dropping = lineStart
            }
            return true
        }
        if dropping != nil { segmentStart = end }
        if end > segmentStart { body(segmentStart..<end) }
    }

    static func isAlwaysRemoved(_ bytes: UnsafeRawBufferPointer, _ name: Range<Int>) -> Bool {
        switch name.count {
        case 2: return RequestHeadInfo.equalsIgnoringCase(bytes, name, "te")
        case 10: return RequestHeadInfo.equalsIgnoringCase(bytes, name, "connection")
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
        for k in 0..<a.count where RequestHeadInfo.asciiLower(bytes[a.lowerBound + k]) != RequestHeadInfo.asciiLower(bytes[b.lowerBound + k]) {
            return false
        }
        return true
    }

    static func lowercased(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self).lowercased()
    }
}
