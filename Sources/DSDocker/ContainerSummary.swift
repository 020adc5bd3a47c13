/// A container as `GET /containers/json` lists it.
public struct ContainerSummary: Sendable, Equatable {
    public let id: String
    /// Without the leading "/".
    public let name: String
    public let labels: [String: String]
    /// created, running, paused, restarting, removing, exited, dead.
    public let state: String
    /// Human text such as "Exited (137) 2 seconds ago".
    public let status: String
    /// Network name → the container's IPv4 address on it ("" on the host network or while stopped).
    public let networks: [String: String]

    public init(id: String, name: String, labels: [String: String], state: String, status: String, networks: [String: String] = [:]) {
        self.id = id
        self.name = name
        self.labels = labels
        self.state = state
        self.status = status
        self.networks = networks
    }

    public var isRunning: Bool { state == "running" }
    public var shortID: String { String(id.prefix(12)) }

    static func parseList(_ value: Any?) throws -> [ContainerSummary] {
        guard let items = value as? [[String: Any]] else { throw DockerError.protocolError("container list is not a JSON array") }
        return items.compactMap { item in
            guard let id = item["Id"] as? String else { return nil }
            let names = (item["Names"] as? [String]) ?? []
            let name = names.first.map { $0.hasPrefix("/") ? String($0.dropFirst()) : $0 } ?? ""
            return ContainerSummary(id: id, name: name, labels: item["Labels"] as? [String: String] ?? [:],
                                    state: item["State"] as? String ?? "", status: item["Status"] as? String ?? "",
                                    networks: ContainerDetails.addresses(item["NetworkSettings"]))
        }
    }
}
