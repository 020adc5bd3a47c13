import DSBalancer
import DSProxy
import DSSystem
import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

final class WorkerStartTests: XCTestCase {
    /// epoll refuses a regular file (EPERM), so a worker given one as its listening socket
    /// cannot watch it: the starter hears why, with the worker named, and nothing traps.
    func testAWorkerThatCannotWatchItsListeningSocketReportsItToTheStarter() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ds-lb-worker-start-\(getpid())").path
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data()))
        defer { unlink(path) }
        let file = open(path, O_RDONLY | O_CLOEXEC)
        XCTAssertGreaterThanOrEqual(file, 0)
        defer { close(file) }
        let publisher = SnapshotPublisher(initial: Snapshot(generation: 0, backends: [], algorithm: .rendezvous), workers: 4)
        let exited = Locked(false)

        XCTAssertThrowsError(
            try Worker.start(
                index: 3, listenFD: file, publisher: publisher,
                config: ProxyConfig(adminAllow: ProxyConfig.defaultAdminAllow()), admin: nil, metrics: ProxyMetrics(),
                onUnreachable: { _ in }, onExit: { exited.withLock { $0 = true } })
        ) { error in
            guard let error = error as? WorkerStartError else { return XCTFail("\(error) is not a WorkerStartError") }
            XCTAssertEqual(error.worker, 3)
            XCTAssertEqual((error.reason as? SyscallError)?.errno, EPERM, "\(error.reason)")
            XCTAssertTrue("\(error)".contains("worker 3"), "\(error)")
            XCTAssertTrue("\(error)".contains(String(cString: strerror(EPERM))), "\(error)")
        }
        // A worker that never served has no loop to stop: its exit hook is not for the starter.
        XCTAssertFalse(exited.withLock { $0 })
    }
}
