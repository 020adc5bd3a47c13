import DSSystem
import DSTestSupport
import Glibc
import XCTest

@testable import DSReactor

/// SplicePipe: bytes go socket → pipe → socket unchanged; "would block" into an empty pipe means
/// the source is empty; a closed source reads as EOF; limits are honoured.
final class SplicePipeTests: XCTestCase {
    func testBytesCrossUnchangedAndEmptySourceWouldBlock() throws {
        let (srcWriter, src) = try socketPair()
        let (dst, dstReader) = try socketPair()
        var writerOpen = true
        defer {
            [src, dst, dstReader].forEach { Socket.close($0) }
            if writerOpen { Socket.close(srcWriter) }
        }
        let pipe = try SplicePipe()
        var rng = SeededRandom(seed: 7)
        let payload = (0..<200_000).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        var received: [UInt8] = []
        var sent = 0
        var buffer = [UInt8](repeating: 0, count: 65536)
        let deadline = monotonicNanos() + 10_000_000_000
        while received.count < payload.count && monotonicNanos() < deadline {
            if sent < payload.count {
                let n = payload[sent...].withUnsafeBytes { Glibc.write(srcWriter, $0.baseAddress, min($0.count, 32768)) }
                if n > 0 { sent += n }
            }
            if pipe.buffered == 0 {
                switch try pipe.fill(from: src, limit: 1 << 20) {
                case .wouldBlock: XCTAssertEqual(pipe.buffered, 0)
                case .done(let n): XCTAssertGreaterThan(n, 0, "not EOF while the writer is open")
                }
            }
            _ = try pipe.drain(to: dst)
            let n = buffer.withUnsafeMutableBytes { Glibc.read(dstReader, $0.baseAddress, $0.count) }
            if n > 0 { received += buffer[0..<n] }
        }
        XCTAssertEqual(received.count, payload.count)
        XCTAssertTrue(received == payload, "spliced bytes must arrive unchanged and in order")
        // Drained source: an empty pipe that would block.
        XCTAssertEqual(pipe.buffered, 0)
        guard case .wouldBlock = try pipe.fill(from: src, limit: 1 << 20) else { return XCTFail("expected would block") }
        // The limit is honoured, and a closed source is EOF once drained.
        writeAll(srcWriter, [1, 2, 3, 4, 5])
        Socket.close(srcWriter)
        writerOpen = false
        usleep(10_000)
        guard case .done(2) = try pipe.fill(from: src, limit: 2) else { return XCTFail("expected 2 bytes") }
        _ = try pipe.drain(to: dst)
        guard case .done(3) = try pipe.fill(from: src, limit: 10) else { return XCTFail("expected the other 3") }
        _ = try pipe.drain(to: dst)
        guard case .done(0) = try pipe.fill(from: src, limit: 10) else { return XCTFail("expected EOF") }
    }
}
