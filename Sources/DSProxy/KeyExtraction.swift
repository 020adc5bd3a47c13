import DSBalancer
import DSHTTP1
import DSSystem

extension KeyExtractor {
    /// The routing key of a request: the first source in the chain that is present. When none
    /// is, the client address (so a client without an id still sticks to one replica).
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
