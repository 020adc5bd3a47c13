/// A container as `GET /containers/json` lists it.
package struct ContainerSummary: Sendable, Equatable {
    package let id: String
    /// Without the leading "/".
    package let name: String
    package let labels: [String: String]
    /// created, running, paused, restarting, removing, exited, dead.
    package let state: String
    /// Human text such as "Exited (137) 2 seconds ago".
    package let status: String
    /// Network name → the container's IPv4 address on it ("" on the host network or while stopped).
    package let networks: [String: String]

    package init(
        id: String, name: String, labels: [String: String], state: String, status: String, networks: [String: String] = [:]
    ) {
        self.id = id
        self.name = name
        self.labels = labels
        self.state = state
        self.status = status
        self.networks = networks
    }

    package var isRunning: Bool { state == "running" }
    package var shortID: String { String(id.prefix(12)) }

    static func parseList(_ value: Any?) throws -> [ContainerSummary] {
        guard let items = value as? [[String: Any]] else { throw DockerError.protocolError("container list is not a JSON array") }
        return items.compactMap { item in
            guard let id = item["Id"] as? String else { return nil }
            let names = (item["Names"] as? [String]) ?? []
            let name = names.first.map { $0.hasPrefix("/") ? String($0.dropFirst()) : $0 } ?? ""
            return ContainerSummary(
                id: id, name: name, labels: item["Labels"] as? [String: String] ?? [:],
                state: item["State"] as? String ?? "", status: item["Status"] as? String ?? "",
                networks: ContainerDetails.addresses(item["NetworkSettings"]))
        }
    }
}
