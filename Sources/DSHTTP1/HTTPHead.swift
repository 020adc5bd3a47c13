/// HTTP/1.x version of a message. Anything other than 1.0 and 1.1 is refused with 505.
///
/// Usable from inline so its synthesized `==` inlines in the proxy, which compares versions per
/// request.
@usableFromInline package enum HTTPVersion: Sendable, Equatable {
    case http10
    case http11
}

/// A header field as offsets into the bytes the head was parsed from, so the head can be
/// forwarded as it arrived and nothing is copied unless someone asks for a value.
package struct HeaderField: Sendable, Equatable {
    package let nameStart: Int32
    package let nameEnd: Int32
    package let valueStart: Int32
    package let valueEnd: Int32
}

/// Why a head was refused: the status to answer with and a message for the JSON body. The
/// connection is always closed after such an answer (RFC 9112 §6.3: after a framing error the
/// receiver cannot know where the next message starts).
package struct HTTPParseError: Error, Sendable, Equatable, CustomStringConvertible {
    package let status: HTTPStatus
    package let message: String

    package init(_ status: HTTPStatus, _ message: String) {
        self.status = status
        self.message = message
    }

    package var description: String { "\(status) \(message)" }
}

/// Limits a parser enforces (by default a 64 KiB head and 100 fields; beyond them, 431).
package struct HTTPLimits: Sendable {
    package var maxHeadBytes: Int
    package var maxHeaderCount: Int

    package init(maxHeadBytes: Int = 64 * 1024, maxHeaderCount: Int = 100) {
        self.maxHeadBytes = maxHeadBytes
        self.maxHeaderCount = maxHeaderCount
    }
}

/// How a message body is delimited (RFC 9112 §6.3), decided in one place: `BodyFraming`.
///
/// Usable from inline so its synthesized `==` inlines in the proxy, which checks the framing per
/// message.
@usableFromInline package enum BodyFraming: Sendable, Equatable {
    case none
    case contentLength(UInt64)
    case chunked
    /// Response only: the body runs until the server closes the connection.
    case untilClose
}

/// Connection-management facts gathered while parsing, so no one re-scans the fields.
///
/// Usable from inline: the inlinable keep-alive getters of `RequestHeadInfo` and `ResponseHeadInfo`
/// read it.
@usableFromInline package struct ConnectionTokens: Sendable, Equatable {
    @usableFromInline package var close = false
    @usableFromInline package var keepAlive = false
    package var upgrade = false
    /// A token names Content-Length or Transfer-Encoding: framing fields are end to end, and a
    /// response that lists one is refused (`Framing.response`); a request's are kept regardless.
    package var namesFramingField = false
}

/// A parsed request head with its method and target as text and every field listed: the
/// convenient form (ds-server, tests, fuzzing). It allocates; the proxy's hot path uses
/// `RequestHeadInfo`, which this wraps, so both forms follow the same rules.
package struct RequestHead: Sendable {
    package var info: RequestHeadInfo
    package var method: String
    package var target: String
    package var fields: HeaderFieldList
    /// The Transfer-Encoding codings in order, lowercased (all fields joined).
    package var transferCodings: [String]

    init(info: RequestHeadInfo, bytes: UnsafeRawBufferPointer, fields: HeaderFieldList, transferCodings: [String]) {
        self.info = info
        method = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[info.method]), as: UTF8.self)
        target = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[info.target]), as: UTF8.self)
        self.fields = fields
        self.transferCodings = transferCodings
    }

    // The facts of `info`, forwarded by hand. A `@dynamicMemberLookup` subscript over key paths
    // would say it in four lines, but other modules (ds-server per request, ds-bench per
    // response) then call `swift_getKeyPath` and a generic subscript on every read: the key
    // paths are not folded across modules, even with the subscript inlinable.
    package var version: HTTPVersion {
        get { info.version }
        set { info.version = newValue }
    }
    /// The number of bytes of the head, including the final empty line.
    package var length: Int {
        get { info.length }
        set { info.length = newValue }
    }
    package var contentLength: UInt64? {
        get { info.contentLength }
        set { info.contentLength = newValue }
    }
    package var hostCount: Int {
        get { info.hostCount }
        set { info.hostCount = newValue }
    }
    package var connection: ConnectionTokens {
        get { info.connection }
        set { info.connection = newValue }
    }
    package var expectContinue: Bool {
        get { info.expectContinue }
        set { info.expectContinue = newValue }
    }

    /// The target in origin-form (see `RequestHeadInfo.originTarget`).
    package var originTarget: Substring {
        guard info.authority != nil else { return Substring(target) }
        // The scheme and authority before it are ASCII: the offset is a character boundary.
        let start = target.utf8.index(target.utf8.startIndex, offsetBy: info.originTarget.lowerBound - info.target.lowerBound)
        return target[start...]
    }

    /// The target without a fragment (clients should not send one; some do, and nginx drops it).
    private var targetWithoutFragment: Substring {
        let target = originTarget
        if let hash = target.firstIndex(of: "#") { return target[..<hash] }
        return target
    }

    /// The target's path (before `?`).
    package var path: Substring {
        let t = targetWithoutFragment
        if let q = t.firstIndex(of: "?") { return t[..<q] }
        return t
    }

    /// The query string (after `?`, without the fragment), if any.
    package var query: Substring? {
        let t = targetWithoutFragment
        guard let q = t.firstIndex(of: "?") else { return nil }
        return t[t.index(after: q)...]
    }

    /// The first value of query parameter `name` (not percent-decoded: keys are hashed as sent).
    package func queryParameter(_ name: String) -> Substring? {
        guard let query else { return nil }
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            if let eq = pair.firstIndex(of: "=") {
                if pair[..<eq] == name { return pair[pair.index(after: eq)...] }
            } else if pair == name {
                return pair[pair.endIndex...]
            }
        }
        return nil
    }

    /// Whether the connection stays open after this exchange (RFC 9112 §9.3).
    package var wantsKeepAlive: Bool { info.wantsKeepAlive }

    package var isHead: Bool { info.isHead }
}

/// A parsed response head as facts only (no reference, nothing allocated): what the proxy needs
/// to frame the body and to decide whether the connection can be reused.
///
/// Usable from inline with an inlinable `keepsConnection`: the proxy asks it per response from
/// another module.
@usableFromInline package struct ResponseHeadInfo: Sendable, Equatable {
    @usableFromInline package var version: HTTPVersion
    package var status: Int
    /// The number of bytes of the head, including the final empty line.
    package var length: Int
    package var contentLength: UInt64?
    package var transferCodings = TransferCodingSummary()
    @usableFromInline package var connection = ConnectionTokens()
    package var fieldCount = 0
    /// Where the first field line starts (just after the status line's CRLF).
    package var fieldsStart = 0
    /// Whether a field is hop-by-hop by its name alone (see `RequestHeadInfo.hasHopByHopField`).
    package var hasHopByHopField = false

    package init(version: HTTPVersion, status: Int, length: Int) {
        self.version = version
        self.status = status
        self.length = length
    }

    /// Whether the server keeps the connection open after this response.
    @inlinable package var keepsConnection: Bool {
        switch version {
        case .http11: return !connection.close
        case .http10: return connection.keepAlive && !connection.close
        }
    }
}

/// A parsed response head with every field listed (the convenient, allocating form).
package struct ResponseHead: Sendable {
    package var info: ResponseHeadInfo
    package var fields: [HeaderField]
    package var transferCodings: [String]

    init(info: ResponseHeadInfo, fields: [HeaderField], transferCodings: [String]) {
        self.info = info
        self.fields = fields
        self.transferCodings = transferCodings
    }

    package var version: HTTPVersion {
        get { info.version }
        set { info.version = newValue }
    }
    package var status: Int {
        get { info.status }
        set { info.status = newValue }
    }
    package var length: Int {
        get { info.length }
        set { info.length = newValue }
    }
    package var contentLength: UInt64? {
        get { info.contentLength }
        set { info.contentLength = newValue }
    }
    package var connection: ConnectionTokens {
        get { info.connection }
        set { info.connection = newValue }
    }

    /// Whether the server keeps the connection open after this response.
    package var keepsConnection: Bool { info.keepsConnection }
}

extension HeaderField {
    /// The field's name as text.
    package func name(in bytes: UnsafeRawBufferPointer) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[Int(nameStart)..<Int(nameEnd)]), as: UTF8.self)
    }

    /// The field's value as text, without surrounding whitespace.
    package func value(in bytes: UnsafeRawBufferPointer) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[Int(valueStart)..<Int(valueEnd)]), as: UTF8.self)
    }
}
