import DSReactor
import DSSystem
import DSTestSupport
import Glibc
import XCTest

final class ByteBufferTests: XCTestCase {
    private func contents(_ b: ByteBuffer) -> [UInt8] { Array(b.readable) }

    func testAppendConsumeBasics() {
        let b = ByteBuffer(capacity: 16)
        XCTAssertEqual(b.capacity, 64, "capacity has a floor of 64")
        XCTAssertTrue(b.isEmpty)
        b.append("hello ")
        b.append(Array("world".utf8))
        XCTAssertEqual(contents(b), Array("hello world".utf8))
        XCTAssertEqual(b.readableCount, 11)
        b.consume(6)
        XCTAssertEqual(contents(b), Array("world".utf8))
        XCTAssertEqual(b.readerIndex, 6)
        b.consume(5)
        XCTAssertTrue(b.isEmpty)
        XCTAssertEqual(b.readerIndex, 0, "an emptied buffer rewinds")
        XCTAssertEqual(b.writerIndex, 0)
        b.append([])
        XCTAssertTrue(b.isEmpty)
    }

    func testCompactionWithoutGrowth() {
        let b = ByteBuffer(capacity: 64)
        b.append([UInt8](0..<60))
        b.consume(50)
        let space = b.reserve(40)
        XCTAssertGreaterThanOrEqual(space.count, 40)
        XCTAssertEqual(b.capacity, 64, "10 live bytes + 40 fit after compaction")
        XCTAssertEqual(b.readerIndex, 0)
        XCTAssertEqual(contents(b), Array(50..<60))
    }

    func testGrowthKeepsContent() {
        let b = ByteBuffer(capacity: 64)
        b.append([UInt8](0..<40))
        b.consume(10)
        let space = b.reserve(1000)
        XCTAssertGreaterThanOrEqual(space.count, 1000)
        XCTAssertEqual(b.capacity, 2048, "64 doubled until 30 live bytes + 1000 fit")
        XCTAssertEqual(contents(b), Array(10..<40))
        space.copyBytes(from: [UInt8](repeating: 7, count: 3))
        b.commit(3)
        XCTAssertEqual(contents(b), Array(10..<40) + [7, 7, 7])
    }

    func testClear() {
        let b = ByteBuffer()
        b.append("abc")
        b.consume(1)
        b.clear()
        XCTAssertTrue(b.isEmpty)
        XCTAssertEqual(b.readerIndex, 0)
        XCTAssertEqual(b.writerIndex, 0)
    }

    /// Property: any sequence of append / reserve+commit / consume / clear keeps the readable
    /// bytes equal to a plain array model; capacity never shrinks and indexes stay in range.
    func testRandomOperationsMatchModel() {
        var rng = SeededRandom(seed: 0xB0F)
        for round in 0..<40 {
            let b = ByteBuffer(capacity: Int.random(in: 0...256, using: &rng))
            var model: [UInt8] = []
            var capacity = b.capacity
            for step in 0..<300 {
                switch Int.random(in: 0..<10, using: &rng) {
                case 0...3:
                    let n = Int.random(in: 0...(Bool.random(using: &rng) ? 100 : 3000), using: &rng)
                    let data = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
                    b.append(data)
                    model += data
                case 4...5:
                    let minimum = Int.random(in: 1...2000, using: &rng)
                    let space = b.reserve(minimum)
                    XCTAssertGreaterThanOrEqual(space.count, minimum)
                    let n = Int.random(in: 0...minimum, using: &rng)
                    let data = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
                    space.copyBytes(from: data)
                    b.commit(n)
                    model += data
                case 6...8:
                    let n = Int.random(in: 0...model.count, using: &rng)
                    b.consume(n)
                    model.removeFirst(n)
                default:
                    if Int.random(in: 0..<4, using: &rng) == 0 {
                        b.clear()
                        model.removeAll()
                    }
                }
                XCTAssertEqual(b.readableCount, model.count, "round \(round) step \(step)")
                XCTAssertEqual(contents(b), model, "round \(round) step \(step)")
                XCTAssertGreaterThanOrEqual(b.capacity, capacity)
                XCTAssertTrue(0 <= b.readerIndex && b.readerIndex <= b.writerIndex && b.writerIndex <= b.capacity)
                capacity = b.capacity
                if model.isEmpty { XCTAssertEqual(b.readerIndex, 0) }
            }
        }
    }

    /// read(from:) and write(to:) over a socket pair move the bytes intact, including large
    /// amounts that need several calls and hit EAGAIN.
    func testReadAndWriteThroughSocketPair() throws {
        let (a, b) = try socketPair()
        defer { Socket.close(b) }
        var aOpen = true
        defer { if aOpen { Socket.close(a) } }
        var rng = SeededRandom(seed: 3)
        let payload = (0..<300_000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let out = ByteBuffer(capacity: 1024)
        out.append(payload)
        let input = ByteBuffer(capacity: 64)
        let deadline = monotonicNanos() + 10_000_000_000
        var sawWouldBlock = false
        while input.readableCount < payload.count && monotonicNanos() < deadline {
            if !out.isEmpty, case .wouldBlock = try out.write(to: a, limit: 50_000) { sawWouldBlock = true }
            while case .done(let n) = try input.read(from: b, chunk: 4096), n > 0 {}
        }
        XCTAssertEqual(input.readableCount, payload.count)
        XCTAssertTrue(Array(input.readable) == payload, "bytes changed in transit")
        XCTAssertTrue(out.isEmpty)
        _ = sawWouldBlock // depends on socket buffer sizes; not asserted

        Socket.close(a)
        aOpen = false
        let eof = try input.read(from: b)
        guard case .done(0) = eof else { return XCTFail("expected EOF, got \(eof)") }
        input.consume(input.readableCount)
        XCTAssertTrue(input.isEmpty)
    }

    func testReadWouldBlockOnEmptySocket() throws {
        let (a, b) = try socketPair()
        defer { Socket.close(a); Socket.close(b) }
        let buffer = ByteBuffer()
        guard case .wouldBlock = try buffer.read(from: b) else { return XCTFail("expected wouldBlock") }
        XCTAssertTrue(buffer.isEmpty)
    }
}
