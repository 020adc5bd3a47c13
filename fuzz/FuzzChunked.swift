// libFuzzer target: the chunked scanner (the data plane's) and the decoder built on it (the
// Docker client's). Properties: no crash; the outcome does not depend on how the bytes are split
// into reads; `consumed` never exceeds what was offered; the decoder ends the body at the same
// byte as the scanner and refuses exactly what it refuses; and a chunked body built from the
// input (sizes and extensions taken from its bytes) is accepted by the scanner, ends exactly at
// its last byte, and decodes to the data it was built from.

import DSHTTP1

/// Feeds `bytes` in pieces cut at `cuts`; the end of the message (nil: needs more) or an error.
private func scanInPieces(_ bytes: UnsafeRawBufferPointer, cuts: [Int]) -> Result<Int?, HTTPParseError> {
    var scanner = ChunkedScanner()
    var offset = 0
    for end in cuts + [bytes.count] where end >= offset {
        let piece = UnsafeRawBufferPointer(rebasing: bytes[offset..<end])
        do {
            switch try scanner.scan(piece) {
            case .needMore:
                offset = end
            case .complete(let consumed):
                require(consumed >= 0 && consumed <= piece.count, "consumed \(consumed) of \(piece.count)")
                require(scanner.isDone, "complete but not done")
                return .success(offset + consumed)
            }
        } catch let error as HTTPParseError {
            return .failure(error)
        } catch {
            violated("scan threw a non-HTTPParseError: \(error)")
        }
    }
    return .success(nil)
}

private func same(_ a: Result<Int?, HTTPParseError>, _ b: Result<Int?, HTTPParseError>) -> Bool {
    switch (a, b) {
    case (.success(let x), .success(let y)): return x == y
    case (.failure(let x), .failure(let y)): return x.status == y.status
    default: return false
    }
}

/// Decodes `bytes` in pieces cut at `cuts`: the end of the message (nil: needs more) or the
/// error, as `scanInPieces` reports them, and the data decoded.
private func decodeInPieces(_ bytes: UnsafeRawBufferPointer, cuts: [Int]) -> (end: Result<Int?, HTTPParseError>, data: [UInt8]) {
    var decoder = ChunkedDecoder()
    var data: [UInt8] = []
    var offset = 0
    for end in cuts + [bytes.count] where end >= offset {
        let piece = UnsafeRawBufferPointer(rebasing: bytes[offset..<end])
        do {
            switch try decoder.decode(piece, into: &data) {
            case .needMore:
                offset = end
            case .complete(let consumed):
                require(consumed >= 0 && consumed <= piece.count, "decoder consumed \(consumed) of \(piece.count)")
                require(decoder.isDone, "decoder complete but not done")
                return (.success(offset + consumed), data)
            }
        } catch let error as HTTPParseError {
            return (.failure(error), data)
        } catch {
            violated("decode threw a non-HTTPParseError: \(error)")
        }
    }
    return (.success(nil), data)
}

/// A well-formed chunked body from the input: each byte pair is a chunk size (0-255) and whether
/// it carries an extension; then a trailer when the last byte is odd. Also returns its data.
private func buildBody(_ bytes: UnsafeRawBufferPointer) -> (body: [UInt8], data: [UInt8]) {
    var body: [UInt8] = []
    var data: [UInt8] = []
    var i = 0
    while i + 1 < bytes.count && body.count < 64 * 1024 {
        let size = Int(bytes[i]) + 1
        body += Array(String(size, radix: 16, uppercase: bytes[i + 1] & 2 != 0).utf8)
        if bytes[i + 1] & 1 != 0 { body += Array(";name=\"v\"".utf8) }
        let chunk = (0..<size).map { UInt8(truncatingIfNeeded: Int(bytes[i + 1]) &+ $0) }
        body += [13, 10] + chunk + [13, 10]
        data += chunk
        i += 2
    }
    body += Array("0\r\n".utf8)
    if let last = bytes.last, last & 1 != 0 { body += Array("X-Trailer: t\r\n".utf8) }
    return (body + [13, 10], data)
}

func fuzz(_ bytes: UnsafeRawBufferPointer) {
    let size = bytes.count
    let whole = scanInPieces(bytes, cuts: [])
    let cut = splitPoint(bytes)
    let split = scanInPieces(bytes, cuts: [cut])
    require(same(whole, split), "split at \(cut): \(split) vs whole \(whole)")
    let byteByByte = scanInPieces(bytes, cuts: Array(0..<min(size, 512)))
    if size <= 512 { require(same(whole, byteByByte), "byte by byte: \(byteByByte) vs whole \(whole)") }

    // The decoder: the scanner's end and refusals whatever the reads, and the same data.
    let decoded = decodeInPieces(bytes, cuts: [])
    let decodedSplit = decodeInPieces(bytes, cuts: [cut])
    require(same(decoded.end, whole), "decoder \(decoded.end) vs scanner \(whole)")
    require(same(decodedSplit.end, whole), "decoder split at \(cut): \(decodedSplit.end) vs scanner \(whole)")
    if case .success = whole { require(decoded.data == decodedSplit.data, "decoder split at \(cut) decodes other data") }

    let (body, data) = buildBody(bytes)
    body.withUnsafeBytes { built in
        let at = splitPoint(bytes) % max(1, built.count)
        let result = scanInPieces(built, cuts: [at])
        guard case .success(let end) = result, end == built.count else {
            violated("a well-formed body of \(built.count) bytes gave \(result)")
        }
        let d = decodeInPieces(built, cuts: [at])
        guard case .success(built.count) = d.end, d.data == data else {
            violated("a well-formed body of \(built.count) bytes did not decode to its \(data.count) data bytes")
        }
    }
}
