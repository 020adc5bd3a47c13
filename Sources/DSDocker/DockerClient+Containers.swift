import Foundation

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

    public init(id: String, name: String, labels: [String: String], state: String, status: String) {
        self.id = id
        self.name = name
        self.labels = labels
        self.state = state
        self.status = status
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
                                    state: item["State"] as? String ?? "", status: item["Status"] as? String ?? "")
        }
    }
}

/// Typed calls for what the Docker driver needs (anchors.md §5.2). All block; see DockerClient.
extension DockerClient {
    /// `GET /containers/json?all=1`, optionally filtered by labels (`key=value` or `key`).
    public func listContainers(labels: [String] = []) throws -> [ContainerSummary] {
        var query = [("all", "1")]
        if !labels.isEmpty {
            let filters = try JSONSerialization.data(withJSONObject: ["label": labels])
            query.append(("filters", String(decoding: filters, as: UTF8.self)))
        }
        return try ContainerSummary.parseList(call("GET", "/containers/json", query: query, accept: [200]).json)
    }

    /// `POST /containers/create?name=` and returns the new container's id. 409: the name is taken.
    public func createContainer(name: String, config: [String: Any], timeout: Double = 60) throws -> String {
        let response = try call("POST", "/containers/create", query: [("name", name)], body: config, timeout: timeout, accept: [201])
        guard let object = response.json as? [String: Any], let id = object["Id"] as? String else {
            throw DockerError.protocolError("create answered without an Id")
        }
        return id
    }

    public func startContainer(_ id: String, timeout: Double = 30) throws {
        _ = try call("POST", "/containers/\(id)/start", timeout: timeout, accept: [204, 304])
    }

    /// Asks it to stop (SIGTERM, then SIGKILL after `grace` seconds). Blocks up to grace + 10 s.
    public func stopContainer(_ id: String, grace: Int) throws {
        _ = try call("POST", "/containers/\(id)/stop", query: [("t", String(grace))], timeout: Double(grace) + 10, accept: [204, 304])
    }

    /// `DELETE /containers/{id}`; a container that is already gone is not an error.
    public func removeContainer(_ id: String, force: Bool) throws {
        _ = try call("DELETE", "/containers/\(id)", query: [("force", force ? "1" : "0")], timeout: 30, accept: [204, 404])
    }

    public func renameContainer(_ id: String, to name: String) throws {
        _ = try call("POST", "/containers/\(id)/rename", query: [("name", name)], accept: [204])
    }

    /// `GET /images/{name}/json`: whether the engine has the image locally.
    public func imageExists(_ name: String) throws -> Bool {
        try call("GET", "/images/\(name)/json", accept: [200, 404]).status == 200
    }
}
