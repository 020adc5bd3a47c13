import DSSystem
import Glibc
import XCTest

final class FileDescriptorTests: XCTestCase {
    /// A fresh descriptor (the lowest free number, as open(2) hands out).
    private func openSocket() throws -> Int32 {
        try Socket.openStream(family: AF_INET)
    }

    private func isOpen(_ fd: Int32) -> Bool {
        fcntl(fd, F_GETFD) >= 0
    }

    /// Holds one descriptor, so a test can end its owner's life at a chosen point.
    private final class Holder {
        let descriptor: FileDescriptor
        init(_ descriptor: consuming FileDescriptor) { self.descriptor = descriptor }
    }

    func testDeinitClosesTheDescriptor() throws {
        let raw = try openSocket()
        var holder: Holder? = Holder(FileDescriptor(adopting: raw))
        XCTAssertEqual(holder?.descriptor.rawValue, raw)
        XCTAssertTrue(isOpen(raw))
        holder = nil
        XCTAssertFalse(isOpen(raw), "the owner went away and the descriptor stayed open")
        XCTAssertEqual(errno, EBADF)
    }

    func testConsumingCloseClosesAtOnceAndNeverAgain() throws {
        let raw = try openSocket()
        let fd = FileDescriptor(adopting: raw)
        fd.close()
        XCTAssertFalse(isOpen(raw), "close() left the descriptor open")
        XCTAssertEqual(errno, EBADF)
        // The kernel hands the number out again at once; a second close (a deinit after the
        // consuming close) would now close this unrelated socket.
        let reused = try openSocket()
        defer { Socket.close(reused) }
        guard reused == raw else { throw XCTSkip("the number was not reused (\(reused) after \(raw))") }
        XCTAssertTrue(isOpen(reused), "the closed descriptor was closed a second time")
    }

    func testDeinitClosesExactlyOnce() throws {
        let raw = try openSocket()
        var holder: Holder? = Holder(FileDescriptor(adopting: raw))
        holder = nil
        let reused = try openSocket()
        defer { Socket.close(reused) }
        guard reused == raw else { throw XCTSkip("the number was not reused (\(reused) after \(raw))") }
        XCTAssertNil(holder)
        XCTAssertTrue(isOpen(reused), "the descriptor was closed a second time")
    }

    func testReleaseHandsTheDescriptorOverWithoutClosing() throws {
        let raw = try openSocket()
        let fd = FileDescriptor(adopting: raw)
        let released = fd.release()
        defer { Socket.close(released) }
        XCTAssertEqual(released, raw)
        XCTAssertTrue(isOpen(raw), "release() closed the descriptor")
    }
}
