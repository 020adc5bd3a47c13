/// Decodes a chunked body (RFC 9112 §7.1) held whole in memory: the engine answers some calls
/// chunked, and we read every answer to the end. Extensions and trailers are skipped.
public enum ChunkedDecoder {
    public static func decodeAll(_ bytes: [UInt8]) throws -> [UInt8] {
        var output: [UInt8] = []
        var i = 0
        while true {
            // chunk-size [ chunk-ext ] CRLF
            guard let lineEnd = findCRLF(bytes, from: i) else { throw DockerError.protocolError("chunked body cut short") }
            var size = 0
            var digits = 0
            var k = i
            while k < lineEnd, let value = hexValue(bytes[k]) {
                guard size < (1 << 40) else { throw DockerError.protocolError("chunk size too large") }
                size = size * 16 + value
                digits += 1
                k += 1
            }
            guard digits > 0 else { throw DockerError.protocolError("malformed chunk size") }
            i = lineEnd + 2
            if size == 0 { return output }  // trailers, if any, are ignored
            guard i + size + 2 <= bytes.count else { throw DockerError.protocolError("chunked body cut short") }
            output.append(contentsOf: bytes[i..<(i + size)])
            guard bytes[i + size] == 13, bytes[i + size + 1] == 10 else { throw DockerError.protocolError("chunk not followed by CRLF") }
            i += size + 2
        }
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
