import XCTest

@testable import DSHashing

final class XXH64Tests: XCTestCase {
    private func h(_ bytes: [UInt8], seed: UInt64 = 0) -> UInt64 {
        bytes.withUnsafeBytes { XXH64.hash($0, seed: seed) }
    }

    /// Vectors from the reference implementation (the three from the brief, plus longer inputs
    /// that exercise the 32-byte stripe loop, the 8/4/1-byte tail and non-zero seeds).
    func testReferenceVectors() {
        XCTAssertEqual(XXH64.hash("", seed: 0), 0xEF46_DB37_51D8_E999)
        XCTAssertEqual(XXH64.hash("a", seed: 0), 0xD24E_C4F1_A98C_6E5B)
        XCTAssertEqual(XXH64.hash("abc", seed: 0), 0x44BC_2CF5_AD77_0999)
        XCTAssertEqual(XXH64.hash("Nobody inspects the spammish repetition", seed: 0), 0xFBCE_A83C_8A37_8BF1)
        XCTAssertEqual(XXH64.hash("server-1", seed: 7), 0x205D_81BE_8F9A_4F58)
        XCTAssertEqual(XXH64.hash("abcdefghijklmnopqrstuvwxyz012345", seed: 0), 0xBF2C_D639_B414_3B80)
        XCTAssertEqual(
            XXH64.hash("abcdefghijklmnopqrstuvwxyz0123456789", seed: 0x9E37_79B9_7F4A_7C15),
            0xF398_96CF_9A49_A16E)
        XCTAssertEqual(h(Array(0..<100)), 0x6AC1_E580_3216_6597)
        XCTAssertEqual(h(Array(0..<100), seed: 12345), 0x028B_A1AE_2DE4_DE27)
    }

    func testEmptyBufferWithoutBaseAddress() {
        XCTAssertEqual(XXH64.hash(UnsafeRawBufferPointer(start: nil, count: 0)), 0xEF46_DB37_51D8_E999)
    }

    func testUInt64ShortcutMatchesBytes() {
        XCTAssertEqual(XXH64.hash(UInt64(0x0123_4567_89AB_CDEF), seed: 42), 0x1AF0_A5AB_EE8E_D12E)
        var rng = SplitMix64(seed: 1)
        for _ in 0..<1000 {
            let v = rng.next(), seed = rng.next()
            let viaBytes = withUnsafeBytes(of: v.littleEndian) { XXH64.hash($0, seed: seed) }
            XCTAssertEqual(XXH64.hash(v, seed: seed), viaBytes)
        }
    }

    /// Unaligned input must hash like aligned input (loads are unaligned-safe).
    func testUnalignedInput() {
        let data: [UInt8] = Array(0..<101)
        let expected = h(Array(1..<101))
        data.withUnsafeBytes { raw in
            XCTAssertEqual(XXH64.hash(UnsafeRawBufferPointer(rebasing: raw[1...])), expected)
        }
    }
}
