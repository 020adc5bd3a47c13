import DSSystem
import Foundation
import Glibc
import XCTest

final class HeapTrimTests: XCTestCase {
    /// Frees most of many small blocks but keeps every 64th, so free pages sit between live
    /// blocks where glibc's own top-of-heap trimming cannot reach them: only malloc_trim can.
    func testReleasesFreePagesBetweenLiveBlocks() throws {
        // A sanitizer replaces glibc's allocator, whose arenas are what malloc_trim trims.
        try XCTSkipIf(
            ProcessInfo.processInfo.environment["DSLB_SANITIZER"] != nil,
            "malloc_trim has nothing to trim under the \(ProcessInfo.processInfo.environment["DSLB_SANITIZER"] ?? "") sanitizer's allocator"
        )
        let blocks = (0..<16 * 1024).map { _ in malloc(1000)! }
        for (i, block) in blocks.enumerated() where i % 64 != 0 { free(block) }
        XCTAssertTrue(HeapTrim.releaseFreePages())
        for (i, block) in blocks.enumerated() where i % 64 == 0 { free(block) }
    }
}
