import XCTest

@testable import DSProxy

final class AcceptBalanceTests: XCTestCase {
    /// The registry keys groups by the listening descriptor's number only, so any number does;
    /// this one is far above what the process holds.
    static let fd: Int32 = 1_000_001

    /// A worker that stopped accepting is handed nothing more, and once every worker of a
    /// listener has stopped, workers started later on a descriptor with the same number form a
    /// group of their own instead of joining (and handing connections to) workers that are gone.
    func testALeftMemberIsHandedNothingAndTheLastToLeaveEndsTheGroup() {
        let a = AcceptBalance.Member(index: 0) { _, _ in }
        let b = AcceptBalance.Member(index: 1) { _, _ in }
        let group = AcceptBalance.join(a, listening: Self.fd)
        XCTAssertTrue(AcceptBalance.join(b, listening: Self.fd) === group)
        XCTAssertEqual(group.memberCount, 2)

        a.connections.store(2, ordering: .relaxed)
        XCTAssertTrue(group.handOver(from: a) === b, "the member with two fewer takes the connection")

        group.leave(b, listening: Self.fd)
        a.connections.store(3, ordering: .relaxed)
        XCTAssertNil(group.handOver(from: a), "a member that left is handed nothing")

        group.leave(a, listening: Self.fd)
        let c = AcceptBalance.Member(index: 0) { _, _ in }
        let later = AcceptBalance.join(c, listening: Self.fd)
        XCTAssertFalse(later === group, "a listener opened later starts a group of its own")
        XCTAssertEqual(later.memberCount, 1)
        later.leave(c, listening: Self.fd)
    }
}
