/// De-chunks a body (RFC 9112 §7.1) with `ChunkedScanner`'s rules, for a client that needs the
/// payload (`HTTPClient`: the Docker engine's chunked answers and its `/events` stream) rather than the
/// proxy's "where does the message end". There is one set of chunked rules in the project, the
/// scanner's strict ones: a body the data plane would refuse is never taken as well-formed on
/// the control plane, and a real engine always sends well-formed framing, so strictness costs
/// nothing there. The proxy keeps using the scanner directly, which copies nothing.
package struct ChunkedDecoder: Sendable {
    private var scanner = ChunkedScanner()

    package init() {}

    /// True once the last chunk and the trailer section (read and checked, then dropped) ended.
    package var isDone: Bool { scanner.isDone }

    /// Decodes the next bytes of the body, appending the chunk data they carry to `output`;
    /// returns how many of `bytes` belong to the body, as `ChunkedScanner.scan` does. Throws
    /// the scanner's `HTTPParseError` on bad framing.
    package mutating func decode(_ bytes: UnsafeRawBufferPointer, into output: inout [UInt8]) throws -> ChunkedScanner.Outcome {
        var i = 0
        let count = bytes.count
        while i < count {
            let remaining = scanner.dataRemaining
            if remaining > 0 {
                let take = Int(min(UInt64(count - i), remaining))
                output.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[i..<(i + take)]))
                scanner.skipData(UInt64(take))
                i += take
                continue
            }
            // Framing goes to the scanner up to and including the next LF. Chunk data only ever
            // starts right after an LF (the one ending its size line), so the scanner cannot run
            // on into data it would skip over instead of handing it to us.
            var end = i
            while end < count && bytes[end] != 10 { end += 1 }
            end = min(end + 1, count)
            switch try scanner.scan(UnsafeRawBufferPointer(rebasing: bytes[i..<end])) {
            case .needMore: i = end
            case .complete(let consumed): return .complete(consumed: i + consumed)
            }
        }
        return scanner.isDone ? .complete(consumed: i) : .needMore
    }
}
