import DSSystem
import Glibc
import XCTest

final class SocketTests: XCTestCase {
    private let loopback = SocketAddress.v4(ip: 0x7f00_0001, port: 0)

    private func assertNonBlockingAndCloseOnExec(_ fd: Int32, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertNotEqual(fcntl(fd, F_GETFL) & O_NONBLOCK, 0, "not non-blocking", file: file, line: line)
        XCTAssertNotEqual(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0, "not close-on-exec", file: file, line: line)
    }

    private func noDelay(_ fd: Int32) -> Int32 {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        XCTAssertEqual(getsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &value, &length), 0)
        return value
    }

    func testListenOnPortZeroGetsAnEphemeralLoopbackPort() throws {
        let fd = try Socket.listen(on: loopback)
        defer { Socket.close(fd) }
        let bound = try Socket.localAddress(fd)
        XCTAssertEqual(bound.host, "127.0.0.1")
        XCTAssertNotEqual(bound.port, 0)
        XCTAssertTrue(Socket.isListeningStream(fd))
        assertNonBlockingAndCloseOnExec(fd)
    }

    func testAcceptOnAnEmptyQueueWouldBlock() throws {
        let fd = try Socket.listen(on: loopback)
        defer { Socket.close(fd) }
        XCTAssertTrue(isWouldBlock(try Socket.accept(fd)))
    }

    func testConnectAcceptAndExchangeBytes() throws {
        let listener = try Socket.listen(on: loopback)
        defer { Socket.close(listener) }
        let address = try Socket.localAddress(listener)
        let (client, connected) = try Socket.connect(to: address)
        defer { Socket.close(client) }
        if !connected {
            XCTAssertNotEqual(waitFor(client, POLLOUT) & Int32(POLLOUT), 0)
        }
        XCTAssertEqual(Socket.connectResult(client), 0)
        assertNonBlockingAndCloseOnExec(client)
        XCTAssertNotEqual(noDelay(client), 0)
        XCTAssertFalse(Socket.isListeningStream(client))

        XCTAssertNotEqual(waitFor(listener, POLLIN) & Int32(POLLIN), 0)
        guard case .done(let accepted) = try Socket.accept(listener) else { return XCTFail("nothing accepted") }
        let server = accepted.fd
        defer { Socket.close(server) }
        XCTAssertEqual(accepted.peer, try Socket.localAddress(client))
        assertNonBlockingAndCloseOnExec(server)
        XCTAssertNotEqual(noDelay(server), 0, "accepted sockets must get TCP_NODELAY")

        var buffer = [UInt8](repeating: 0, count: 64)
        XCTAssertTrue(isWouldBlock(try buffer.withUnsafeMutableBytes { try Socket.read(server, into: $0) }))

        guard case .done(5) = try write(client, "hello") else { return XCTFail("write did not take 5 bytes") }
        XCTAssertEqual(try readExactly(server, 5), Array("hello".utf8))

        let first = Array("head ".utf8), second = Array("body".utf8)
        let sent = try first.withUnsafeBytes { a in
            try second.withUnsafeBytes { b in
                var iov = [
                    iovec(iov_base: UnsafeMutableRawPointer(mutating: a.baseAddress), iov_len: a.count),
                    iovec(iov_base: UnsafeMutableRawPointer(mutating: b.baseAddress), iov_len: b.count),
                ]
                return try iov.withUnsafeMutableBufferPointer { try Socket.writev(server, $0) }
            }
        }
        guard case .done(9) = sent else { return XCTFail("writev did not take 9 bytes") }
        XCTAssertEqual(try readExactly(client, 9), Array("head body".utf8))
    }

    func testReadAfterPeerClosedIsEndOfStream() throws {
        let (listener, client, server) = try connectedPair()
        defer { Socket.close(listener); Socket.close(server) }
        Socket.close(client)
        XCTAssertNotEqual(waitFor(server, POLLIN) & Int32(POLLIN), 0)
        var buffer = [UInt8](repeating: 0, count: 16)
        guard case .done(0) = try buffer.withUnsafeMutableBytes({ try Socket.read(server, into: $0) }) else {
            return XCTFail("expected end of stream")
        }
    }

    /// MSG_NOSIGNAL: writing to a connection the peer reset is an EPIPE error, not a SIGPIPE.
    func testWriteToAResetConnectionThrowsInsteadOfSignalling() throws {
        let (listener, client, server) = try connectedPair()
        defer { Socket.close(listener); Socket.close(client) }
        Socket.close(server)
        XCTAssertNotEqual(waitFor(client, POLLIN) & Int32(POLLIN), 0, "no FIN")
        // The first write reaches the closed peer, which answers with a reset (POLLHUP here).
        _ = try write(client, "x")
        XCTAssertNotEqual(waitFor(client, 0) & Int32(POLLHUP), 0, "no reset")
        let error = assertSyscallError(try write(client, "y"), errno: EPIPE)
        XCTAssertEqual(error?.function, "send")
    }

    func testConnectionRefusedIsReported() throws {
        // A bound socket that is not listening holds the port, so nobody else can take it, and
        // answers SYNs with a reset.
        let holder = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        XCTAssertGreaterThanOrEqual(holder, 0)
        defer { Socket.close(holder) }
        XCTAssertEqual(loopback.withSockAddr { bind(holder, $0, $1) }, 0)
        let target = try Socket.localAddress(holder)

        do {
            let (fd, connected) = try Socket.connect(to: target)
            defer { Socket.close(fd) }
            XCTAssertFalse(connected)
            XCTAssertNotEqual(waitFor(fd, POLLOUT), 0)
            XCTAssertEqual(Socket.connectResult(fd), ECONNREFUSED)
        } catch let error as SyscallError {
            // Loopback may refuse within connect() itself.
            XCTAssertEqual(error.errno, ECONNREFUSED)
            XCTAssertEqual(error.function, "connect(\(target))")
        }
    }

    func testListenOnAnAddressInUseThrowsAndLeaksNoDescriptor() throws {
        let first = try Socket.listen(on: loopback)
        defer { Socket.close(first) }
        let address = try Socket.localAddress(first)
        let before = openDescriptorCount()
        for _ in 0..<20 {
            let error = assertSyscallError(try Socket.listen(on: address), errno: EADDRINUSE)
            XCTAssertEqual(error?.function, "bind(\(address))")
        }
        XCTAssertEqual(openDescriptorCount(), before)
    }

    func testReusePortLetsTwoListenersShareAnAddress() throws {
        let first = try Socket.listen(on: loopback, reusePort: true)
        defer { Socket.close(first) }
        let address = try Socket.localAddress(first)
        let second = try Socket.listen(on: address, reusePort: true)
        defer { Socket.close(second) }
        XCTAssertEqual(try Socket.localAddress(second), address)
    }

    func testNonSocketDescriptorsAreRefused() throws {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        defer { Socket.close(fds[0]); Socket.close(fds[1]) }
        let error = assertSyscallError(try Socket.localAddress(fds[0]), errno: ENOTSOCK)
        XCTAssertEqual(error?.function, "getsockname")
        XCTAssertFalse(Socket.isListeningStream(fds[0]))
    }

    /// A socket whose address is neither IPv4 nor IPv6 has no SocketAddress: an error, not a crash.
    func testLocalAddressOfAUnixSocketIsUnsupported() throws {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds), 0)
        defer { Socket.close(fds[0]); Socket.close(fds[1]) }
        let error = assertSyscallError(try Socket.localAddress(fds[0]), errno: EAFNOSUPPORT)
        XCTAssertEqual(error?.function, "getsockname")
    }

    func testSetNonBlockingTurnsEmptyReadsIntoWouldBlock() throws {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        defer { Socket.close(fds[0]); Socket.close(fds[1]) }
        XCTAssertEqual(fcntl(fds[0], F_GETFL) & O_NONBLOCK, 0)
        try Socket.setNonBlocking(fds[0])
        XCTAssertNotEqual(fcntl(fds[0], F_GETFL) & O_NONBLOCK, 0)
        var buffer = [UInt8](repeating: 0, count: 8)
        XCTAssertTrue(isWouldBlock(try buffer.withUnsafeMutableBytes { try Socket.read(fds[0], into: $0) }))
    }

    func testIdleConnectionIsDeadWhenThePeerSendsOrCloses() throws {
        let (listener, client, server) = try connectedPair()
        defer { Socket.close(listener); Socket.close(client); Socket.close(server) }
        XCTAssertFalse(Socket.idleConnectionIsDead(client))

        guard case .done(1) = try write(server, "!") else { return XCTFail("write failed") }
        XCTAssertNotEqual(waitFor(client, POLLIN), 0)
        XCTAssertTrue(Socket.idleConnectionIsDead(client))
        XCTAssertEqual(try readExactly(client, 1), Array("!".utf8), "the peek consumed the byte")

        let (listener2, client2, server2) = try connectedPair()
        defer { Socket.close(listener2); Socket.close(client2) }
        Socket.close(server2)
        XCTAssertNotEqual(waitFor(client2, POLLIN), 0)
        XCTAssertTrue(Socket.idleConnectionIsDead(client2))
    }

    func testCloseReleasesTheDescriptor() throws {
        let fd = try Socket.listen(on: loopback)
        Socket.close(fd)
        XCTAssertEqual(fcntl(fd, F_GETFD), -1)
        XCTAssertEqual(errno, EBADF)
    }

    func testIPv6Loopback() throws {
        let fd: Int32
        do {
            fd = try Socket.listen(on: try SocketAddress.parse("[::1]:0"))
        } catch let error as SyscallError where error.errno == EADDRNOTAVAIL || error.errno == EAFNOSUPPORT {
            throw XCTSkip("no IPv6 loopback here: \(error)")
        }
        defer { Socket.close(fd) }
        let bound = try Socket.localAddress(fd)
        XCTAssertTrue(bound.isLoopback)
        XCTAssertEqual(bound.description, "[::1]:\(bound.port)")

        let (client, connected) = try Socket.connect(to: bound)
        defer { Socket.close(client) }
        if !connected { XCTAssertNotEqual(waitFor(client, POLLOUT), 0) }
        XCTAssertEqual(Socket.connectResult(client), 0)
        XCTAssertNotEqual(waitFor(fd, POLLIN), 0)
        guard case .done(let accepted) = try Socket.accept(fd) else { return XCTFail("nothing accepted") }
        defer { Socket.close(accepted.fd) }
        XCTAssertEqual(accepted.peer, try Socket.localAddress(client))
        XCTAssertEqual(accepted.peer?.family, AF_INET6)
    }
}
