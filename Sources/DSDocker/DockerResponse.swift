import DSHTTPClient
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
    /// `Connection: close`), with the shared client's decoder.
    package static func parse(_ bytes: [UInt8]) throws -> DockerResponse {
        do {
            let response = try HTTPResponseDecoder.decodeWhole(bytes)
            return DockerResponse(status: response.status, body: response.body)
        } catch {
            throw EngineTransport.answerError(error, label: "")
        }
    }
}
