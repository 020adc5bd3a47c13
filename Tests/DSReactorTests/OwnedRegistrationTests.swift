import DSSystem
import Glibc
import XCTest

@testable import DSReactor

/// Descriptors the loop owns (`register(_: FileDescriptor, handler:)`): one `close(_:of:)`
/// unregisters and closes them, once.
final class OwnedRegistrationTests: XCTestCase {
    private func isOpen(_ fd: Int32) -> Bool {
        fcntl(fd, F_GETFD) >= 0
    }

    func testCloseUnregistersAndClosesExactlyOnce() throws {
        let h = try LoopHarness()
        defer { XCTAssertTrue(h.stop()) }
        let (mine, peer) = try socketPair()
        defer { Socket.close(peer) }
        let handler = RecordingHandler(fd: mine)
        let stranger = RecordingHandler(fd: mine)
        let returned = try h.sync { try h.loop.register(FileDescriptor(adopting: mine), handler: handler) }
        XCTAssertEqual(returned, mine)
        writeAll(peer, Array("ping".utf8))
        XCTAssertTrue(waitUntil { handler.received.get == Array("ping".utf8) }, "no readable event")

        try h.sync { h.loop.close(mine, of: stranger) }
        XCTAssertTrue(isOpen(mine), "a handler that does not hold the registration closed it")

        try h.sync { h.loop.close(mine, of: handler) }
        XCTAssertFalse(isOpen(mine), "close(_:of:) left the descriptor open")
        // The peer sees the close: the descriptor really went, not just its registration.
        var byte: UInt8 = 0
        XCTAssertEqual(Glibc.read(peer, &byte, 1), 0)

        // The number comes back for the next socket; a second close by the old handler must
        // leave that one alone, registered or not.
        let (reused, reusedPeer) = try socketPair()
        defer { Socket.close(reused); Socket.close(reusedPeer) }
        guard reused == mine || reusedPeer == mine else { throw XCTSkip("the number \(mine) was not reused") }
        let newcomer = RecordingHandler(fd: mine)
        try h.sync { try h.loop.register(mine, handler: newcomer) }
        try h.sync { h.loop.close(mine, of: handler) }
        XCTAssertTrue(isOpen(mine), "a second close closed the socket that reused the number")
        writeAll(reused == mine ? reusedPeer : reused, Array("x".utf8))
        XCTAssertTrue(waitUntil { newcomer.received.get == Array("x".utf8) }, "the new registration was dropped")
        try h.sync { h.loop.unregister(mine) }
        XCTAssertTrue(isOpen(mine), "unregister closed a descriptor the loop does not own")
    }

    /// epoll refuses regular files (EPERM): the descriptor handed over is closed, not leaked.
    func testFailedRegistrationClosesTheDescriptor() throws {
        let h = try LoopHarness()
        defer { XCTAssertTrue(h.stop()) }
        let fd = try openRegularFile()
        let handler = RecordingHandler(fd: fd)
        let error = try h.sync { () -> SyscallError? in
            do {
                try h.loop.register(FileDescriptor(adopting: fd), handler: handler)
                return nil
            } catch let e as SyscallError {
                return e
            }
        }
        XCTAssertEqual(error?.errno, EPERM)
        XCTAssertFalse(isOpen(fd), "a descriptor whose registration failed stayed open")
    }

    func testLoopDeinitClosesTheDescriptorsItOwns() throws {
        let (owned, peer) = try socketPair()
        let (shared, sharedPeer) = try socketPair()
        defer { Socket.close(peer); Socket.close(shared); Socket.close(sharedPeer) }
        var loop: EventLoop? = try EventLoop()
        try loop?.register(FileDescriptor(adopting: owned), handler: RecordingHandler(fd: owned))
        try loop?.register(shared, handler: RecordingHandler(fd: shared))
        loop = nil
        XCTAssertFalse(isOpen(owned), "the loop went away and its descriptor stayed open")
        XCTAssertTrue(isOpen(shared), "the loop closed a descriptor it does not own")
    }
}
