/// The response rows of the framing and smuggling corpus: the raw bytes a replica answers a
/// well-formed request (`GET … Connection: close`) with, and the status the client gets (502:
/// ds-lb refuses the response and closes its connection to the replica; 200: the response goes
/// on). One table for the two suites that run it: IntegrationTests.SmugglingCorpusTests has a
/// fake replica send each row to a real ds-lb, and DSProxyTests.ResponseCorpusMachineTests runs
/// it through the response parser, `Framing.response`, the chunked scanner and the exchange's
/// machine without a socket.
package enum ResponseCorpus {
    package struct Row: Sendable {
        package let name: String
        /// What the replica sends.
        package let response: [UInt8]
        /// The replica closes its side after `response`.
        package let thenClose: Bool
        /// The status the client gets.
        package let status: Int
        /// Where the row is, for a failure's message.
        package let line: UInt
    }

    static func rs(_ name: String, _ raw: String, _ status: Int = 502, line: UInt = #line) -> Row {
        Row(name: name, response: Array(raw.utf8), thenClose: false, status: status, line: line)
    }

    static func closing(_ row: Row) -> Row {
        Row(name: row.name, response: row.response, thenClose: true, status: row.status, line: row.line)
    }

    static let chunkedHead = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"

    // One row per entry, name first, laid out by hand; swift-format would break each call apart.
    // swift-format-ignore
    package static let rows: [Row] = [
        rs("control: response valid", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 200),
        rs("control: response valid chunked", chunkedHead + "2\r\nok\r\n0\r\n\r\n", 200),
        rs("control: response identical duplicate Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok", 200),
        // A coding before the final chunked is the client's to decode; chunked still frames it.
        rs("control: response TE gzip, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 200),

        // MARK: framing a replica must not send
        rs("response CL and TE", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        rs("response TE and CL", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"),
        rs("response CL 0 and TE", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
        rs("response chunked twice", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"),
        rs("response differing CL", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!"),
        rs("response differing CL in one list", "HTTP/1.1 200 OK\r\nContent-Length: 2, 3\r\n\r\nok!"),
        rs("response CL not a number", "HTTP/1.1 200 OK\r\nContent-Length: two\r\n\r\nok"),
        rs("response CL negative", "HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\nok"),
        rs("response CL with trailing junk", "HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\nhello"),
        rs("response CL with a plus sign", "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok"),
        rs("response CL in hex", "HTTP/1.1 200 OK\r\nContent-Length: 0x2\r\n\r\nok"),
        rs("response CL past 2^64", "HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551617\r\n\r\nok"),
        rs("response empty CL", "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\nok"),
        rs("response space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok"),
        rs("response tab before colon", "HTTP/1.1 200 OK\r\nContent-Length\t: 2\r\n\r\nok"),
        rs("response obs-fold", "HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\nContent-Length: 2\r\n\r\nok"),
        rs("response obs-fold of Content-Length", "HTTP/1.1 200 OK\r\nContent-Length:\r\n 2\r\n\r\nok"),
        rs("response bare CR", "HTTP/1.1 200 OK\r\nX-A: b\rc\r\nContent-Length: 2\r\n\r\nok"),
        rs("response NUL in value", "HTTP/1.1 200 OK\r\nX-A: b\u{0}c\r\nContent-Length: 2\r\n\r\nok"),
        rs("response bare LF", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok"),
        rs("response bare LF ending one field", "HTTP/1.1 200 OK\r\nX-A: b\nContent-Length: 2\r\n\r\nok"),
        rs("response empty field name", "HTTP/1.1 200 OK\r\n: b\r\nContent-Length: 2\r\n\r\nok"),
        rs("response non-token field name", "HTTP/1.1 200 OK\r\nX[A]: b\r\nContent-Length: 2\r\n\r\nok"),

        // MARK: status lines
        rs("response four-digit status", "HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok"),
        rs("response status below 100", "HTTP/1.1 099 Low\r\nContent-Length: 2\r\n\r\nok"),
        rs("response status not digits", "HTTP/1.1 2x0 OK\r\nContent-Length: 2\r\n\r\nok"),
        rs("response HTTP/2.0", "HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        rs("response lowercase http", "http/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        rs("response not HTTP", "hello world\r\n\r\n"),
        rs("response unrequested 101", "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"),
        rs("response head over 64 KiB", "HTTP/1.1 200 OK\r\nX-Big: " + String(repeating: "b", count: 70 * 1024)
           + "\r\nContent-Length: 2\r\n\r\nok"),
        rs("response 101 fields", "HTTP/1.1 200 OK\r\n" + (0..<101).map { "X-F\($0): v\r\n" }.joined()
           + "Content-Length: 2\r\n\r\nok"),
        closing(rs("response head cut by close", "HTTP/1.1 200 OK\r\nContent-Le")),

        // MARK: broken chunked bodies. The replica sends each in one write, so ds-lb finds the
        // break before any byte of the response went to the client: 502, not an empty reply (a
        // break after part of the body cuts both ends: ProxyResponseTests).
        rs("response chunk size not hex", chunkedHead + "zz\r\nok\r\n0\r\n\r\n"),
        rs("response chunk size past 2^64", chunkedHead + "10000000000000000\r\nok\r\n0\r\n\r\n"),
        rs("response chunk size of 17 hex digits, leading zeros", chunkedHead + "00000000000000002\r\nok\r\n0\r\n\r\n"),
        rs("response negative chunk size", chunkedHead + "-2\r\nok\r\n0\r\n\r\n"),
        rs("response chunk size with 0x", chunkedHead + "0x2\r\nok\r\n0\r\n\r\n"),
        rs("response empty chunk size", chunkedHead + "\r\nok\r\n0\r\n\r\n"),
        rs("response chunk extension over 4 KiB", chunkedHead + "2;" + String(repeating: "e", count: 5000) + "\r\nok\r\n0\r\n\r\n"),
        rs("response chunk data longer than its size", chunkedHead + "2\r\nokay\r\n0\r\n\r\n"),
        rs("response bare LF after chunk size", chunkedHead + "2\nok\r\n0\r\n\r\n"),
        rs("response bare LF after chunk data", chunkedHead + "2\r\nok\n0\r\n\r\n"),
        rs("response bare LF after last chunk", chunkedHead + "2\r\nok\r\n0\n\r\n"),
        rs("response obs-fold in trailer", chunkedHead + "2\r\nok\r\n0\r\nX-T: a\r\n b\r\n\r\n"),
        rs("response space before colon in trailer", chunkedHead + "2\r\nok\r\n0\r\nX-T : a\r\n\r\n"),
        rs("response status line as trailer", chunkedHead + "2\r\nok\r\n0\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ] + namedFraming.map { framing in
        // The replica names its framing field in Connection, a second response glued after.
        rs("response: " + framing.name, framing.message(startLine: "HTTP/1.1 200 OK", body: "ok")
           + "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled")
    }

    /// A framing field named in a hop-by-hop list (`Connection`): a proxy that obeyed the list
    /// would send the body on without its framing. Each shape is sent by a client (ds-lb keeps
    /// the field: `SmugglingCorpusTests.testFramingNamedInConnectionIsKeptOnTheRequestSide`) and
    /// by a replica (ds-lb answers 502 and closes the replica connection: the `response: ` rows).
    package struct NamedFraming: Sendable {
        package let name: String
        package let connectionLines: [String]
        package let chunked: Bool

        /// `startLine`, the Connection lines, the framing field, then `body` framed by it.
        package func message(startLine: String, body: String) -> String {
            let fields = connectionLines.map { "Connection: \($0)\r\n" }.joined()
            let framed =
                chunked
                ? "Transfer-Encoding: chunked\r\n\r\n" + String(body.utf8.count, radix: 16) + "\r\n" + body + "\r\n0\r\n\r\n"
                : "Content-Length: \(body.utf8.count)\r\n\r\n" + body
            return startLine + "\r\n" + (startLine.hasPrefix("HTTP/") ? "" : "Host: lb\r\n") + fields + framed
        }
    }

    // One case per entry, laid out by hand; swift-format would break each call apart.
    // swift-format-ignore
    package static let namedFraming: [NamedFraming] = [
        NamedFraming(name: "Connection: content-length", connectionLines: ["content-length"], chunked: false),
        NamedFraming(name: "Connection: CONTENT-LENGTH", connectionLines: ["CONTENT-LENGTH"], chunked: false),
        NamedFraming(name: "Connection: close, Content-Length", connectionLines: ["close, Content-Length"], chunked: false),
        NamedFraming(name: "a second Connection line names Content-Length", connectionLines: ["keep-alive", "Content-Length"],
                     chunked: false),
        NamedFraming(name: "Connection: transfer-encoding", connectionLines: ["transfer-encoding"], chunked: true),
        NamedFraming(name: "Connection: Transfer-Encoding, Host", connectionLines: ["Transfer-Encoding, Host"], chunked: true),
    ]
}
