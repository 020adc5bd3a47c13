import DSControl
import XCTest

final class PlacementTests: XCTestCase {
    private let replicas = (1...1000).map { "replica-\($0)" }

    private func placement(_ nodes: [String]) -> [String: String] {
        Dictionary(uniqueKeysWithValues: replicas.map { ($0, Placement.owner(of: $0, among: nodes)!) })
    }

    func testTheOwnerIsAFunctionOfTheNamesAloneNotOfTheirOrder() {
        let nodes = ["n1", "n2", "n3", "n4"]
        let first = placement(nodes)
        XCTAssertEqual(placement(nodes), first)
        XCTAssertEqual(placement(nodes.reversed()), first)
        XCTAssertEqual(placement(["n3", "n1", "n4", "n2"]), first)
        // A set or a dictionary's keys, in whatever order they iterate.
        XCTAssertEqual(replicas.map { Placement.owner(of: $0, among: Set(nodes)) }, replicas.map { first[$0] })
        XCTAssertNil(Placement.owner(of: "replica-1", among: [String]()))
        XCTAssertEqual(Placement.owner(of: "replica-1", among: ["only"]), "only")
    }

    func testEveryNodeGetsAShare() {
        let counts = Dictionary(grouping: placement(["n1", "n2", "n3", "n4"]).values, by: { $0 }).mapValues(\.count)
        XCTAssertEqual(counts.keys.sorted(), ["n1", "n2", "n3", "n4"])
        // 250 each on average; rendezvous hashing of 1000 names stays well inside this.
        for (node, count) in counts { XCTAssertTrue((150...350).contains(count), "\(node): \(count)") }
    }

    func testANodeJoiningTakesOnlyWhatItWinsAndMovesNothingElse() {
        let before = placement(["n1", "n2", "n3"])
        let after = placement(["n1", "n2", "n3", "n4"])
        let moved = replicas.filter { before[$0] != after[$0] }
        XCTAssertFalse(moved.isEmpty)
        XCTAssertEqual(Set(moved), Set(replicas.filter { after[$0] == "n4" }))
    }

    func testANodeLeavingMovesOnlyWhatItHeld() {
        let before = placement(["n1", "n2", "n3", "n4"])
        let after = placement(["n1", "n2", "n4"])
        let moved = replicas.filter { before[$0] != after[$0] }
        XCTAssertFalse(moved.isEmpty)
        XCTAssertEqual(Set(moved), Set(replicas.filter { before[$0] == "n3" }))
    }

    func testTheViewPlacesByItsLiveNodes() {
        var view = ClusterView()
        XCTAssertNil(view.owner(of: "replica-1"))
        for name in ["n1", "n2"] { view.nodes[name] = ClusterNodeRecord(name: name, address: "10.0.0.1", lease: 1) }
        XCTAssertEqual(view.owner(of: "replica-7"), Placement.owner(of: "replica-7", among: ["n2", "n1"]))
    }

    func testThePrefixRangeEndIsThePrefixWithItsLastByteIncremented() {
        XCTAssertEqual(ClusterKeys.rangeEnd(ofPrefix: "/ds-lb/p/"), Array("/ds-lb/p0".utf8))
        XCTAssertEqual(ClusterKeys.rangeEnd(ofPrefix: "a"), Array("b".utf8))
        // Bytes, not characters: "ÿ" is C3 BF in UTF-8.
        XCTAssertEqual(ClusterKeys.rangeEnd(ofPrefix: "a\u{FF}"), [0x61, 0xC3, 0xC0])
        XCTAssertEqual(ClusterKeys.rangeEnd(ofPrefix: ""), [0])
        XCTAssertEqual(ClusterKeys.prefix(pool: "p"), "/ds-lb/p/")
        XCTAssertEqual(ClusterKeys.node("n1", pool: "p"), "/ds-lb/p/nodes/n1")
        XCTAssertEqual(ClusterKeys.replica("r", pool: "p"), "/ds-lb/p/replicas/r")
        XCTAssertEqual(ClusterKeys.pool(pool: "p"), "/ds-lb/p/pool")
        // Every key of the pool sorts inside [prefix, rangeEnd), another pool's outside.
        let end = ClusterKeys.rangeEnd(ofPrefix: "/ds-lb/p/")
        for key in ["/ds-lb/p/pool", "/ds-lb/p/nodes/zzz", "/ds-lb/p/replicas/\u{FF}"] {
            XCTAssertTrue(Array(key.utf8).lexicographicallyPrecedes(end), key)
        }
        for key in ["/ds-lb/p0", "/ds-lb/pa/pool", "/ds-lb/q/pool"] {
            XCTAssertFalse(Array(key.utf8).lexicographicallyPrecedes(end), key)
        }
    }
}
