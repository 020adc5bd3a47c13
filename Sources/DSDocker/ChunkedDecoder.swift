/// Decodes a chunked body (RFC 9112 §7.1) as it arrives, in pieces of any size: the engine
/// answers lists chunked and streams `/events` chunked. Extensions are skipped; the body ends at
/// the last chunk (size 0) and trailers are not read (we close every connection after its answer).
public struct ChunkedDecoder: Sendable {
    private var pending: [UInt8] = []  // undecoded bytes: a partial size line or CRLF
    private var remaining = 0          // data bytes left in the current chunk
    private var needCRLF = false
    public private(set) var finished = false

    public init() {}

    /// Feeds the next bytes of the body; returns the data they completed.
    public mutating func feed(_ bytes: some Collection<UInt8>) throws -> [UInt8] {
        var input = pending
        input.append(contentsOf: bytes)
        pending = []
        var output: [UInt8] = []
        var i = 0
        while i < input.count && !finished {
            if remaining > 0 {
                let take = min(remaining, input.count - i)
                output.append(contentsOf: input[i..<(i + take)])
                i += take
                remaining -= take
                if remaining == 0 { needCRLF = true }
                continue
            }
            if needCRLF {
                guard input.count - i >= 2 else { break }
                guard input[i] == 13, input[i + 1] == 10 else { throw DockerError.protocolError("chunk not followed by CRLF") }
                i += 2
                needCRLF = false
                continue
            }
            // chunk-size [ chunk-ext ] CRLF
            guard let lineEnd = Self.findCRLF(input, from: i) else {
                guard input.count - i < 4096 else { throw DockerError.protocolError("chunk size line too long") }
                break
            }
            var size = 0
            var digits = 0
            var k = i
            while k < lineEnd, let value = Self.hexValue(input[k]) {
                guard size < (1 << 40) else { throw DockerError.protocolError("chunk size too large") }
                size = size * 16 + value
                digits += 1
                k += 1
            }
            guard digits > 0 else { throw DockerError.protocolError("malformed chunk size") }
            i = lineEnd + 2
            if size == 0 { finished = true } else { remaining = size }
        }
        if !finished && i < input.count { pending = Array(input[i...]) }
        return output
    }

    /// A whole chunked body held in memory; an error when it stops before the last chunk.
    public static func decodeAll(_ bytes: [UInt8]) throws -> [UInt8] {
        var decoder = ChunkedDecoder()
        let output = try decoder.feed(bytes)
        guard decoder.finished else { throw DockerError.protocolError("chunked body cut short") }
        return output
    }

    private static func findCRLF(_ bytes: [UInt8], from start: Int) -> Int? {
        var i = start
        while i + 1 < bytes.count {
            if bytes[i] == 13 && bytes[i + 1] == 10 { return i }
            i += 1
        }
        return nil
    }

    private static func hexValue(_ c: UInt8) -> Int? {
        switch c {
        case 48...57: return Int(c - 48)
        case 97...102: return Int(c - 87)
        case 65...70: return Int(c - 55)
        default: return nil
        }
    }
}
