import Foundation

/// One container event from `GET /events`.
package struct ContainerEvent: Sendable, Equatable {
    /// die, stop, kill, oom, destroy, start, create, health_status: healthy, ...
    package let action: String
    package let id: String
    package let name: String

    package init(action: String, id: String, name: String) {
        self.action = action
        self.id = id
        self.name = name
    }

    /// Parses one line of the stream; nil for anything that is not a container event.
    package static func parse(_ line: [UInt8]) -> ContainerEvent? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
            (object["Type"] as? String) == "container", let action = object["Action"] as? String
        else { return nil }
        let actor = object["Actor"] as? [String: Any]
        let attributes = actor?["Attributes"] as? [String: String] ?? [:]
        // API 1.52 dropped the old top-level `id`/`status`/`from`; Actor.ID is in every version we speak.
        return ContainerEvent(
            action: action, id: actor?["ID"] as? String ?? object["id"] as? String ?? "",
            name: attributes["name"] ?? "")
    }
}

extension DockerClient {
    /// Follows `GET /events` for containers matching `labels`: `onEvent` for each container event
    /// as it arrives, then `onEnd` once when the stream ends (the engine closed it, an error, or
    /// no answer head within `timeout`). Both run on the client's loop thread. `cancel()` on the
    /// handle ends it without `onEnd`.
    @discardableResult
    package func followContainerEvents(
        labels: [String], timeout: Duration = .seconds(10), onEvent: @escaping @Sendable (ContainerEvent) -> Void,
        onEnd: @escaping @Sendable (DockerError) -> Void
    ) -> StreamHandle {
        let filters =
            (try? JSONSerialization.data(withJSONObject: ["type": ["container"], "label": labels], options: .sortedKeys))
            ?? Data()
        let target = "/v\(apiVersion)/events?filters=\(Self.percentEncode(String(decoding: filters, as: UTF8.self)))"
        return stream(target, timeout: timeout, onLine: { line in ContainerEvent.parse(line).map(onEvent) }, onEnd: onEnd)
    }
}
