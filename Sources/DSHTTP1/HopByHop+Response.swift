extension HopByHop {
    /// Ranges of a response head (`fields` and `length` as parsed from `bytes`) a proxy forwards
    /// (RFC 9110 §7.6.1): the status line and every field line except `Connection` and the
    /// fields it names, `Keep-Alive`, `Proxy-Connection`, `TE`, and `Upgrade` unless the
    /// response is a 101 switching to it. The final empty line is not included: the proxy adds
    /// its own `Connection` field (close, keep-alive for HTTP/1.0, Upgrade) before it.
    ///
    /// Names are compared in place, ignoring case; an ordinary response (no hop-by-hop field)
    /// gives one range and allocates only the result.
    public static func keptResponseRanges(fields: [HeaderField], length: Int, in bytes: UnsafeRawBufferPointer,
                                          upgrading: Bool) -> [Range<Int>] {
        let end = length - 2
        func isNamed(_ field: HeaderField, _ name: StaticString) -> Bool {
            let count = Int(field.nameEnd - field.nameStart)
            guard count == name.utf8CodeUnitCount else { return false }
            let expected = name.utf8Start
            for k in 0..<count {
                var c = bytes[Int(field.nameStart) + k]
                if c >= 65 && c <= 90 { c += 32 }
                if c != expected[k] { return false }
            }
            return true
        }
        /// Whether `field`'s name is one of the tokens of a `Connection` field.
        func isListed(_ field: HeaderField) -> Bool {
            let name = Int(field.nameStart)..<Int(field.nameEnd)
            for connection in fields where isNamed(connection, "connection") {
                var start = Int(connection.valueStart)
                let stop = Int(connection.valueEnd)
                while start < stop {
                    var comma = start
                    while comma < stop && bytes[comma] != 44 { comma += 1 }
                    var lo = start, hi = comma
                    while lo < hi && (bytes[lo] == 32 || bytes[lo] == 9) { lo += 1 }
                    while hi > lo && (bytes[hi - 1] == 32 || bytes[hi - 1] == 9) { hi -= 1 }
                    if hi - lo == name.count {
                        var same = true
                        for k in 0..<name.count {
                            var a = bytes[lo + k], b = bytes[name.lowerBound + k]
                            if a >= 65 && a <= 90 { a += 32 }
                            if b >= 65 && b <= 90 { b += 32 }
                            if a != b { same = false; break }
                        }
                        if same { return true }
                    }
                    start = comma + 1
                }
            }
            return false
        }
        var ranges: [Range<Int>] = []
        var segmentStart = 0
        for (i, field) in fields.enumerated() {
            let isUpgrade = isNamed(field, "upgrade")
            let drop = isNamed(field, "connection") || isNamed(field, "keep-alive") || isNamed(field, "proxy-connection")
                || isNamed(field, "te") || (isUpgrade && !upgrading) || (!(isUpgrade && upgrading) && isListed(field))
            guard drop else { continue }
            let lineStart = Int(field.nameStart)
            let lineEnd = i + 1 < fields.count ? Int(fields[i + 1].nameStart) : end
            if lineStart > segmentStart { ranges.append(segmentStart..<lineStart) }
            segmentStart = lineEnd
        }
        if end > segmentStart { ranges.append(segmentStart..<end) }
        return ranges
    }
}
