extension HopByHop {
    /// Ranges of a response head (`fields` and `length` as parsed from `bytes`) a proxy forwards
    /// (RFC 9110 §7.6.1): the status line and every field line except `Connection` and the
    /// fields it names (never the end-to-end ones, see `isEndToEnd`), `Keep-Alive`,
    /// `Proxy-Connection`, `TE`, and `Upgrade` unless the response is a 101 switching to it. The
    /// final empty line is not included: the proxy adds its own `Connection` field (close,
    /// keep-alive for HTTP/1.0, Upgrade) before it. The same rules as the proxy's
    /// `forEachKeptResponseRange`, collected (this form allocates the result).
    package static func keptResponseRanges(
        fields: [HeaderField], length: Int, in bytes: UnsafeRawBufferPointer,
        upgrading: Bool
    ) -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        forEachKept(
            fieldsStart: fields.first.map { Int($0.nameStart) } ?? length - 2, length: length, fieldCount: fields.count,
            hasHopByHopField: true, in: bytes, upgrading: upgrading
        ) { ranges.append($0) }
        return ranges
    }
}
