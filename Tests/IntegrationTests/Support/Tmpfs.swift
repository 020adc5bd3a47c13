import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// A small tmpfs of a test's own, for a state directory that fills up or turns read-only.
/// Mounting needs root (these tests run as root on the test machine; elsewhere they skip).
extension IntegrationTestCase {
    /// Mounts a `size` tmpfs on a new temporary directory; unmounted in teardown, after the
    /// processes the test starts later are stopped (teardown blocks run last-in first-out).
    func smallTmpfs(size: String = "256k") throws -> String {
        guard geteuid() == 0 else { throw XCTSkip("mounting a tmpfs needs root") }
        let path = try temporaryDirectory()
        guard mount("tmpfs", path, "tmpfs", 0, "size=\(size),mode=0700") == 0 else {
            throw XCTSkip("cannot mount a tmpfs on \(path): \(String(cString: strerror(errno)))")
        }
        addTeardownBlock { _ = umount2(path, Int32(MNT_DETACH)) }
        return path
    }

    func remount(_ path: String, readOnly: Bool) {
        let flags = UInt(MS_REMOUNT) | (readOnly ? UInt(MS_RDONLY) : 0)
        XCTAssertEqual(mount(nil, path, nil, flags, nil), 0, "remount \(path): \(String(cString: strerror(errno)))")
    }

    /// Fills the file system holding `directory` with `directory/filler`; returns its path.
    func fill(_ directory: String) throws -> String {
        let path = directory + "/filler"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ChildProcess.LaunchError(description: "open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let chunk = [UInt8](repeating: 0x41, count: 4096)
        while true {
            let written = chunk.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if written > 0 { continue }
            guard errno == ENOSPC else {
                throw ChildProcess.LaunchError(description: "write \(path): \(String(cString: strerror(errno)))")
            }
            return path
        }
    }
}
