/// Which parts of a request head a proxy forwards (RFC 9110 §7.6.1): everything except the
/// hop-by-hop fields — `Connection` and the fields it names, `Keep-Alive`, `Proxy-Connection`,
/// `TE`, `Transfer-Encoding`'s hop-specific companion `Trailer` stays — and `Upgrade` unless the
/// request is upgrading. The result is byte ranges of the original head, so the kept bytes go
/// out as they came (by writev), never re-serialised.
public enum HopByHop {
    static let alwaysRemoved: Set<String> = ["connection", "keep-alive", "proxy-connection", "te"]

    /// Ranges of `bytes` (the head as parsed into `head`) to forward, in order, covering the
    /// request line and the kept field lines, without the final empty line.
    public static func keptRanges(of head: RequestHead, in bytes: UnsafeRawBufferPointer, upgrading: Bool = false) -> [Range<Int>] {
        let end = head.length - 2
        guard !head.fields.isEmpty else { return [0..<end] }
        // Names listed in Connection are hop-by-hop too (§7.6.1).
        var listed: Set<String> = []
        var anyHopByHop = false
        for field in head.fields {
            let name = Self.lowercasedName(field, bytes)
            if name == "connection" {
                for token in field.value(in: bytes).split(separator: ",") {
                    let t = token.trimmingWhitespace().lowercased()
                    if !t.isEmpty { listed.insert(t) }
                }
            }
            if alwaysRemoved.contains(name) || (name == "upgrade" && !upgrading) { anyHopByHop = true }
        }
        guard anyHopByHop || !listed.isEmpty else { return [0..<end] }
        var ranges: [Range<Int>] = []
        var segmentStart = 0
        for (i, field) in head.fields.enumerated() {
            let name = Self.lowercasedName(field, bytes)
            let drop = alwaysRemoved.contains(name) || (name == "upgrade" && !upgrading)
                || (listed.contains(name) && !(upgrading && name == "upgrade"))
            guard drop else { continue }
            let lineStart = Int(field.nameStart)
            let lineEnd = i + 1 < head.fields.count ? Int(head.fields[i + 1].nameStart) : end
            if lineStart > segmentStart { ranges.append(segmentStart..<lineStart) }
            segmentStart = lineEnd
        }
        if end > segmentStart { ranges.append(segmentStart..<end) }
        return ranges
    }

    static func lowercasedName(_ field: HeaderField, _ bytes: UnsafeRawBufferPointer) -> String {
        field.name(in: bytes).lowercased()
    }
}
