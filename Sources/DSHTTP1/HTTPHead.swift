/// HTTP/1.x version of a message. Anything other than 1.0 and 1.1 is refused with 505.
public enum HTTPVersion: Sendable, Equatable {
    case http10
    case http11
}

/// A header field as offsets into the bytes the head was parsed from, so the head can be
/// forwarded as it arrived and nothing is copied unless someone asks for a value.
public struct HeaderField: Sendable, Equatable {
    public let nameStart: Int32
    public let nameEnd: Int32
    public let valueStart: Int32
    public let valueEnd: Int32
}

/// Why a head was refused: the status to answer with and a message for the JSON body. The
/// connection is always closed after such an answer (RFC 9112 §6.3: after a framing error the
/// receiver cannot know where the next message starts).
public struct HTTPParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public let status: HTTPStatus
    public let message: String

    public init(_ status: HTTPStatus, _ message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { "\(status) \(message)" }
}

/// Limits a parser enforces (by default a 64 KiB head and 100 fields; beyond them, 431).
public struct HTTPLimits: Sendable {
    public var maxHeadBytes: Int
    public var maxHeaderCount: Int

    public init(maxHeadBytes: Int = 64 * 1024, maxHeaderCount: Int = 100) {
        self.maxHeadBytes = maxHeadBytes
        self.maxHeaderCount = maxHeaderCount
    }
}

/// How a message body is delimited (RFC 9112 §6.3), decided in one place: `BodyFraming`.
public enum BodyFraming: Sendable, Equatable {
    case none
    case contentLength(UInt64)
    case chunked
    /// Response only: the body runs until the server closes the connection.
    case untilClose
}

/// Connection-management facts gathered while parsing, so no one re-scans the fields.
public struct ConnectionTokens: Sendable, Equatable {
    public var close = false
    public var keepAlive = false
    public var upgrade = false
    /// A token names Content-Length or Transfer-Encoding: framing fields are end to end, and a
    /// response that lists one is refused (`Framing.response`); a request's are kept regardless.
    public var namesFramingField = false
}

/// A parsed request head with its method and target as text and every field listed: the
/// convenient form (ds-server, tests, fuzzing). It allocates; the proxy's hot path uses
/// `RequestHeadInfo`, which this wraps, so both forms follow the same rules.
public struct RequestHead: Sendable {
    public var info: RequestHeadInfo
    public var method: String
    public var target: String
    public var fields: HeaderFieldList
    /// The Transfer-Encoding codings in order, lowercased (all fields joined).
    public var transferCodings: [String]

    init(info: RequestHeadInfo, bytes: UnsafeRawBufferPointer, fields: HeaderFieldList, transferCodings: [String]) {
        self.info = info
        method = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[info.method]), as: UTF8.self)
        target = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[info.target]), as: UTF8.self)
        self.fields = fields
        self.transferCodings = transferCodings
    }

    public var version: HTTPVersion {
        get { info.version }
        set { info.version = newValue }
    }
    /// The number of bytes of the head, including the final empty line.
    public var length: Int {
        get { info.length }
        set { info.length = newValue }
    }
    public var contentLength: UInt64? {
        get { info.contentLength }
        set { info.contentLength = newValue }
    }
    public var hostCount: Int {
        get { info.hostCount }
        set { info.hostCount = newValue }
    }
    public var connection: ConnectionTokens {
        get { info.connection }
        set { info.connection = newValue }
    }
    public var expectContinue: Bool {
        get { info.expectContinue }
        set { info.expectContinue = newValue }
    }

    /// The target in origin-form (see `RequestHeadInfo.originTarget`).
    public var originTarget: Substring {
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
    public var path: Substring {
        let t = targetWithoutFragment
        if let q = t.firstIndex(of: "?") { return t[..<q] }
        return t
    }

    /// The query string (after `?`, without the fragment), if any.
    public var query: Substring? {
        let t = targetWithoutFragment
        guard let q = t.firstIndex(of: "?") else { return nil }
        return t[t.index(after: q)...]
    }

    /// The first value of query parameter `name` (not percent-decoded: keys are hashed as sent).
    public func queryParameter(_ name: String) -> Substring? {
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
    public var wantsKeepAlive: Bool { info.wantsKeepAlive }

    public var isHead: Bool { info.isHead }
}

/// A parsed response head as facts only (no reference, nothing allocated): what the proxy needs
/// to frame the body and to decide whether the connection can be reused.
public struct ResponseHeadInfo: Sendable, Equatable {
    public var version: HTTPVersion
    public var status: Int
    /// The number of bytes of the head, including the final empty line.
    public var length: Int
    public var contentLength: UInt64?
    public var transferCodings = TransferCodingSummary()
    public var connection = ConnectionTokens()
    public var fieldCount = 0
    /// Where the first field line starts (just after the status line's CRLF).
    public var fieldsStart = 0
    /// Whether a field is hop-by-hop by its name alone (see `RequestHeadInfo.hasHopByHopField`).
    public var hasHopByHopField = false

    public init(version: HTTPVersion, status: Int, length: Int) {
        self.version = version
        self.status = status
        self.length = length
    }

    /// Whether the server keeps the connection open after this response.
    public var keepsConnection: Bool {
        switch version {
        case .http11: return !connection.close
        case .http10: return connection.keepAlive && !connection.close
        }
    }
}

/// A parsed response head with every field listed (the convenient, allocating form).
public struct ResponseHead: Sendable {
    public var info: ResponseHeadInfo
    public var fields: [HeaderField]
    public var transferCodings: [String]

    init(info: ResponseHeadInfo, fields: [HeaderField], transferCodings: [String]) {
        self.info = info
        self.fields = fields
        self.transferCodings = transferCodings
    }

    public var version: HTTPVersion {
        get { info.version }
        set { info.version = newValue }
    }
    public var status: Int {
        get { info.status }
        set { info.status = newValue }
    }
    public var length: Int {
        get { info.length }
        set { info.length = newValue }
    }
    public var contentLength: UInt64? {
        get { info.contentLength }
        set { info.contentLength = newValue }
    }
    public var connection: ConnectionTokens {
        get { info.connection }
        set { info.connection = newValue }
    }

    /// Whether the server keeps the connection open after this response.
    public var keepsConnection: Bool { info.keepsConnection }
}

extension HeaderField {
    /// The field's name as text.
    public func name(in bytes: UnsafeRawBufferPointer) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[Int(nameStart)..<Int(nameEnd)]), as: UTF8.self)
    }

    /// The field's value as text, without surrounding whitespace.
    public func value(in bytes: UnsafeRawBufferPointer) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[Int(valueStart)..<Int(valueEnd)]), as: UTF8.self)
    }
}
