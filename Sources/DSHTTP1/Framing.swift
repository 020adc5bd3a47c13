/// The one place that decides how a message body is delimited (RFC 9112 §6). Every refusal here
/// is answered and followed by closing the connection: once framing is in doubt, so is where the
/// next message starts.
package enum Framing {
    /// Whether chunked request bodies are accepted (they are forwarded as they came, their end
    /// found by `ChunkedScanner`). With false, they are refused with 501, never mis-framed.
    package static let acceptsChunkedRequests = true

    /// The body framing of a request.
    package static func request(_ head: RequestHead) -> Result<BodyFraming, HTTPParseError> {
        request(head.info)
    }

    /// The body framing of a request (the one decision; `request(_: RequestHead)` asks it too).
    package static func request(_ head: RequestHeadInfo) -> Result<BodyFraming, HTTPParseError> {
        let codings = head.transferCodings
        if !codings.isEmpty {
            // §6.1: Transfer-Encoding with Content-Length is the classic smuggling shape; refuse
            // it outright (as nginx does) instead of silently preferring one header.
            if head.contentLength != nil {
                return .failure(HTTPParseError(.badRequest, "Both Content-Length and Transfer-Encoding present"))
            }
            if head.version == .http10 {
                return .failure(HTTPParseError(.badRequest, "Transfer-Encoding in an HTTP/1.0 request"))
            }
            // §6.3 item 3: chunked must be the final coding of a request, and only once.
            guard codings.lastIsChunked else {
                return .failure(HTTPParseError(.badRequest, "Request transfer coding does not end in chunked"))
            }
            if codings.count > 1 {
                if codings.chunkedBeforeLast {
                    return .failure(HTTPParseError(.badRequest, "chunked applied more than once"))
                }
                if !codings.allKnown {
                    return .failure(HTTPParseError(.notImplemented, "Unknown transfer coding"))
                }
            }
            guard acceptsChunkedRequests else {
                return .failure(HTTPParseError(.notImplemented, "Chunked request bodies are not supported yet"))
            }
            return .success(.chunked)
        }
        if let length = head.contentLength, length > 0 { return .success(.contentLength(length)) }
        return .success(.none)
    }

    /// The body framing of a response to a request with `requestMethod` (§6.3 items 1–7).
    /// A response whose framing is invalid is a 502 for the client and a closed upstream.
    package static func response(_ head: ResponseHead, requestMethod: String) -> Result<BodyFraming, HTTPParseError> {
        response(head.info, requestIsHead: requestMethod == "HEAD")
    }

    /// The body framing of a response (the one decision; the other overload asks it too).
    package static func response(_ head: ResponseHeadInfo, requestIsHead: Bool) -> Result<BodyFraming, HTTPParseError> {
        if requestIsHead || (100..<200).contains(head.status) || head.status == 204 || head.status == 304 {
            return .success(.none)
        }
        let codings = head.transferCodings
        // A hop-by-hop list naming the field that frames the body: a proxy that obeyed it would
        // relay a body without framing (glued to the next response on a kept connection), and
        // one that ignored it would disagree with whoever did obey. Neither is safe to relay.
        if head.connection.namesFramingField && (head.contentLength != nil || !codings.isEmpty) {
            return .failure(
                HTTPParseError(.badGateway, "Upstream named a framing field (Content-Length or Transfer-Encoding) in Connection"))
        }
        if !codings.isEmpty {
            if head.contentLength != nil {
                return .failure(HTTPParseError(.badGateway, "Upstream sent both Content-Length and Transfer-Encoding"))
            }
            if codings.lastIsChunked {
                if codings.chunkedBeforeLast {
                    return .failure(HTTPParseError(.badGateway, "Upstream applied chunked twice"))
                }
                return .success(.chunked)
            }
            return .success(.untilClose)
        }
        if let length = head.contentLength { return .success(length == 0 ? .none : .contentLength(length)) }
        return .success(.untilClose)
    }
}
