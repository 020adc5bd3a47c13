import DSHTTP1

/// An admin request as a worker hands it to the supervisor: everything copied out of the
/// connection's buffers, so it can cross threads.
package struct AdminRequest: Sendable {
    package let method: String
    package let path: String
    package let query: String?
    package let body: [UInt8]
    /// The client's address, for the admin log line.
    package let client: String

    package init(method: String, path: String, query: String?, body: [UInt8], client: String = "unknown") {
        self.method = method
        self.path = path
        self.query = query
        self.body = body
        self.client = client
    }

    /// The value of query parameter `name`, names and values percent-decoded (RFC 3986 §2.1), so
    /// `?id=%31` is `?id=1`. A `+` stays a plus: it means a space only in HTML form bodies, and
    /// the data plane reads it as a plus too (it hashes its keys as sent). Refused: a `%` not
    /// followed by two hex digits in any name (it may be `name`) or in `name`'s value, and
    /// `name` given more than once (`?id=1&id=2`, or `?id=1&%69d=2`), which would otherwise pick
    /// one of two values silently, as a body's repeated key is refused.
    package func queryParameter(_ name: String) throws(MalformedQueryParameter) -> String? {
        guard let query else { return nil }
        var found: String?
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let decodedName = Self.percentDecoded(parts[0]) else {
                throw MalformedQueryParameter(name: String(parts[0]), problem: .malformedEscape)
            }
            guard decodedName == name else { continue }
            guard found == nil else { throw MalformedQueryParameter(name: name, problem: .repeated) }
            guard parts.count > 1 else {
                found = ""
                continue
            }
            guard let value = Self.percentDecoded(parts[1]) else {
                throw MalformedQueryParameter(name: name, problem: .malformedEscape)
            }
            found = value
        }
        return found
    }

    /// `text` with each `%XX` replaced by byte XX; nil when a `%` lacks its two hex digits.
    static func percentDecoded(_ text: Substring) -> String? {
        guard text.utf8.contains(UInt8(ascii: "%")) else { return String(text) }
        let bytes = Array(text.utf8)
        var decoded: [UInt8] = []
        decoded.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            guard bytes[index] == UInt8(ascii: "%") else {
                decoded.append(bytes[index])
                index += 1
                continue
            }
            guard index + 2 < bytes.count, let high = ChunkedScanner.hexValue(bytes[index + 1]),
                let low = ChunkedScanner.hexValue(bytes[index + 2])
            else {
                return nil
            }
            decoded.append(high << 4 | low)
            index += 3
        }
        return String(decoding: decoded, as: UTF8.self)
    }
}

/// A query parameter `AdminRequest.queryParameter` refuses.
package struct MalformedQueryParameter: Error, Equatable {
    package enum Problem: Sendable, Equatable {
        /// A `%` not followed by two hex digits.
        case malformedEscape
        /// The parameter is given more than once.
        case repeated
    }

    /// The parameter's name as sent (decoded for `repeated`).
    package let name: String
    package let problem: Problem

    /// The 400 answer's message.
    package var message: String {
        switch problem {
        case .malformedEscape: "<Error> Query parameter '\(name)' has a malformed percent-escape"
        case .repeated: "<Error> Query parameter '\(name)' is given more than once"
        }
    }
}

/// The supervisor's answer: a status and a body (JSON unless said otherwise).
package struct AdminResponse: Sendable {
    package let status: HTTPStatus
    package let body: String
    package let contentType: String
    package let extraHeaders: String
    /// A body without end that follows the head (server-sent events) instead of `body`.
    package let stream: (any ResponseStream)?

    package init(
        status: HTTPStatus, body: String, contentType: String = "application/json", extraHeaders: String = "",
        stream: (any ResponseStream)? = nil
    ) {
        self.status = status
        self.body = body
        self.contentType = contentType
        self.extraHeaders = extraHeaders
        self.stream = stream
    }

    package static func failure(_ status: HTTPStatus, _ message: String, extraHeaders: String = "") -> AdminResponse {
        AdminResponse(
            status: status, body: JSON.object(["message": .string(message), "status": .string("failure")]),
            extraHeaders: extraHeaders)
    }
}

/// The supervisor side of the admin API. Workers call `submit` on their own thread; the
/// implementation answers later through `reply`, from any thread (the worker hops back to its
/// loop itself). Nothing here may block the calling worker.
package protocol AdminHandler: Sendable {
    /// Whether `path` is an admin endpoint (checked per request: keep it cheap).
    func isAdminPath(_ path: Substring) -> Bool
    /// The same for a path's bytes as they came (UTF-8), the form the worker asks with.
    func isAdminPath(bytes path: UnsafeRawBufferPointer) -> Bool
    /// Bytes in the longest admin path: a longer request path is routed without asking
    /// `isAdminPath` (and so without making a string of it).
    var longestAdminPath: Int { get }
    func submit(_ request: AdminRequest, reply: @escaping @Sendable (AdminResponse) -> Void)
    /// Whether `path` needs the admin token (when one is configured). A page a browser opens
    /// by its address cannot send one; what it then asks for can.
    func needsToken(_ path: Substring) -> Bool
    /// Any thread. An admin request the worker refused itself (allow-list, token, body limit),
    /// so it is logged like the ones the handler answers.
    func refused(method: String, path: String, client: String, status: HTTPStatus, reason: String)
}

extension AdminHandler {
    package var longestAdminPath: Int { .max }
    package func isAdminPath(bytes path: UnsafeRawBufferPointer) -> Bool {
        isAdminPath(Substring(String(decoding: path, as: UTF8.self)))
    }
    package func needsToken(_ path: Substring) -> Bool { true }
    package func refused(method: String, path: String, client: String, status: HTTPStatus, reason: String) {}
}
