/// A container as `GET /containers/{id}/json` shows it: what the driver needs to reach it.
package struct ContainerDetails: Sendable, Equatable {
    package let id: String
    package let running: Bool
    /// `HostConfig.NetworkMode`: "host", "bridge", or a network's name.
    package let networkMode: String
    /// Network name → IPv4 address, from `NetworkSettings.Networks` only: the top-level
    /// `NetworkSettings.IPAddress` is the default bridge's (deprecated since API 1.21, empty for
    /// user-defined networks, gone from current engines' answers), so it is never read.
    package let networks: [String: String]

    package init(id: String, running: Bool, networkMode: String, networks: [String: String]) {
        self.id = id
        self.running = running
        self.networkMode = networkMode
        self.networks = networks
    }

    static func parse(_ value: Any?) throws -> ContainerDetails {
        guard let object = value as? [String: Any], let id = object["Id"] as? String else {
            throw DockerError.protocolError("container inspect is not a JSON object with an Id")
        }
        let state = object["State"] as? [String: Any]
        let hostConfig = object["HostConfig"] as? [String: Any]
        return ContainerDetails(
            id: id, running: state?["Running"] as? Bool ?? false,
            networkMode: hostConfig?["NetworkMode"] as? String ?? "",
            networks: addresses(object["NetworkSettings"]))
    }

    static func addresses(_ settings: Any?) -> [String: String] {
        guard let networks = (settings as? [String: Any])?["Networks"] as? [String: Any] else { return [:] }
        var result: [String: String] = [:]
        for (name, endpoint) in networks {
            result[name] = (endpoint as? [String: Any])?["IPAddress"] as? String ?? ""
        }
        return result
    }
}
