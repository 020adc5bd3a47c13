import Foundation

/// The typed calls the Docker driver makes. Each takes a completion, called once on the client's
/// loop thread; none blocks. `listContainers(labels:)` and `imageExists(_:)` also come blocking,
/// for start-up (before any loop runs).
extension DockerClient {
    package typealias Completion<T> = @Sendable (Result<T, DockerError>) -> Void

    /// `GET /containers/json?all=1`, optionally filtered by labels (`key=value` or `key`).
    package func listContainers(
        labels: [String] = [], timeout: Duration = .seconds(10), completion: @escaping Completion<[ContainerSummary]>
    ) {
        var query = [("all", "1")]
        if !labels.isEmpty {
            let filters = (try? JSONSerialization.data(withJSONObject: ["label": labels])) ?? Data()
            query.append(("filters", String(decoding: filters, as: UTF8.self)))
        }
        call("GET", "/containers/json", query: query, timeout: timeout, accept: [200]) { result in
            completion(
                result.flatMap { response in Result { try ContainerSummary.parseList(response.json) }.mapError(Self.asDockerError)
                })
        }
    }

    /// `POST /containers/create?name=`: the new container's id. A 409 means the name is taken.
    package func createContainer(
        name: String, config: [String: Any], timeout: Duration = .seconds(60), completion: @escaping Completion<String>
    ) {
        call("POST", "/containers/create", query: [("name", name)], body: config, timeout: timeout, accept: [201]) { result in
            completion(
                result.flatMap { response in
                    guard let object = response.json as? [String: Any], let id = object["Id"] as? String else {
                        return .failure(.protocolError("create answered without an Id"))
                    }
                    return .success(id)
                })
        }
    }

    package func startContainer(_ id: String, timeout: Duration = .seconds(30), completion: @escaping Completion<Void>) {
        call("POST", "/containers/\(id)/start", timeout: timeout, accept: [204, 304]) { completion($0.map { _ in }) }
    }

    /// `GET /containers/{id}/json`.
    package func inspectContainer(
        _ id: String, timeout: Duration = .seconds(10), completion: @escaping Completion<ContainerDetails>
    ) {
        call("GET", "/containers/\(id)/json", timeout: timeout, accept: [200]) { result in
            completion(
                result.flatMap { response in Result { try ContainerDetails.parse(response.json) }.mapError(Self.asDockerError) })
        }
    }

    /// Asks it to stop (SIGTERM, then SIGKILL after `grace`, in whole seconds rounded up: the
    /// engine counts in seconds); waits up to grace + 10 s.
    package func stopContainer(_ id: String, grace: Duration, completion: @escaping Completion<Void>) {
        let (seconds, attoseconds) = max(grace, .zero).components
        let wholeSeconds = seconds + (attoseconds > 0 ? 1 : 0)
        call(
            "POST", "/containers/\(id)/stop", query: [("t", String(wholeSeconds))], timeout: .seconds(wholeSeconds + 10),
            accept: [204, 304]
        ) {
            completion($0.map { _ in })
        }
    }

    /// `DELETE /containers/{id}`; a container that is already gone is not an error.
    package func removeContainer(_ id: String, force: Bool, completion: @escaping Completion<Void>) {
        call("DELETE", "/containers/\(id)", query: [("force", force ? "1" : "0")], timeout: .seconds(30), accept: [204, 404]) {
            completion($0.map { _ in })
        }
    }

    package func renameContainer(_ id: String, to name: String, completion: @escaping Completion<Void>) {
        call("POST", "/containers/\(id)/rename", query: [("name", name)], accept: [204]) { completion($0.map { _ in }) }
    }

    /// `GET /images/{name}/json`: whether the engine has the image locally.
    package func imageExists(_ name: String, timeout: Duration = .seconds(10), completion: @escaping Completion<Bool>) {
        call("GET", "/images/\(name)/json", timeout: timeout, accept: [200, 404]) { completion($0.map { $0.status == 200 }) }
    }

    /// `GET /networks/{name}`: fails with the engine's message (404 "network x not found") when
    /// the engine has no such network.
    package func inspectNetwork(_ name: String, timeout: Duration = .seconds(10), completion: @escaping Completion<Void>) {
        call("GET", "/networks/\(name)", timeout: timeout, accept: [200]) { completion($0.map { _ in }) }
    }

    // MARK: blocking, for start-up

    package func listContainers(labels: [String] = [], timeout: Duration = .seconds(10)) throws -> [ContainerSummary] {
        try wait { listContainers(labels: labels, timeout: timeout, completion: $0) }
    }

    package func imageExists(_ name: String, timeout: Duration = .seconds(10)) throws -> Bool {
        try wait { imageExists(name, timeout: timeout, completion: $0) }
    }

    static func asDockerError(_ error: Error) -> DockerError {
        error as? DockerError ?? .protocolError("\(error)")
    }
}
