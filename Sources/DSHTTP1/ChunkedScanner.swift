/// Follows chunked framing (RFC 9112 §7.1) over bytes that are forwarded unchanged, to learn
/// where the message ends. It never rewrites: the bytes go through as they came.
package struct ChunkedScanner: Sendable {
    package enum Outcome: Equatable, Sendable {
        /// All `consumed` bytes belong to the message; more are needed.
        case needMore
        /// The message ended after `consumed` bytes (trailers included).
        case complete(consumed: Int)
    }

    enum State: Sendable {
        case size
        case sizeDigitsDone
        case extensionText
        case sizeLF
        case data(UInt64)
        case dataCR
        case dataLF
        case trailerLineStart
        case trailerName
        case trailerValue
        case trailerLF
        case lastLF
        case done
    }

    /// Longest chunk extension accepted; §7.1.1 asks recipients to limit them.
    package static let maxExtensionBytes = 4096

    private var state: State = .size
    private var size: UInt64 = 0
    private var sizeDigits = 0
    private var extensionBytes = 0
    private var isLastChunk = false
    /// Chunk data declared so far (the sizes of the chunks whose size line has been read).
    package private(set) var dataBytes: UInt64 = 0
    /// A body cap (`--max-body-size`): a size line that would take the data past it is refused
    /// with 413 before any byte of that chunk is passed on.
    package let maxDataBytes: UInt64?

    package init(maxDataBytes: UInt64? = nil) {
        self.maxDataBytes = maxDataBytes
    }

    package var isDone: Bool {
        if case .done = state { return true }
        return false
    }

    /// Data bytes of the current chunk not yet seen, while the scanner is inside a chunk's data
    /// (its size line read and checked against `maxDataBytes`); 0 while it reads framing. A
    /// proxy may pass that many bytes on without scanning them (splice), then `skipData`.
    package var dataRemaining: UInt64 {
        if case .data(let remaining) = state { return remaining }
        return 0
    }

    /// Accounts for `count` bytes of the current chunk's data that went by without being
    /// scanned: the scanner goes on as if it had seen them. Never more than `dataRemaining`:
    /// what follows a chunk's data is framing, which must be scanned.
    package mutating func skipData(_ count: UInt64) {
        guard count > 0 else { return }
        guard case .data(let remaining) = state, count <= remaining else {
            preconditionFailure("skipData past the current chunk's data")
        }
        state = remaining == count ? .dataCR : .data(remaining - count)
    }

    /// Scans `bytes`; returns how much of it is part of the message, or throws on bad framing.
    package mutating func scan(_ bytes: UnsafeRawBufferPointer) throws -> Outcome {
        var i = 0
        let count = bytes.count
        while i < count {
            switch state {
            case .data(let remaining):
                let take = Int(min(UInt64(count - i), remaining))
                i += take
                state = remaining - UInt64(take) == 0 ? .dataCR : .data(remaining - UInt64(take))
                continue
            case .done:
                return .complete(consumed: i)
            default:
                break
            }
            let c = bytes[i]
            i += 1
            switch state {
            case .size:
                if let digit = Self.hexValue(c) {
                    sizeDigits += 1
                    guard sizeDigits <= 15 else { throw HTTPParseError(.badRequest, "Chunk size too large") }
                    size = size << 4 | UInt64(digit)
                } else if sizeDigits == 0 {
                    throw HTTPParseError(.badRequest, "Invalid chunk size")
                } else if c == 13 {
                    state = .sizeLF
                } else if c == 59 { // ';' starts a chunk extension
                    state = .extensionText
                } else if c == 32 || c == 9 {
                    state = .sizeDigitsDone
                } else {
                    throw HTTPParseError(.badRequest, "Invalid chunk size")
                }
            case .sizeDigitsDone:
                // BWS before a chunk extension only.
                if c == 59 {
                    state = .extensionText
                } else if c == 13 {
                    state = .sizeLF
                } else if c != 32 && c != 9 {
                    throw HTTPParseError(.badRequest, "Invalid chunk size line")
                }
            case .extensionText:
                extensionBytes += 1
                guard extensionBytes <= Self.maxExtensionBytes else {
                    throw HTTPParseError(.badRequest, "Chunk extension too long")
                }
                if c == 13 {
                    state = .sizeLF
                } else if c == 10 || c == 0 {
                    throw HTTPParseError(.badRequest, "Bad byte in chunk extension")
                }
            case .sizeLF:
                guard c == 10 else { throw HTTPParseError(.badRequest, "Bare CR in chunk size line") }
                extensionBytes = 0
                sizeDigits = 0
                if size == 0 {
                    state = .trailerLineStart
                } else {
                    // Saturating: sixteen chunks of 15 hex digits would overflow a plain sum.
                    let (sum, overflow) = dataBytes.addingReportingOverflow(size)
                    dataBytes = overflow ? .max : sum
                    if let maxDataBytes, dataBytes > maxDataBytes {
                        throw HTTPParseError(
                            .contentTooLarge, "Chunked request body larger than the limit of \(maxDataBytes) bytes")
                    }
                    state = .data(size)
                    size = 0
                }
            case .dataCR:
                guard c == 13 else { throw HTTPParseError(.badRequest, "Chunk data not followed by CRLF") }
                state = .dataLF
            case .dataLF:
                guard c == 10 else { throw HTTPParseError(.badRequest, "Chunk data not followed by CRLF") }
                state = .size
            // Trailer fields follow the head's field rules (HeadParser.parseFields): a token, a
            // colon with nothing before it, a value without control characters, no obs-fold. A
            // laxer reading would let `0\r\n` be followed by a request line taken as a trailer
            // here and as the next request by a peer that reads it otherwise.
            case .trailerLineStart:
                if c == 13 {
                    state = .lastLF
                } else if c == 10 {
                    throw HTTPParseError(.badRequest, "Bare LF in trailer section")
                } else if c == 32 || c == 9 {
                    throw HTTPParseError(.badRequest, "Obsolete line folding in trailer section")
                } else if HeadParser.isTokenChar(c) {
                    try countTrailerByte(); state = .trailerName
                } else {
                    throw HTTPParseError(.badRequest, "Invalid trailer field name")
                }
            case .trailerName:
                try countTrailerByte()
                if c == 58 {
                    state = .trailerValue
                } else if c == 32 || c == 9 {
                    throw HTTPParseError(.badRequest, "Whitespace before colon in trailer field")
                } else if !HeadParser.isTokenChar(c) {
                    throw HTTPParseError(.badRequest, "Invalid trailer field name")
                }
            case .trailerValue:
                try countTrailerByte()
                if c == 13 {
                    state = .trailerLF
                } else if (c < 32 && c != 9) || c == 127 {
                    throw HTTPParseError(.badRequest, "Control character in trailer field")
                }
            case .trailerLF:
                guard c == 10 else { throw HTTPParseError(.badRequest, "Bare CR in trailer section") }
                state = .trailerLineStart
            case .lastLF:
                guard c == 10 else { throw HTTPParseError(.badRequest, "Bare CR after last chunk") }
                state = .done
                return .complete(consumed: i)
            case .data, .done:
                break
            }
        }
        if case .done = state { return .complete(consumed: i) }
        return .needMore
    }

    private mutating func countTrailerByte() throws(HTTPParseError) {
        extensionBytes += 1
        guard extensionBytes <= 64 * 1024 else { throw HTTPParseError(.badRequest, "Trailer section too large") }
    }

    /// The value of one hex digit, nil for any other byte (chunk sizes, percent-escapes).
    @inline(__always)
    package static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: return c - 48
        case 65...70: return c - 55
        case 97...102: return c - 87
        default: return nil
        }
    }
}
