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

    /// The input the per-length vectors hash: byte i is (37·i + 11) mod 256.
    private static let lengthInput: [UInt8] = (0..<41).map { UInt8((37 * $0 + 11) & 0xFF) }

    /// Reference `XXH64()` (libxxhash 0.8.1) of the first n bytes of `lengthInput`, n = 0 … 40,
    /// with seed 0 and with seed 0x9E3779B97F4A7C15: every tail after no, one and two 8-byte
    /// words, and the first lengths that take the stripes (out of line) before the tail.
    private static let byLength: [(seed: UInt64, hashes: [UInt64])] = [
        (
            0,
            [
                0xEF46_DB37_51D8_E999, 0xF592_C0C7_639C_4CB6, 0x78F1_AE91_E3B0_5E99, 0x22C0_8528_601D_4F27,
                0xFB1E_5CF2_F1AE_4D95, 0x9D21_3ECA_1F68_F273, 0x0F28_996D_1449_561E, 0x5613_AC51_0496_C04E,
                0x57CB_2B75_21F3_E21A, 0xC3F1_D097_7525_7B66, 0x920F_407F_4749_03FF, 0x1BEF_4539_443A_2D5A,
                0x2F53_B002_6603_9E64, 0xAED0_293A_7BB1_3C7A, 0x3936_48AA_0A97_D46F, 0x90A9_714E_B00E_8D29,
                0xC684_3CEF_9972_1174, 0xF72E_5E62_2B27_2AD6, 0xADE4_2C57_75A4_3C96, 0xC3BD_AB46_2625_8CEA,
                0xA62C_1832_8D2D_838D, 0x2F04_FF79_D78F_8827, 0x1E5B_0540_DEFC_3911, 0x5E6A_1FE0_5D7C_06F8,
                0xFA2D_58B3_57E1_565E, 0x8ADE_FB8C_854B_47A5, 0x2B08_5F5F_9DA3_3210, 0x87B8_0516_E95C_BBBC,
                0xFF5C_77EF_1446_F7E5, 0x8B15_B100_1A84_DBDB, 0x6077_F1AC_1F08_0751, 0xE4A0_E629_E519_A4AE,
                0xCC6B_8AAA_DA79_0B2D, 0x35EC_4985_0475_A832, 0xF56A_5778_7FD5_FE4E, 0x59DE_01E6_5B64_555B,
                0xBEBB_6D8C_24FB_3CFA, 0x5F31_3A67_9050_2101, 0x9FFD_421B_A9CD_1BAB, 0x2298_4E41_B53C_1210,
                0x3B21_ED23_EEA8_5C2D,
            ]
        ),
        (
            0x9E37_79B9_7F4A_7C15,
            [
                0xC434_9FC9_3C01_0000, 0x3F7E_BBD0_A20F_83CC, 0x144E_CEE3_1017_4470, 0xB829_B5FB_BA7F_12FB,
                0x4D32_E4C8_42C6_371E, 0x5E7C_C349_2DB5_A387, 0x52FF_8086_17F2_EDA6, 0x5663_14BF_1BDA_8AAB,
                0x696E_1FE0_E0DF_37F4, 0x0B41_ADDA_7E7D_4818, 0x0111_2E7A_B8C6_3095, 0x5EC5_378D_F48B_586B,
                0x2D02_07F8_8149_B069, 0xA0BC_B83B_8004_0474, 0xF049_A3CF_D2EB_CC2F, 0x1706_9DD5_19D9_0D9D,
                0x223F_C12E_174C_04D1, 0x78FE_1AE0_0A07_BF2F, 0xCDB9_BD1B_AC80_D4E6, 0xBBC0_0F71_F281_59F1,
                0xA56C_4C23_53C9_0B46, 0xF0D7_42EC_750F_BA3A, 0x7BBC_C12C_2263_DA8A, 0xD35C_D461_E8DC_01E4,
                0x7AC2_FEEF_3FF0_16FE, 0x560A_1B09_1E7F_DF06, 0x6650_30E2_640D_A703, 0x87D7_667F_9339_6E4C,
                0x3239_1F04_95E7_EC91, 0x2584_C410_97FB_46DB, 0xE725_73DB_4E32_507F, 0xA348_B910_BC65_B7BD,
                0x41C2_EADA_450D_18F0, 0xB6F8_C0B7_6AF8_F9DA, 0x09FD_58AE_7A0B_367D, 0x17C6_DCC8_D5EF_86F8,
                0xCB01_19A2_7460_37C9, 0xF1E7_DCA4_CECE_C23F, 0xC966_3FA0_DF31_4913, 0x36E2_0A8E_6258_2668,
                0x75B2_EA20_C357_9DFD,
            ]
        ),
    ]

    func testReferenceVectorsAtEveryLength() {
        for (seed, hashes) in XXH64Tests.byLength {
            for n in 0...40 {
                XCTAssertEqual(h(Array(XXH64Tests.lengthInput[..<n]), seed: seed), hashes[n], "length \(n), seed \(seed)")
            }
        }
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
