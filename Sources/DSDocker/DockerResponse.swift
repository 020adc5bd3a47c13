import DSHTTP1
import Foundation

/// One answer from the engine: status and the body, de-chunked.
package struct DockerResponse: Sendable {
    package let status: Int
    package let body: [UInt8]

    package init(status: Int, body: [UInt8]) {
        self.status = status
        self.body = body
    }

    package var text: String { String(decoding: body, as: UTF8.self) }

    /// The body as JSON (a dictionary or an array), or nil.
    package var json: Any? { try? JSONSerialization.jsonObject(with: Data(body)) }

    /// The engine's own error text: its JSON `{"message": "..."}` when there is one, else the body.
    package var engineMessage: String {
        if let object = json as? [String: Any], let message = object["message"] as? String { return message }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return trimmed.isEmpty ? "HTTP \(status)" : trimmed
    }

    /// Parses a whole HTTP/1.1 response read until the engine closed the connection (we send
    /// `Connection: close`): the head by our parser, the body by its framing (RFC 9112 §6.3).
    package static func parse(_ bytes: [UInt8]) throws -> DockerResponse {
        let parsed: HeadParseResult<ResponseHead> = bytes.withUnsafeBytes { HeadParser().parseResponse($0) }
        let head: ResponseHead
        switch parsed {
        case .complete(let value): head = value
        case .incomplete: throw DockerError.protocolError("the engine closed the connection before a complete response head")
        case .failed(let error): throw DockerError.protocolError("malformed response from the engine: \(error)")
        }
        let rest = Array(bytes[head.length...])
        switch Framing.response(head, requestMethod: "GET") {
        case .failure(let error):
            throw DockerError.protocolError("bad response framing from the engine: \(error)")
        case .success(.none):
            return DockerResponse(status: head.status, body: [])
        case .success(.contentLength(let length)):
            guard rest.count >= Int(length) else {
                throw DockerError.protocolError("response body cut short: \(rest.count) of \(length) bytes")
            }
            return DockerResponse(status: head.status, body: Array(rest.prefix(Int(length))))
        case .success(.chunked):
            var decoder = ChunkedDecoder()
            var body: [UInt8] = []
            try decoder.decodeEngineBody(rest[...], into: &body)
            guard decoder.isDone else { throw DockerError.protocolError("chunked body cut short") }
            return DockerResponse(status: head.status, body: body)
        case .success(.untilClose):
            return DockerResponse(status: head.status, body: rest)
        }
    }
}

extension ChunkedDecoder {
    /// Decodes the next bytes of an engine's chunked body, its framing errors as ours. The rules
    /// are the data plane's strict ones (see `ChunkedDecoder`): a real engine's framing is
    /// well-formed, and what the proxy would refuse is no answer to trust on the control plane.
    mutating func decodeEngineBody(_ bytes: ArraySlice<UInt8>, into output: inout [UInt8], label: String = "") throws(DockerError) {
        do {
            _ = try bytes.withUnsafeBytes { try decode($0, into: &output) }
        } catch {
            throw DockerError.protocolError("\(label)malformed chunked body from the engine: \((error as? HTTPParseError)?.message ?? "\(error)")")
        }
    }
}
