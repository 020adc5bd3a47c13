import DSBalancer
import DSHTTP1
import DSSystem

extension KeyExtractor {
    /// Where a request's key bytes are: the one answer both `hashedKey` (hot path) and `key`
    /// (logs, tests) are built on, so the two cannot disagree.
    enum Resolved: Equatable {
        /// A range of the head's bytes (empty: the empty key).
        case head(Range<Int>)
        /// The client address (`client-ip`).
        case client
        /// A `random` request id as six ASCII digits, first digit in the lowest byte.
        case random(UInt64)
    }

    /// The first source in the chain that answers for this request. Rules: query parameters and
    /// cookies are compared byte for byte and hashed as sent (not percent-decoded); header names
    /// ignore case; a missing or empty value falls through to the next source; `path` always
    /// answers (the target before `?` and `#`); `random` always answers, with a new id;
    /// `client-ip` answers when the peer has an address. Only the sources named are used: when
    /// every one misses, the last one named decides, and what a missing source yields is the
    /// empty value, so the key is the empty string (every such request goes to one replica).
    func resolve(
        head: RequestHeadInfo, bytes: UnsafeRawBufferPointer, hasClientKey: Bool,
        random: inout RandomRequestIDs
    ) -> Resolved {
        for source in sources {
            switch source {
            case .query(let name):
                if let value = head.queryParameter(name, in: bytes), !value.isEmpty { return .head(value) }
            case .header(let name):
                // An absolute-form target's authority is the Host the replica gets (HopByHop).
                if let authority = head.authority, name == "host" { return .head(authority) }
                if let field = head.firstField(named: name, in: bytes), !field.valueRange.isEmpty {
                    return .head(field.valueRange)
                }
            case .cookie(let name):
                // Never empty: `cookie(_:in:)` skips a pair without a value.
                if let value = head.cookie(name, in: bytes) { return .head(value) }
            case .path:
                return .head(head.pathRange)
            case .clientIP:
                if hasClientKey { return .client }
            case .random:
                return .random(random.next())
            }
        }
        return .head(0..<0)
    }

    /// The routing key of a request, hashed by `snapshot` straight from the head's bytes (see
    /// `resolve` for which source wins). `clientKey` is the client address as text, kept by the
    /// connection so no request builds it again. Nothing here allocates.
    func hashedKey(
        for head: RequestHeadInfo, headBytes bytes: UnsafeRawBufferPointer, clientKey: ArraySlice<UInt8>,
        random: inout RandomRequestIDs, snapshot: Snapshot
    ) -> UInt64 {
        switch resolve(head: head, bytes: bytes, hasClientKey: !clientKey.isEmpty, random: &random) {
        case .head(let range):
            return snapshot.key(UnsafeRawBufferPointer(rebasing: bytes[range]))
        case .client:
            return clientKey.withUnsafeBytes { snapshot.key($0) }
        case .random(let packed):
            // Hashed as the id's six digits, exactly as `?id=` with that id would be.
            return withUnsafeBytes(of: packed.littleEndian) { snapshot.key(UnsafeRawBufferPointer(rebasing: $0[0..<6])) }
        }
    }

    /// The routing key as text, for logs and tests (allocates; the proxy hashes `hashedKey`,
    /// which hashes these very bytes).
    func key(
        for head: RequestHeadInfo, headBytes bytes: UnsafeRawBufferPointer, peer: SocketAddress?,
        random: inout RandomRequestIDs
    ) -> String {
        let client = peer?.host ?? ""
        switch resolve(head: head, bytes: bytes, hasClientKey: !client.isEmpty, random: &random) {
        case .head(let range):
            return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
        case .client:
            return client
        case .random(let packed):
            return withUnsafeBytes(of: packed.littleEndian) { String(decoding: $0[0..<6], as: UTF8.self) }
        }
    }
}
