import DSBalancer
import DSHTTP1
import DSHashing
import DSSystem

extension KeyExtractor {
    /// The routing key of a request, hashed by `snapshot` straight from the head's bytes: the first
    /// source in the chain that is present. When none is, the client address (so a client
    /// without an id still sticks to one replica). `clientKey` is the client address as text,
    /// kept by the connection so no request builds it again. Nothing here allocates.
    ///
    /// Same rules as always: query parameters and cookies compared byte for byte and hashed as
    /// sent (not percent-decoded); header names ignoring case; an empty value falls through to
    /// the next source; `path` always answers (the target before `?` and `#`).
    func hashedKey(for head: RequestHeadInfo, headBytes bytes: UnsafeRawBufferPointer, clientKey: [UInt8],
                   snapshot: Snapshot) -> UInt64 {
        for source in sources {
            switch source {
            case .query(let name):
                if let value = head.queryParameter(name, in: bytes), !value.isEmpty {
                    return snapshot.key(UnsafeRawBufferPointer(rebasing: bytes[value]))
                }
            case .header(let name):
                if let field = head.firstField(named: name, in: bytes), !field.valueRange.isEmpty {
                    return snapshot.key(UnsafeRawBufferPointer(rebasing: bytes[field.valueRange]))
                }
            case .cookie(let name):
                if let value = head.cookie(name, in: bytes) {
                    return snapshot.key(UnsafeRawBufferPointer(rebasing: bytes[value]))
                }
            case .path:
                return snapshot.key(UnsafeRawBufferPointer(rebasing: bytes[head.path(in: bytes)]))
            case .clientIP:
                if !clientKey.isEmpty { return clientKey.withUnsafeBytes { snapshot.key($0) } }
            }
        }
        return clientKey.withUnsafeBytes { snapshot.key($0) }
    }

    /// The routing key as text, for logs and tests (allocates; the proxy hashes `hashedKey`).
    func key(for head: RequestHead, headBytes: UnsafeRawBufferPointer, peer: SocketAddress?) -> String {
        for source in sources {
            switch source {
            case .query(let name):
                if let value = head.queryParameter(name), !value.isEmpty { return String(value) }
            case .header(let name):
                if let value = head.fields.first(where: { $0.name(in: headBytes).lowercased() == name })?.value(in: headBytes),
                   !value.isEmpty {
                    return value
                }
            case .cookie(let name):
                for field in head.fields where field.name(in: headBytes).lowercased() == "cookie" {
                    for pair in field.value(in: headBytes).split(separator: ";") {
                        let parts = pair.split(separator: "=", maxSplits: 1)
                        if parts.count == 2, parts[0].trimmingCharacters(inSet: " ") == name { return String(parts[1]) }
                    }
                }
            case .path:
                return String(head.path)
            case .clientIP:
                if let peer { return peer.host }
            }
        }
        return peer?.host ?? ""
    }
}
