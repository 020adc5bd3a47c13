/// Serialises the responses ds-lb and ds-server write themselves (errors, admin answers, the
/// replica's endpoints). Proxied responses are never re-serialised.
package enum ResponseWriter {
    /// A complete response with a body. `close` adds `Connection: close`; `headOnly` omits the
    /// body (an answer to HEAD) but keeps its Content-Length.
    package static func response(
        status: HTTPStatus, contentType: String? = "application/json", body: String,
        close: Bool, headOnly: Bool = false, extraHeaders: String = ""
    ) -> [UInt8] {
        let bodyBytes = Array(body.utf8)
        var text = status.statusLine + "\r\n"
        if let contentType { text += "Content-Type: \(contentType)\r\n" }
        text += "Content-Length: \(bodyBytes.count)\r\n"
        if close { text += "Connection: close\r\n" }
        text += extraHeaders
        text += "\r\n"
        var out = Array(text.utf8)
        if !headOnly { out += bodyBytes }
        return out
    }

    /// A response head whose body the caller streams (Content-Length framing).
    package static func head(status: HTTPStatus, contentType: String, contentLength: UInt64, close: Bool) -> [UInt8] {
        var text = "\(status.statusLine)\r\nContent-Type: \(contentType)\r\nContent-Length: \(contentLength)\r\n"
        if close { text += "Connection: close\r\n" }
        return Array((text + "\r\n").utf8)
    }

    /// `{"message": "...", "status": "failure"}`, the error body every refusal carries.
    package static func failure(status: HTTPStatus, message: String, close: Bool, extraHeaders: String = "") -> [UInt8] {
        response(
            status: status, body: JSON.object(["message": .string(message), "status": .string("failure")]),
            close: close, extraHeaders: extraHeaders)
    }
}
