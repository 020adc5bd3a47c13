import DSDocker
import XCTest

/// The container spec in cluster mode, without an engine: the node's label and the address the
/// replica listens on.
final class ReplicaContainerTests: XCTestCase {
    func testInClusterModeTheContainerCarriesItsNodeAndListensOnTheAdvertiseAddress() throws {
        let body = ReplicaContainer.createBody(
            image: "ds-server:latest", pool: "p", number: 4, port: 41000, network: "host", host: "10.1.0.2", node: "n1")
        XCTAssertEqual(body["Cmd"] as? [String], ["--id", "4", "--host", "10.1.0.2", "--port", "41000"])
        let labels = try XCTUnwrap(body["Labels"] as? [String: String])
        XCTAssertEqual(labels["ds-lb.node"], "n1")
        XCTAssertEqual(labels["ds-lb.pool"], "p")
        XCTAssertEqual(labels["ds-lb.host"], "10.1.0.2")
        XCTAssertEqual(ReplicaContainer.host(onNetwork: "host", addresses: [:], listenHost: "10.1.0.2"), "10.1.0.2")
    }

    func testOnOneMachineTheContainerHasNoNodeAndListensOnLoopback() throws {
        let body = ReplicaContainer.createBody(image: "i", pool: "p", number: 1, port: 41001, network: "host")
        XCTAssertEqual(body["Cmd"] as? [String], ["--id", "1", "--host", "127.0.0.1", "--port", "41001"])
        let labels = try XCTUnwrap(body["Labels"] as? [String: String])
        XCTAssertNil(labels["ds-lb.node"])
        // On a user-defined network the address is the network's, whatever the advertise address.
        let onNetwork = ReplicaContainer.createBody(
            image: "i", pool: "p", number: 1, port: 0, network: "appnet", host: "10.1.0.2", node: "n1")
        XCTAssertEqual(onNetwork["Cmd"] as? [String], ["--id", "1", "--host", "0.0.0.0", "--port", "5000"])
        XCTAssertNil((onNetwork["Labels"] as? [String: String])?["ds-lb.host"])
    }

    func testANodeOwnsOnlyItsOwnContainersOfThePool() {
        let n1 = ["ds-lb.managed": "true", "ds-lb.pool": "p", "ds-lb.node": "n1"]
        let single = ["ds-lb.managed": "true", "ds-lb.pool": "p"]
        XCTAssertTrue(ReplicaContainer.isOwned(n1, pool: "p", node: "n1"))
        XCTAssertFalse(ReplicaContainer.isOwned(n1, pool: "p", node: "n2"))
        XCTAssertFalse(ReplicaContainer.isOwned(n1, pool: "p", node: nil), "one machine leaves a cluster node's containers alone")
        XCTAssertFalse(ReplicaContainer.isOwned(single, pool: "p", node: "n1"))
        XCTAssertTrue(ReplicaContainer.isOwned(single, pool: "p", node: nil))
        XCTAssertFalse(ReplicaContainer.isOwned(n1, pool: "q", node: "n1"))
        XCTAssertFalse(ReplicaContainer.isOwned(["ds-lb.pool": "p", "ds-lb.node": "n1"], pool: "p", node: "n1"))
    }

    /// One replica has a container per node that runs it, so two nodes on one engine never meet
    /// each other's under the same name; the replica's name is read back from it.
    func testAContainerIsNamedAfterItsReplicaAndInClusterModeItsNode() {
        XCTAssertEqual(ReplicaContainer.containerName("server-3", node: nil), "server-3")
        XCTAssertEqual(ReplicaContainer.containerName("server-3", node: "n1"), "server-3.n1")
        XCTAssertEqual(ReplicaContainer.replicaName(ofContainer: "server-3.n1", node: "n1"), "server-3")
        XCTAssertEqual(ReplicaContainer.replicaName(ofContainer: "alpha.b.n1", node: "n1"), "alpha.b")
        XCTAssertEqual(ReplicaContainer.replicaName(ofContainer: "server-3", node: nil), "server-3")
    }
}
