import Foundation

/// A stateful fake engine that speaks one of two API shapes, for the calls ds-lb makes:
/// - `.v1_41` (Docker 20.10, this machine): at create, at most one `EndpointsConfig` entry and it
///   must be the `HostConfig.NetworkMode` network; inspect still carries the deprecated top-level
///   `NetworkSettings.IPAddress` (empty off the default bridge).
/// - `.current` (API ≥ 1.44, e.g. Docker 29 with minimum 1.44): several endpoints allowed at
///   create; a version below the minimum is refused; inspect and list have only the per-network
///   fields (`Networks[NAME].IPAddress`, `DNSNames`).
/// Containers on a user-defined network get 172.20.0.10, .11, ...
package final class VersionedEngine: @unchecked Sendable {
    // v1_41 spells the Docker API version it fakes.
    // swift-format-ignore: AlwaysUseLowerCamelCase
    package enum Shape: Sendable { case v1_41, current }

    package struct Container {
        package let id: String
        package var name: String
        package let network: String
        package let ip: String
        package let labels: [String: String]
        package var running: Bool

        package init(id: String, name: String, network: String, ip: String, labels: [String: String], running: Bool) {
            self.id = id
            self.name = name
            self.network = network
            self.ip = ip
            self.labels = labels
            self.running = running
        }
    }

    package let shape: Shape
    private let lock = NSLock()
    private var containers: [Container] = []
    private var nextIP = 10
    package private(set) var engine: FakeEngine!

    package init(shape: Shape) throws {
        self.shape = shape
        // Weak: a driver under test may still reconnect (events) after the test dropped the engine.
        engine = try FakeEngine { [weak self] request in self?.answer(request) ?? "" }
    }

    package var path: String { engine.path }
    package var all: [Container] { lock.withLock { containers } }
    package func stop() { engine.stop() }

    /// Adds a container nobody asked ds-lb for (a foreign one, or one left from an earlier run).
    package func add(_ container: Container) { lock.withLock { containers.append(container) } }

    /// Stops a container behind ds-lb's back (`docker stop` from a shell, an OOM kill).
    package func stopBehindTheDriver(_ name: String) {
        lock.withLock {
            guard let index = containers.firstIndex(where: { $0.name == name }) else { return }
            containers[index].running = false
        }
    }

    private var version: (api: String, min: String, engine: String) {
        shape == .v1_41 ? ("1.41", "1.12", "20.10.24") : ("1.52", "1.44", "29.0.0")
    }

    private func answer(_ request: FakeEngine.Request) -> String {
        if request.line.hasPrefix("GET /version ") {
            return FakeEngine.json(
                "200 OK", #"{"Version":"\#(version.engine)","ApiVersion":"\#(version.api)","MinAPIVersion":"\#(version.min)"}"#)
        }
        let target = String(request.line.split(separator: " ")[1])
        if shape == .current, let v = target.split(separator: "/").first, v.hasPrefix("v"), let n = Double(v.dropFirst()),
            n < 1.44
        {
            return Self.error(
                "400 Bad Request",
                "client version \(v.dropFirst()) is too old. Minimum supported API version is 1.44, please upgrade your client to a newer version"
            )
        }
        let query = Self.query(target)
        let parts = request.path.split(separator: "/").map(String.init)
        return lock.withLock { () -> String in
            switch (request.method, parts.first, parts.count) {
            case ("POST", "containers", 2) where parts[1] == "create":
                return create(name: query["name"] ?? "", body: request.json ?? [:])
            case ("GET", "containers", 2) where parts[1] == "json":
                return FakeEngine.chunked("200 OK", [Self.text(containers.map(summary))])
            case (_, "containers", _):
                guard let index = containers.firstIndex(where: { $0.id == parts[1] || $0.name == parts[1] }) else {
                    return Self.error("404 Not Found", "No such container: \(parts[1])")
                }
                switch (request.method, parts.count > 2 ? parts[2] : "") {
                case ("POST", "start"): containers[index].running = true; return "HTTP/1.1 204 No Content\r\n\r\n"
                case ("POST", "stop"): containers[index].running = false; return "HTTP/1.1 204 No Content\r\n\r\n"
                case ("POST", "rename"): containers[index].name = query["name"] ?? ""; return "HTTP/1.1 204 No Content\r\n\r\n"
                case ("DELETE", ""): containers.remove(at: index); return "HTTP/1.1 204 No Content\r\n\r\n"
                case ("GET", "json"): return FakeEngine.json("200 OK", Self.text(inspect(containers[index])))
                default: return Self.error("404 Not Found", "page not found")
                }
            case ("GET", "networks", 2):
                return ["appnet", "host", "bridge"].contains(parts[1])
                    ? FakeEngine.json("200 OK", Self.text(["Name": parts[1]]))
                    : Self.error("404 Not Found", "network \(parts[1]) not found")
            case ("GET", "images", _):
                return FakeEngine.json("200 OK", #"{"Id":"sha256:1"}"#)
            default:
                // /events and anything else: the stream ends at once (the driver reconnects).
                return FakeEngine.json("404 Not Found", #"{"message":"page not found"}"#)
            }
        }
    }

    private func create(name: String, body: [String: Any]) -> String {
        if containers.contains(where: { $0.name == name }) {
            return Self.error("409 Conflict", "Conflict. The container name \"/\(name)\" is already in use by container \"x\".")
        }
        let hostConfig = body["HostConfig"] as? [String: Any] ?? [:]
        let mode = hostConfig["NetworkMode"] as? String ?? "default"
        let endpoints = ((body["NetworkingConfig"] as? [String: Any])?["EndpointsConfig"] as? [String: Any]) ?? [:]
        if shape == .v1_41 {
            if endpoints.count > 1 {
                return Self.error(
                    "400 Bad Request",
                    "Container cannot be connected to network endpoints: \(endpoints.keys.sorted().joined(separator: ", "))")
            }
            if let key = endpoints.keys.first, key != mode {
                return Self.error("400 Bad Request", "network \(key) is not the NetworkMode \(mode)")
            }
        }
        let id = String(repeating: String(format: "%02x", containers.count + nextIP), count: 32)
        var ip = ""
        if mode != "host" {
            ip = "172.20.0.\(nextIP)"
            nextIP += 1
        }
        containers.append(
            Container(
                id: id, name: name, network: mode, ip: ip, labels: body["Labels"] as? [String: String] ?? [:], running: false))
        return FakeEngine.json("201 Created", #"{"Id":"\#(id)","Warnings":[]}"#)
    }

    private func endpoint(_ c: Container) -> [String: Any] {
        var endpoint: [String: Any] = [
            "IPAddress": c.running ? c.ip : "", "Gateway": c.running && !c.ip.isEmpty ? "172.20.0.1" : "",
        ]
        if shape == .current {
            endpoint["DNSNames"] = [c.name, String(c.id.prefix(12))]
        } else {
            endpoint["Aliases"] = [String(c.id.prefix(12))]
        }
        return endpoint
    }

    private func networkSettings(_ c: Container) -> [String: Any] {
        var settings: [String: Any] = ["Networks": [c.network: endpoint(c)]]
        // 1.41 still has the default bridge's top-level fields: empty off that bridge.
        if shape == .v1_41 { settings["IPAddress"] = ""; settings["Gateway"] = "" }
        return settings
    }

    private func summary(_ c: Container) -> [String: Any] {
        [
            "Id": c.id, "Names": ["/\(c.name)"], "Labels": c.labels, "State": c.running ? "running" : "exited",
            "Status": c.running ? "Up 1 second" : "Exited (0) 1 second ago", "HostConfig": ["NetworkMode": c.network],
            "NetworkSettings": ["Networks": [c.network: endpoint(c)]],
        ]
    }

    private func inspect(_ c: Container) -> [String: Any] {
        [
            "Id": c.id, "Name": "/\(c.name)", "State": ["Running": c.running, "Status": c.running ? "running" : "exited"],
            "HostConfig": ["NetworkMode": c.network], "Config": ["Labels": c.labels], "NetworkSettings": networkSettings(c),
        ]
    }

    static func error(_ status: String, _ message: String) -> String {
        FakeEngine.json(status, text(["message": message]))
    }

    static func text(_ value: Any) -> String {
        String(decoding: (try? JSONSerialization.data(withJSONObject: value, options: .sortedKeys)) ?? Data(), as: UTF8.self)
    }

    static func query(_ target: String) -> [String: String] {
        guard let q = target.firstIndex(of: "?") else { return [:] }
        var result: [String: String] = [:]
        for pair in target[target.index(after: q)...].split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? String($0) }
            if kv.count == 2 { result[kv[0]] = kv[1] }
        }
        return result
    }
}
