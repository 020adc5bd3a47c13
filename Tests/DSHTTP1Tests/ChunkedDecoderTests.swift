import DSHTTP1
import DSTestSupport
import XCTest

/// ChunkedDecoder: the chunk data of a body, with `ChunkedScanner`'s framing rules and its exact
/// end, however the bytes are split.
final class ChunkedDecoderTests: XCTestCase {
    /// Decodes `parts` in order; the data and how many bytes belonged to the body (nil: needs more).
    private func decode(_ decoder: inout ChunkedDecoder, _ parts: [ArraySlice<UInt8>]) throws -> (data: [UInt8], consumed: Int?) {
        var data: [UInt8] = []
        var consumed = 0
        for part in parts {
            switch try Array(part).withUnsafeBytes({ try decoder.decode($0, into: &data) }) {
            case .needMore: consumed += part.count
            case .complete(let n): return (data, consumed + n)
            }
        }
        return (data, nil)
    }

    /// Property: whole, in three random reads and byte by byte, a body decodes to its data and
    /// ends at its last byte, never taking the next message's bytes.
    func testDecodesTheDataAndEndsExactlyWhateverTheReads() throws {
        var rng = SeededRandom(seed: 0xDEC0DE)
        for m in 0..<200 {
            let (message, data) = ChunkedScannerTests.randomBody(&rng)
            let stream = message + ChunkedScannerTests.nextMessage
            var a = Int.random(in: 0...message.count, using: &rng)
            var b = Int.random(in: 0...message.count, using: &rng)
            if a > b { swap(&a, &b) }
            let readings: [(String, [ArraySlice<UInt8>])] = [
                ("whole", [stream[...]]),
                ("splits \(a) \(b)", [stream[0..<a], stream[a..<b], stream[b...]]),
                ("byte by byte", stream.indices.map { stream[$0...$0] }),
            ]
            for (name, parts) in readings {
                var decoder = ChunkedDecoder()
                let (decoded, consumed) = try decode(&decoder, parts)
                XCTAssertEqual(decoded, data, "message \(m) \(name)")
                XCTAssertEqual(consumed, message.count, "message \(m) \(name)")
                XCTAssertTrue(decoder.isDone, "message \(m) \(name)")
            }
        }
    }

    /// An events stream: lines split across chunks (one with an extension) and reads; the body is
    /// not over until the last chunk's empty trailer section has ended too.
    func testAStreamIsNotDoneUntilItsTrailerSectionEnds() throws {
        let lines = bytes(#"{"Type":"container","Action":"die"}"# + "\n" + #"{"Type":"network","Action":"connect"}"# + "\n")
        let cut = 20
        let wire =
            bytes("\(String(cut, radix: 16));x=1\r\n") + lines[..<cut] + bytes("\r\n\(String(lines.count - cut, radix: 16))\r\n")
            + lines[cut...] + bytes("\r\n")
        var decoder = ChunkedDecoder()
        let (decoded, consumed) = try decode(&decoder, wire.indices.map { wire[$0...$0] })
        XCTAssertEqual(decoded, lines)
        XCTAssertNil(consumed)
        XCTAssertEqual(try decode(&decoder, [bytes("0\r\n")[...]]).consumed, nil)
        XCTAssertFalse(decoder.isDone)
        XCTAssertEqual(try decode(&decoder, [bytes("\r\nGET")[...]]).consumed, 2)
        XCTAssertTrue(decoder.isDone)
    }

    func testNothingIsDecodedOrConsumedAfterTheEnd() throws {
        var decoder = ChunkedDecoder()
        XCTAssertEqual(try decode(&decoder, [bytes("3\r\nabc\r\n0\r\n\r\n3\r\nxyz\r\n")[...]]).consumed, 13)
        let after = try decode(&decoder, [bytes("3\r\nxyz\r\n")[...]])
        XCTAssertEqual(after.data, [])
        XCTAssertEqual(after.consumed, 0)
    }

    /// Every framing the scanner refuses, the decoder refuses with the same 400, whole or byte by byte.
    func testRefusesWhatTheScannerRefuses() {
        for (name, text) in ChunkedScannerTests.invalid {
            let wire = bytes(text)
            for (reading, parts) in [("whole", [wire[...]]), ("byte by byte", wire.indices.map { wire[$0...$0] })] {
                var decoder = ChunkedDecoder()
                XCTAssertThrowsError(try decode(&decoder, parts), "\(name) \(reading)") { error in
                    XCTAssertEqual((error as? HTTPParseError)?.status.code, 400, "\(name) \(reading)")
                }
            }
        }
    }
}
