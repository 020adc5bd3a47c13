import DSSystem
import Glibc
import XCTest

/// Waits (poll(2), not a sleep) until `fd` reports one of `events`, or POLLERR/POLLHUP. Returns the
/// reported events; 0 means the generous deadline passed, which fails the caller's assertion.
@discardableResult
func waitFor(_ fd: Int32, _ events: Int32, timeoutMilliseconds: Int32 = 30_000) -> Int32 {
    var entry = pollfd(fd: fd, events: Int16(events), revents: 0)
    while true {
        let rc = poll(&entry, 1, timeoutMilliseconds)
        if rc < 0 && errno == EINTR { continue }
        return rc > 0 ? Int32(entry.revents) : 0
    }
}

/// A listening loopback socket and one connection to it, accepted: (listener, client, server).
func connectedPair(file: StaticString = #filePath, line: UInt = #line) throws -> (listener: Int32, client: Int32, server: Int32) {
    let listener = try Socket.listen(on: .v4(ip: 0x7f00_0001, port: 0))
    let address = try Socket.localAddress(listener)
    let (client, connected) = try Socket.connect(to: address)
    if !connected {
        XCTAssertNotEqual(waitFor(client, POLLOUT) & Int32(POLLOUT), 0, "connect never completed", file: file, line: line)
        XCTAssertEqual(Socket.connectResult(client), 0, file: file, line: line)
    }
    XCTAssertNotEqual(waitFor(listener, POLLIN) & Int32(POLLIN), 0, "nothing to accept", file: file, line: line)
    guard case .done(let accepted) = try Socket.accept(listener) else {
        Socket.close(client)
        Socket.close(listener)
        throw XCTSkip("accept found no connection")
    }
    return (listener, client, accepted.fd)
}

/// Reads from a non-blocking fd until `count` bytes arrived or the peer closed, waiting with poll.
func readExactly(_ fd: Int32, _ count: Int) throws -> [UInt8] {
    var received: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while received.count < count {
        let result = try chunk.withUnsafeMutableBytes { try Socket.read(fd, into: $0) }
        switch result {
        case .done(0): return received
        case .done(let n): received += chunk[0..<n]
        case .wouldBlock:
            if waitFor(fd, POLLIN) == 0 { return received }
        }
    }
    return received
}

func write(_ fd: Int32, _ text: String) throws -> IOResult<Int> {
    try Array(text.utf8).withUnsafeBytes { try Socket.write(fd, $0) }
}

func isWouldBlock<T>(_ result: IOResult<T>) -> Bool {
    if case .wouldBlock = result { return true }
    return false
}

/// The number of open descriptors of this process.
func openDescriptorCount() -> Int {
    guard let dir = opendir("/proc/self/fd") else { return -1 }
    defer { closedir(dir) }
    var count = 0
    while readdir(dir) != nil { count += 1 }
    return count
}

/// Asserts that `expression` throws an error whose text is exactly `text`.
func assertThrows<T>(
    _ expression: @autoclosure () throws -> T, text: String,
    file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertThrowsError(try expression(), file: file, line: line) { error in
        XCTAssertEqual(String(describing: error), text, file: file, line: line)
    }
}

/// Asserts that `expression` throws a `SyscallError` with `errno`, and returns it.
@discardableResult
func assertSyscallError<T>(
    _ expression: @autoclosure () throws -> T, errno expected: Int32,
    file: StaticString = #filePath, line: UInt = #line
) -> SyscallError? {
    do {
        _ = try expression()
        XCTFail("no error thrown", file: file, line: line)
    } catch let error as SyscallError {
        XCTAssertEqual(error.errno, expected, "\(error)", file: file, line: line)
        return error
    } catch {
        XCTFail("unexpected error \(error)", file: file, line: line)
    }
    return nil
}
