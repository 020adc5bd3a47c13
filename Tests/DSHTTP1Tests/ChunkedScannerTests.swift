import DSHTTP1
import DSTestSupport
import XCTest

/// ChunkedScanner (RFC 9112 §7.1): finds the exact end of a chunked body however the bytes are
/// split, and refuses malformed framing.
final class ChunkedScannerTests: XCTestCase {
    /// Bytes that follow the message on the connection: they must never be counted as consumed.
    static let nextMessage = bytes("GET /next HTTP/1.1\r\nHost: lb\r\n\r\n")

    /// A random valid chunked body: chunk sizes in random hex case, optional extensions and BWS,
    /// data that contains CR, LF and "0\r\n\r\n" look-alikes, an optional trailer section.
    static func randomMessage(_ rng: inout SeededRandom) -> [UInt8] {
        randomBody(&rng).message
    }

    /// `randomMessage` and the chunk data it carries.
    static func randomBody(_ rng: inout SeededRandom) -> (message: [UInt8], data: [UInt8]) {
        var out: [UInt8] = []
        var data: [UInt8] = []
        let chunks = Int.random(in: 0...5, using: &rng)
        for _ in 0..<chunks {
            let size = Bool.random(using: &rng) ? Int.random(in: 1...16, using: &rng) : Int.random(in: 17...300, using: &rng)
            var hex = String(size, radix: 16, uppercase: Bool.random(using: &rng))
            if Int.random(in: 0..<6, using: &rng) == 0 { hex = "00" + hex }
            out += bytes(hex)
            switch Int.random(in: 0..<4, using: &rng) {
            case 0: out += bytes(";name=value")
            case 1: out += bytes(" \t;ext")
            case 2: out += bytes(";a=\"quoted;\";b")
            default: break
            }
            out += bytes("\r\n")
            let alphabet = bytes("0123456789abcdef\r\n;: ")
            for _ in 0..<size { data.append(alphabet[Int.random(in: 0..<alphabet.count, using: &rng)]) }
            out += data.suffix(size)
            out += bytes("\r\n")
        }
        out += bytes(Int.random(in: 0..<3, using: &rng) == 0 ? "000" : "0")
        if Bool.random(using: &rng) { out += bytes(";last=1") }
        out += bytes("\r\n")
        for k in 0..<Int.random(in: 0...3, using: &rng) {
            out += bytes("X-Trailer-\(k): value \(Int.random(in: 0...999, using: &rng))\r\n")
        }
        out += bytes("\r\n")
        return (out, data)
    }

    private func scan(_ scanner: inout ChunkedScanner, _ part: ArraySlice<UInt8>) throws -> ChunkedScanner.Outcome {
        try Array(part).withUnsafeBytes { try scanner.scan($0) }
    }

    /// Property: for every split point of every message, the first part is `.needMore` (or the
    /// whole message) and the second part completes at exactly the message's last byte.
    func testEverySplitEndsExactly() throws {
        var rng = SeededRandom(seed: 0x5EED_C0DE)
        for m in 0..<60 {
            let message = Self.randomMessage(&rng)
            let stream = message + Self.nextMessage
            for split in 0...message.count {
                var scanner = ChunkedScanner()
                let first = try scan(&scanner, stream[0..<split])
                if split < message.count {
                    XCTAssertEqual(first, .needMore, "message \(m) split \(split)")
                    XCTAssertFalse(scanner.isDone)
                } else {
                    XCTAssertEqual(first, .complete(consumed: message.count), "message \(m)")
                }
                let second = try scan(&scanner, stream[split...])
                XCTAssertEqual(second, .complete(consumed: message.count - split), "message \(m) split \(split)")
                XCTAssertTrue(scanner.isDone)
            }
        }
    }

    /// Property: random three-way splits and byte-at-a-time feeding agree with one scan.
    func testRandomSplitsAndSingleBytes() throws {
        var rng = SeededRandom(seed: 42)
        for m in 0..<100 {
            let message = Self.randomMessage(&rng)
            let stream = message + Self.nextMessage

            var whole = ChunkedScanner()
            XCTAssertEqual(try scan(&whole, stream[...]), .complete(consumed: message.count), "message \(m)")

            var a = Int.random(in: 0...message.count, using: &rng)
            var b = Int.random(in: 0...message.count, using: &rng)
            if a > b { swap(&a, &b) }
            var scanner = ChunkedScanner()
            var consumed = 0
            for range in [0..<a, a..<b, b..<stream.count] {
                switch try scan(&scanner, stream[range]) {
                case .needMore: consumed += range.count
                case .complete(let n): consumed += n; XCTAssertTrue(scanner.isDone)
                }
            }
            XCTAssertEqual(consumed, message.count, "message \(m) splits \(a) \(b)")

            var bytewise = ChunkedScanner()
            for (k, byte) in message.enumerated() {
                let outcome = try scan(&bytewise, [byte][...])
                XCTAssertEqual(outcome, k == message.count - 1 ? .complete(consumed: 1) : .needMore, "message \(m) byte \(k)")
            }
        }
    }

    /// Property: a proxy that splices chunk data tells the scanner with `skipData` instead of
    /// scanning it; skipping any part of any chunk's data (as `dataRemaining` allows) finds the
    /// message's end at exactly the same byte as scanning everything.
    func testSkippedDataFindsTheSameEnd() throws {
        var rng = SeededRandom(seed: 0x5B11CE)
        for m in 0..<200 {
            let message = Self.randomMessage(&rng)
            let stream = message + Self.nextMessage
            var scanner = ChunkedScanner()
            var at = 0
            var end: Int?
            while end == nil && at < stream.count {
                if scanner.dataRemaining > 0 && Bool.random(using: &rng) {
                    let skip = Int.random(in: 1...Int(scanner.dataRemaining), using: &rng)
                    scanner.skipData(UInt64(skip))
                    at += skip
                    continue
                }
                let piece = Int.random(in: 1...8, using: &rng)
                let upTo = min(stream.count, at + piece)
                switch try scan(&scanner, stream[at..<upTo]) {
                case .needMore: at = upTo
                case .complete(let n): end = at + n
                }
            }
            XCTAssertEqual(end, message.count, "message \(m)")
            XCTAssertTrue(scanner.isDone)
        }
    }

    /// `dataRemaining` is the rest of the current chunk's data, 0 outside data; data past the
    /// declared size (no CRLF where it must be) is still refused after a skip.
    func testDataRemainingAndSkipThenBadFraming() throws {
        var scanner = ChunkedScanner()
        XCTAssertEqual(scanner.dataRemaining, 0)
        XCTAssertEqual(try scan(&scanner, bytes("a00;x=1\r\nab")[...]), .needMore)
        XCTAssertEqual(scanner.dataRemaining, 0xa00 - 2)
        scanner.skipData(0xa00 - 10)
        XCTAssertEqual(scanner.dataRemaining, 8)
        scanner.skipData(8)
        XCTAssertEqual(scanner.dataRemaining, 0)
        XCTAssertThrowsError(try scan(&scanner, bytes("!!\r\n0\r\n\r\n")[...])) { error in
            XCTAssertEqual((error as? HTTPParseError)?.status.code, 400)
        }
        var good = ChunkedScanner()
        XCTAssertEqual(try scan(&good, bytes("3\r\n")[...]), .needMore)
        good.skipData(3)
        XCTAssertEqual(try scan(&good, bytes("\r\n0\r\n\r\nGET")[...]), .complete(consumed: 7))
    }

    func testKnownBodies() throws {
        let cases: [(String, Int)] = [
            ("0\r\n\r\n", 5),
            ("5\r\nhello\r\n0\r\n\r\n", 15),
            ("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 26),
            ("A\r\n0123456789\r\n0\r\n\r\n", 20),
            ("a;x=y\r\n0123456789\r\n0;done\r\nExpires: never\r\n\r\n", 45),
            ("3  ;ext\r\nabc\r\n0\r\n\r\n", 19),
            ("fffffffffffffff\r\n", -1), // 15 hex digits is the largest size accepted: needs more
        ]
        for (text, expected) in cases {
            var scanner = ChunkedScanner()
            let outcome = try scan(&scanner, (bytes(text) + Self.nextMessage)[...])
            if expected < 0 {
                XCTAssertEqual(outcome, .needMore, text.debugDescription)
            } else {
                XCTAssertEqual(expected, text.utf8.count, "table typo: \(text.debugDescription)")
                XCTAssertEqual(outcome, .complete(consumed: expected), text.debugDescription)
            }
        }
    }

    func testScanAfterDoneConsumesNothing() throws {
        var scanner = ChunkedScanner()
        XCTAssertEqual(try scan(&scanner, bytes("0\r\n\r\n")[...]), .complete(consumed: 5))
        XCTAssertEqual(try scan(&scanner, bytes("more")[...]), .complete(consumed: 0))
        XCTAssertEqual(try scan(&scanner, [][...]), .complete(consumed: 0))
    }

    func testEmptyInputNeedsMore() throws {
        var scanner = ChunkedScanner()
        XCTAssertEqual(try scan(&scanner, [][...]), .needMore)
        XCTAssertFalse(scanner.isDone)
    }

    static let invalid: [(String, String)] = [
        ("no size digits", "\r\n"),
        ("non-hex size", "g\r\n"),
        ("size with junk", "5x\r\nhello\r\n0\r\n\r\n"),
        ("negative size", "-5\r\n"),
        ("0x prefix", "0x5\r\n"),
        ("leading space", " 5\r\n"),
        ("16 hex digits (overflow)", "1000000000000000\r\n"),
        ("20 hex digits", "ffffffffffffffffffff\r\n"),
        ("bare LF after size", "5\nhello\r\n0\r\n\r\n"),
        ("bare CR after size", "5\rhello\r\n"),
        ("junk after BWS", "5 x\r\n"),
        ("data longer than size", "5\r\nhelloX\r\n0\r\n\r\n"),
        ("data shorter than size", "5\r\nhell\r\n0\r\n\r\n"),
        ("LF only after data", "5\r\nhello\n0\r\n\r\n"),
        ("CR not followed by LF after data", "5\r\nhello\rX"),
        ("LF in extension", "5;ext\nhello\r\n"),
        ("NUL in extension", "5;e\u{0}xt\r\nhello\r\n"),
        ("too-long extension", "5;" + String(repeating: "e", count: ChunkedScanner.maxExtensionBytes + 10) + "\r\nhello\r\n"),
        ("bare LF ends body", "0\r\n\n"),
        ("bare CR ends body", "0\r\n\rX"),
        ("bare LF in trailer", "0\r\nX-T: v\n\r\n"),
        ("bare CR in trailer", "0\r\nX-T: v\rX\r\n\r\n"),
        ("NUL in trailer", "0\r\nX-T: \u{0}\r\n\r\n"),
        ("trailer section too large", "0\r\nX-T: " + String(repeating: "t", count: 70 * 1024) + "\r\n\r\n"),
        // Trailer fields follow the head's field rules.
        ("obs-fold in trailer", "0\r\nX-T: a\r\n b\r\n\r\n"),
        ("trailer starting with a tab", "0\r\n\tX-T: a\r\n\r\n"),
        ("space before colon in trailer", "0\r\nX-T : a\r\n\r\n"),
        ("tab before colon in trailer", "0\r\nX-T\t: a\r\n\r\n"),
        ("trailer without colon", "0\r\nX-T\r\n\r\n"),
        ("empty trailer name", "0\r\n: a\r\n\r\n"),
        ("non-token trailer name", "0\r\nX(T): a\r\n\r\n"),
        ("control character in trailer value", "0\r\nX-T: \u{1b}\r\n\r\n"),
        ("DEL in trailer value", "0\r\nX-T: a\u{7f}\r\n\r\n"),
        ("request line after the last chunk", "0\r\nGET /smuggled HTTP/1.1\r\nHost: lb\r\n\r\n"),
        ("absolute-form request line after the last chunk", "0\r\nGET http://lb/smuggled HTTP/1.1\r\n\r\n"),
    ]

    func testValidTrailersAreAccepted() throws {
        let text = "0\r\nX-T: a\tb \u{e9}\r\nX-Empty:\r\nX-!#$%&'*+.^_`|~09az: 1\r\n\r\n"
        var scanner = ChunkedScanner()
        XCTAssertEqual(try scan(&scanner, bytes(text)[...]), .complete(consumed: bytes(text).count))
    }

    func testInvalidFramingThrows400() {
        for (name, text) in Self.invalid {
            var scanner = ChunkedScanner()
            XCTAssertThrowsError(try scan(&scanner, bytes(text)[...]), name) { error in
                XCTAssertEqual((error as? HTTPParseError)?.status.code, 400, name)
            }
        }
    }

    /// The same refusals when the bytes arrive one at a time.
    func testInvalidFramingThrowsByteByByte() {
        for (name, text) in Self.invalid {
            var scanner = ChunkedScanner()
            var threw = false
            for byte in bytes(text) {
                do {
                    _ = try scan(&scanner, [byte][...])
                } catch {
                    XCTAssertEqual((error as? HTTPParseError)?.status.code, 400, name)
                    threw = true
                    break
                }
            }
            XCTAssertTrue(threw, name)
        }
    }

    func testExtensionWellUnderTheLimitIsAccepted() throws {
        let text = "5;" + String(repeating: "e", count: ChunkedScanner.maxExtensionBytes / 2) + "\r\nhello\r\n0\r\n\r\n"
        var scanner = ChunkedScanner()
        XCTAssertEqual(try scan(&scanner, bytes(text)[...]), .complete(consumed: text.utf8.count))
    }

    /// `maxDataBytes` (--max-body-size for chunked bodies): a body of exactly the cap passes; the
    /// size line that would pass it is refused with 413 before its data; the count saturates
    /// instead of overflowing on many huge chunk sizes.
    func testDataCapRefusesTheSizeLineThatPassesIt() throws {
        var exact = ChunkedScanner(maxDataBytes: 10)
        let ok = "5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n"
        XCTAssertEqual(try scan(&exact, bytes(ok)[...]), .complete(consumed: ok.utf8.count))
        XCTAssertEqual(exact.dataBytes, 10)

        var over = ChunkedScanner(maxDataBytes: 10)
        let prefix = "5\r\nhello\r\n"
        XCTAssertEqual(try scan(&over, bytes(prefix)[...]), .needMore)
        XCTAssertThrowsError(try scan(&over, bytes("6\r\n")[...])) { error in
            XCTAssertEqual((error as? HTTPParseError)?.status.code, 413)
        }

        var huge = ChunkedScanner()
        let big = String(repeating: "fffffffffffffff\r\n", count: 1)
        XCTAssertEqual(try scan(&huge, bytes(big)[...]), .needMore)
        XCTAssertEqual(huge.dataBytes, 0xfff_ffff_ffff_ffff)
    }
}
