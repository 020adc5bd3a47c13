/// A ds-lb replica as a container: the create request the driver sends and how the replica is
/// reached once it runs. Pure: tested against the fake engine in both API shapes.
///
/// Networking (`--network`):
/// - `host` (default): host networking; each replica gets its own port (`PORT` env and
///   `--port`) and listens on, and is reached at, the listen host: 127.0.0.1 on one machine, the
///   node's advertise address in cluster mode (other hosts reach it there).
/// - any other name: a user-defined network. Every replica listens on `networkPort` on all its
///   addresses and is reached at the address inspect reports on that network
///   (`NetworkSettings.Networks[NAME].IPAddress`), known only once the container runs.
///
/// API versions: the create body is the same for 1.41 and ≥ 1.44. Before 1.44 the engine accepts
/// at most one `NetworkingConfig.EndpointsConfig` entry at create, and it must be the
/// `HostConfig.NetworkMode` network; from 1.44 it accepts several, and the container-wide
/// `Config.MacAddress` moved to each endpoint. We attach exactly one network, named the same in
/// both places, and set no MAC address, so both shapes accept it.
///
/// Cluster mode: every container also carries `ds-lb.node=<node>` and is named
/// `<replica>.<node>`, and a node adopts, replaces and cleans up only the containers of its pool
/// labelled with its own name. The node is in the name because nodes may share one engine (a test
/// on one machine), and while a replica moves, the node taking it over starts its copy before the
/// node giving it up stops its own: under one name the second create would meet the first copy
/// and have to remove it while it still serves. The replica keeps its name (`server-3`) in the
/// pool and in routing; only its container's name says where it runs.
package enum ReplicaContainer {
    /// The port every replica listens on inside a user-defined network (the image's default PORT).
    package static let networkPort: UInt16 = 5000
    package static let loopback = "127.0.0.1"

    /// The `POST /containers/create` body for replica `number` of `pool`; `host` is where it
    /// listens on the host network, `node` the cluster node that runs it (nil on one machine).
    package static func createBody(
        image: String, pool: String, number: Int, port: UInt16, network: String, host: String = loopback, node: String? = nil
    ) -> [String: Any] {
        let id = String(number)
        let onHost = network == "host"
        let listenPort = onHost ? port : networkPort
        var labels = [
            "ds-lb.managed": "true", "ds-lb.pool": pool, "ds-lb.id": id, "ds-lb.port": String(listenPort),
            "ds-lb.network": network,
        ]
        // Recorded so a later start adopts it only where it still listens.
        if onHost { labels["ds-lb.host"] = host }
        if let node { labels["ds-lb.node"] = node }
        let hostConfig: [String: Any] = [
            "NetworkMode": network,
            // ds-lb is the one restarter (no second restart loop racing ours, and every failure is
            // logged and repaired the same way); a container that died while ds-lb was down is
            // replaced at the next start.
            "RestartPolicy": ["Name": "no"],
        ]
        var body: [String: Any] = [
            "Image": image,
            "Cmd": ["--id", id, "--host", onHost ? host : "0.0.0.0", "--port", String(listenPort)],
            "Env": ["SERVER_ID=\(id)", "PORT=\(listenPort)"],
            "Labels": labels,
            "HostConfig": hostConfig,
        ]
        if !onHost {
            body["NetworkingConfig"] = ["EndpointsConfig": [network: [String: Any]()]]
        }
        return body
    }

    /// Where a running replica answers: the listen host on the host network, else its address
    /// on `network`; nil while it has none (not attached, or not running).
    package static func host(onNetwork network: String, addresses: [String: String], listenHost: String = loopback) -> String? {
        if network == "host" { return listenHost }
        guard let address = addresses[network], !address.isEmpty else { return nil }
        return address
    }

    /// The container of replica `name` on `node`: the replica's own name on one machine.
    package static func containerName(_ name: String, node: String?) -> String {
        node.map { "\(name).\($0)" } ?? name
    }

    /// The replica a container of `node` runs, from the container's name.
    package static func replicaName(ofContainer name: String, node: String?) -> String {
        guard let node, name.hasSuffix(".\(node)") else { return name }
        return String(name.dropLast(node.count + 1))
    }

    /// A container this node adopts, replaces and removes when the pool does not name it: of
    /// `pool` and labelled with `node` (unlabelled when nil, i.e. not in cluster mode); any
    /// other container is left alone.
    package static func isOwned(_ labels: [String: String], pool: String, node: String?) -> Bool {
        labels["ds-lb.managed"] == "true" && labels["ds-lb.pool"] == pool && labels["ds-lb.node"] == node
    }
}
