import DSBalancer
import DSReactor
import Logging
import XCTest

@testable import DSControl

/// `isAdminPath` is asked for every proxied request with a short path; it compares bytes instead
/// of looking the path up in `paths`, and must answer exactly as that Set does.
final class AdminPathTests: XCTestCase {
    func testAdminPathsMatchTheSetAndNothingElse() throws {
        let supervisor = Supervisor(
            loop: try EventLoop(), driver: StaticDriver(backends: []), algorithm: .rendezvous,
            config: SupervisorConfig(), workers: 1,
            logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        for path in AdminRouter.paths {
            XCTAssertTrue(supervisor.admin.isAdminPath(path), "\(path)")
            // A slice of a longer string (the proxy passes the path's own bytes).
            XCTAssertTrue(supervisor.admin.isAdminPath(("x" + path + "?a=1").dropFirst().prefix(path.count)), "\(path)")
            XCTAssertTrue(isAdminPathBytes(supervisor.admin, path), "\(path)")
        }
        let others: [Substring] = [
            "", "/", "/re", "/repp", "/Rep", "/REP", "/rm/", "/status/", "/metric", "/metricz",
            "/home", "rep", "//rep", "/ad", "/add ", "/st\u{e4}tus", "/r\u{0301}m", "/dashboards", "/event", "/Events",
        ]
        for path in others {
            XCTAssertEqual(supervisor.admin.isAdminPath(path), AdminRouter.paths.contains(path), "\(path)")
            XCTAssertFalse(supervisor.admin.isAdminPath(path), "\(path)")
            XCTAssertFalse(isAdminPathBytes(supervisor.admin, path), "\(path)")
        }
        XCTAssertEqual(supervisor.admin.longestAdminPath, "/dashboard".utf8.count)
    }

    /// `isAdminPath(bytes:)`, which the worker asks with the path's bytes in its input buffer.
    private func isAdminPathBytes(_ router: AdminRouter, _ path: Substring) -> Bool {
        Array(path.utf8).withUnsafeBytes { router.isAdminPath(bytes: $0) }
    }
}
