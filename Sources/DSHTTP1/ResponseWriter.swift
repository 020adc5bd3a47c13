/// Serialises the responses ds-lb and ds-server write themselves (errors, admin answers, the
/// replica's endpoints). Proxied responses are never re-serialised.
public enum ResponseWriter {
    public static func reason(_ status: Int) -> String {
        switch status {
        case 100: return "Continue"
        case 200: return "OK"
        case 201: return "Created"
        case 204: return "No Content"
        case 400: return "Bad Request"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 409: return "Conflict"
        case 413: return "Content Too Large"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        case 505: return "HTTP Version Not Supported"
        default: return "Status \(status)"
        }
    }

    /// A complete response with a body. `close` adds `Connection: close`; `headOnly` omits the
    /// body (an answer to HEAD) but keeps its Content-Length.
    public static func response(status: Int, contentType: String? = "application/json", body: String,
                                close: Bool, headOnly: Bool = false, extraHeaders: String = "") -> [UInt8] {
        let bodyBytes = Array(body.utf8)
        var text = "HTTP/1.1 \(status) \(reason(status))\r\n"
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
    public static func head(status: Int, contentType: String, contentLength: UInt64, close: Bool) -> [UInt8] {
        var text = "HTTP/1.1 \(status) \(reason(status))\r\nContent-Type: \(contentType)\r\nContent-Length: \(contentLength)\r\n"
        if close { text += "Connection: close\r\n" }
        return Array((text + "\r\n").utf8)
    }

    /// `{"message": "...", "status": "failure"}`, the error body every refusal carries.
    public static func failure(status: Int, message: String, close: Bool, extraHeaders: String = "") -> [UInt8] {
        response(status: status, body: JSON.object(["message": .string(message), "status": .string("failure")]),
                 close: close, extraHeaders: extraHeaders)
    }
}
