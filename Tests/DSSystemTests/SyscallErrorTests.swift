import DSSystem
import Glibc
import XCTest

final class SyscallErrorTests: XCTestCase {
    func testCarriesErrnoAndAReadableMessage() {
        let error = SyscallError(errno: ENOENT, function: "open(/nowhere)")
        XCTAssertEqual(error.errno, ENOENT)
        XCTAssertEqual(error.function, "open(/nowhere)")
        XCTAssertEqual(error.description, "open(/nowhere): No such file or directory (errno \(ENOENT))")
        XCTAssertEqual(
            String(describing: SyscallError(errno: EADDRINUSE, function: "bind(127.0.0.1:80)")),
            "bind(127.0.0.1:80): Address already in use (errno \(EADDRINUSE))")
    }

    func testLocalResourceExhaustion() {
        for err in [EMFILE, ENFILE, ENOBUFS, ENOMEM] {
            XCTAssertTrue(SyscallError(errno: err, function: "f").isLocalResourceExhaustion, "errno \(err)")
        }
        for err in [ECONNRESET, ECONNREFUSED, EPIPE, ETIMEDOUT, EACCES] {
            XCTAssertFalse(SyscallError(errno: err, function: "f").isLocalResourceExhaustion, "errno \(err)")
        }
    }

    func testSyscallReturnsSuccessWithoutBuildingTheName() throws {
        var named = false
        let result = try syscall(
            {
                named = true; return "f"
            }()
        ) { Int32(7) }
        XCTAssertEqual(result, 7)
        XCTAssertFalse(named, "the function name is only needed for an error")
    }

    func testSyscallThrowsTheErrno() {
        let error = assertSyscallError(
            try syscall("open") { () -> Int32 in
                errno = ENOENT; return -1
            }, errno: ENOENT)
        XCTAssertEqual(error?.function, "open")
    }

    func testSyscallRetriesEINTR() throws {
        var calls = 0
        let result = try syscall("read") { () -> Int in
            calls += 1
            if calls < 3 { errno = EINTR; return -1 }
            return 42
        }
        XCTAssertEqual(result, 42)
        XCTAssertEqual(calls, 3)
    }

    func testNonBlockingSyscallMapsEAGAINToWouldBlock() throws {
        XCTAssertTrue(
            isWouldBlock(
                try nonBlockingSyscall("read") { () -> Int in
                    errno = EAGAIN; return -1
                }))
        XCTAssertTrue(
            isWouldBlock(
                try nonBlockingSyscall("read") { () -> Int in
                    errno = EWOULDBLOCK; return -1
                }))
        guard case .done(0) = try nonBlockingSyscall("read", { Int(0) }) else { return XCTFail("0 is a result") }
    }

    func testNonBlockingSyscallRetriesEINTRAndThrowsOtherErrors() throws {
        var calls = 0
        let result = try nonBlockingSyscall("read") { () -> Int in
            calls += 1
            if calls == 1 { errno = EINTR; return -1 }
            return 5
        }
        guard case .done(5) = result else { return XCTFail("expected .done(5)") }
        XCTAssertEqual(calls, 2)
        let error = assertSyscallError(
            try nonBlockingSyscall("recv") { () -> Int in
                errno = ECONNRESET; return -1
            }, errno: ECONNRESET)
        XCTAssertEqual(error?.function, "recv")
    }
}
