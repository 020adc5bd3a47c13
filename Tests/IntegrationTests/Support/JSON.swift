// JSON bodies decoded with JSONSerialization, plus the accessors the tests need for the
// `{"message": ..., "status": ...}` envelope used by ds-server and ds-lb.

import Foundation

enum JSON {
    /// The bytes decoded as a JSON object, or nil when they are not one.
    static func object(from bytes: [UInt8]) -> [String: Any]? {
        guard !bytes.isEmpty else { return nil }
        return (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any]
    }

    /// Serialises a JSON value (object/array/number/string) for a request body.
    static func bytes(_ value: Any) -> [UInt8] {
        // Sorted keys keep request bodies stable in logs.
        let data = try! JSONSerialization.data(withJSONObject: value, options: [.sortedKeys])
        return Array(data)
    }
}

extension HTTPResponse {
    /// `message` when it is a string.
    var messageString: String? { jsonObject?["message"] as? String }
    /// `status` of the JSON envelope ("successful" / "failure").
    var jsonStatus: String? { jsonObject?["status"] as? String }

    /// The `/rep` payload: `{"message": {"N": n, "replicas": [...]}, "status": "successful"}`.
    var replicaState: (n: Int, replicas: [String])? {
        guard let message = jsonObject?["message"] as? [String: Any],
            let replicas = message["replicas"] as? [String]
        else { return nil }
        guard let n = message["N"] as? Int else { return nil }
        return (n, replicas)
    }

    /// GET /status's `in_flight`, summed over the replicas (or of the one named), or -1 when
    /// the response is not a /status answer.
    func inFlight(replica name: String? = nil) -> Int {
        guard status == 200, let message = jsonObject?["message"] as? [String: Any],
            let replicas = message["replicas"] as? [[String: Any]]
        else { return -1 }
        return replicas.filter { name == nil || $0["name"] as? String == name }
            .reduce(0) { $0 + ($1["in_flight"] as? Int ?? 0) }
    }

    /// The replica number N in `Hello from Server: N`, or nil.
    var helloServerID: Int? {
        guard let message = messageString else { return nil }
        let prefix = "Hello from Server: "
        guard message.hasPrefix(prefix) else { return nil }
        return Int(message.dropFirst(prefix.count))
    }
}
