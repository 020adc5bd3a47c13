/// The request rows of the framing and smuggling corpus, one per rule of README's "Smuggling
/// defences" and "Limits": the raw bytes a client sends and the status ds-lb must answer with
/// (200: the request goes on to the replica whole). One table for the two suites that run it:
/// IntegrationTests.SmugglingCorpusTests sends each row to a real ds-lb, and
/// DSProxyTests.SmugglingCorpusMachineTests runs it through the connection's decisions without
/// a socket. The response rows live with the end-to-end suite, the only one with a replica.
package enum RequestCorpus {
    package struct Row: Sendable {
        package let name: String
        /// What the client sends.
        package let request: [UInt8]
        /// The status ds-lb answers with.
        package let status: Int
        /// Where the row is, for a failure's message.
        package let line: UInt
    }

    static func rq(_ name: String, _ raw: String, _ status: Int, line: UInt = #line) -> Row {
        Row(name: name, request: Array(raw.utf8), status: status, line: line)
    }

    /// A valid chunked head, then `body` as the chunked body.
    static func chunked(_ name: String, _ body: String, _ status: Int, line: UInt = #line) -> Row {
        rq(name, "POST /x?id=1 HTTP/1.1\r\nHost: lb\r\nTransfer-Encoding: chunked\r\n\r\n" + body, status, line: line)
    }

    static let get = "GET /x?id=1 HTTP/1.1\r\nHost: lb\r\n"
    static let post = "POST /x?id=1 HTTP/1.1\r\nHost: lb\r\n"
    /// A second request hidden in a body: it must never reach the replica.
    static let smuggled = "GET /smuggled HTTP/1.1\r\nHost: lb\r\n\r\n"

    // One row per entry, name first, laid out by hand; swift-format would break each call apart.
    // swift-format-ignore
    package static let rows: [Row] = [
        // MARK: controls (the corpus proves refusals, so first prove acceptance)
        rq("control: valid GET", "GET /ok?id=1 HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n\r\n", 200),
        rq("control: identical duplicate Content-Length",
           "POST /ok?id=1 HTTP/1.1\r\nHost: lb\r\nContent-Length: 2\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi", 200),
        rq("control: 100 header fields", "GET /ok?id=1 HTTP/1.1\r\nHost: lb\r\nConnection: close\r\n"
           + (0..<98).map { "X-F\($0): v\r\n" }.joined() + "\r\n", 200),

        // MARK: Content-Length and Transfer-Encoding together
        rq("CL then TE", post + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, 400),
        rq("TE then CL", post + "Transfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n" + smuggled, 400),
        rq("CL 0 and TE", post + "Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        rq("lowercase cl and te", post + "content-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        rq("TE gzip,chunked and CL", post + "Transfer-Encoding: gzip, chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400),

        // MARK: transfer codings
        rq("TE gzip only", post + "Transfer-Encoding: gzip\r\n\r\n" + smuggled, 400),
        rq("TE chunked, gzip", post + "Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400),
        rq("TE identity", post + "Transfer-Encoding: identity\r\n\r\n", 400),
        rq("TE chunked twice", post + "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400),
        rq("TE chunked then gzip in two fields", post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
        rq("TE xchunked", post + "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 400),
        rq("TE chunked with trailing junk", post + "Transfer-Encoding: chunked;q=1\r\n\r\n0\r\n\r\n", 400),
        rq("TE on HTTP/1.0", "POST /x?id=1 HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        rq("TE empty list element", post + "Transfer-Encoding: chunked,\r\n\r\n0\r\n\r\n", 400),
        rq("TE empty value", post + "Transfer-Encoding:\r\n\r\n", 400),
        rq("unknown coding before chunked", post + "Transfer-Encoding: foo, chunked\r\n\r\n0\r\n\r\n", 501),
        rq("unknown coding among known", post + "Transfer-Encoding: gzip, x-custom, chunked\r\n\r\n0\r\n\r\n", 501),
        rq("unknown coding in its own field", post + "Transfer-Encoding: br\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501),

        // MARK: Content-Length values
        rq("CL not a number", post + "Content-Length: abc\r\n\r\n", 400),
        rq("CL with plus sign", post + "Content-Length: +5\r\n\r\nhello", 400),
        rq("CL negative", post + "Content-Length: -1\r\n\r\n", 400),
        rq("CL empty", post + "Content-Length:\r\n\r\n", 400),
        rq("CL hex", post + "Content-Length: 0x10\r\n\r\n", 400),
        rq("CL inner space", post + "Content-Length: 1 0\r\n\r\n", 400),
        rq("CL list", post + "Content-Length: 5, 5\r\n\r\nhello", 400),
        rq("CL 2^64", post + "Content-Length: 18446744073709551616\r\n\r\n", 400),
        rq("CL 19 digits", post + "Content-Length: 1000000000000000000\r\n\r\n", 400),
        rq("CL far past 2^64", post + "Content-Length: 99999999999999999999999999999\r\n\r\n", 400),
        rq("CL differing", post + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400),
        rq("CL differing, second invalid", post + "Content-Length: 5\r\nContent-Length: 5a\r\n\r\nhello", 400),
        rq("CL with trailing letter", post + "Content-Length: 5x\r\n\r\nhello", 400),

        // MARK: field syntax
        rq("space before colon", "GET /x?id=1 HTTP/1.1\r\nHost : lb\r\n\r\n", 400),
        rq("tab before colon in TE", post + "Transfer-Encoding\t: chunked\r\nContent-Length: 5\r\n\r\nhello", 400),
        rq("space before colon in CL", post + "Content-Length : 5\r\n\r\nhello", 400),
        rq("obs-fold with space", get + "X-A: b\r\n c\r\n\r\n", 400),
        rq("obs-fold with tab", get + "X-A: b\r\n\tc\r\n\r\n", 400),
        rq("obs-fold of TE", post + "Transfer-Encoding: gzip,\r\n chunked\r\n\r\n0\r\n\r\n", 400),
        rq("first field line folded", "GET /x?id=1 HTTP/1.1\r\n Host: lb\r\n\r\n", 400),
        rq("bare CR in value", get + "X-A: b\rc\r\n\r\n", 400),
        rq("bare CR ends a field line", get + "X-A: b\r\r\n\r\n", 400),
        rq("bare CR in request line", "GET /x\r HTTP/1.1\r\nHost: lb\r\n\r\n", 400),
        rq("NUL in value", get + "X-A: b\u{0}c\r\n\r\n", 400),
        rq("NUL in name", get + "X\u{0}A: b\r\n\r\n", 400),
        rq("NUL in target", "GET /x\u{0}?id=1 HTTP/1.1\r\nHost: lb\r\n\r\n", 400),
        rq("empty field name", get + ": b\r\n\r\n", 400),
        rq("non-token field name", get + "X(A): b\r\n\r\n", 400),
        rq("space inside field name", get + "X A: b\r\n\r\n", 400),
        rq("non-ASCII field name", get + "X-\u{e9}: b\r\n\r\n", 400),
        rq("field line without colon", get + "NoColon\r\n\r\n", 400),
        rq("DEL in value", get + "X-A: b\u{7f}\r\n\r\n", 400),

        // MARK: Host
        rq("missing Host on HTTP/1.1", "GET /x?id=1 HTTP/1.1\r\nAccept: */*\r\n\r\n", 400),
        rq("duplicate Host", "GET /x?id=1 HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        rq("duplicate identical Host", "GET /x?id=1 HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", 400),
        rq("duplicate Host on HTTP/1.0", "GET /x?id=1 HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        rq("empty Host", "GET /x?id=1 HTTP/1.1\r\nHost:\r\n\r\n", 400),
        rq("Host list", "GET /x?id=1 HTTP/1.1\r\nHost: a, b\r\n\r\n", 400),
        rq("Host with userinfo and path", "GET /x?id=1 HTTP/1.1\r\nHost: a@b/c\r\n\r\n", 400),
        rq("absolute-form target with userinfo", "GET http://a@lb/x?id=1 HTTP/1.1\r\nHost: lb\r\n\r\n", 400),

        // MARK: request line
        rq("HTTP/2.0 version", "GET /x?id=1 HTTP/2.0\r\nHost: lb\r\n\r\n", 505),
        rq("lowercase version", "GET /x?id=1 http/1.1\r\nHost: lb\r\n\r\n", 400),
        rq("space inside target", "GET /a b HTTP/1.1\r\nHost: lb\r\n\r\n", 400),
        rq("version with trailing space", "GET /x?id=1 HTTP/1.1 \r\nHost: lb\r\n\r\n", 400),
        // Refused when its line ends, not after the 10 s head deadline (which would be a 408).
        rq("HTTP/0.9 request", "GET /x?id=1\r\n", 400),

        // MARK: bare LF (refused everywhere, as documented in DSHTTP1's HeadParser)
        rq("bare LF ends request line", "GET /x?id=1 HTTP/1.1\nHost: lb\r\n\r\n", 400),
        rq("bare LF between fields", get + "X-A: b\nX-B: c\r\n\r\n", 400),
        rq("bare LF terminator", "GET /x?id=1 HTTP/1.1\r\nHost: lb\n\n", 400),
        rq("bare LF hides a TE field", post + "Content-Length: 5\r\nX-A: b\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),

        // MARK: chunked request bodies
        chunked("chunk size not hex", "zz\r\nhello\r\n0\r\n\r\n", 400),
        chunked("chunk size empty", "\r\nhello\r\n0\r\n\r\n", 400),
        chunked("chunk size with sign", "+5\r\nhello\r\n0\r\n\r\n", 400),
        chunked("chunk size with 0x", "0x5\r\nhello\r\n0\r\n\r\n", 400),
        chunked("chunk size 16 hex digits", "ffffffffffffffff\r\nhello\r\n0\r\n\r\n", 400),
        chunked("chunk size past 2^64", "10000000000000000\r\nhello\r\n0\r\n\r\n", 400),
        chunked("chunk extension over 4 KiB", "5;" + String(repeating: "e", count: 5000) + "\r\nhello\r\n0\r\n\r\n", 400),
        chunked("chunk data longer than its size", "5\r\nhello!!\r\n0\r\n\r\n" + smuggled, 400),
        chunked("bare LF after chunk size", "5\nhello\r\n0\r\n\r\n", 400),
        chunked("bare CR after chunk size", "5\rhello\r\n0\r\n\r\n", 400),
        chunked("bare LF in trailer section", "0\r\nX-T: 1\n\r\n", 400),
        chunked("NUL in chunk extension", "5;a\u{0}b\r\nhello\r\n0\r\n\r\n", 400),
        // Trailers follow the head's field rules.
        chunked("obs-fold in trailer section", "0\r\nX-T: a\r\n b\r\n\r\n", 400),
        chunked("space before colon in trailer", "0\r\nX-T : a\r\n\r\n", 400),
        chunked("request line as trailer", "0\r\n" + smuggled, 400),

        // MARK: limits
        rq("head over 64 KiB", get + "X-Big: " + String(repeating: "a", count: 70 * 1024) + "\r\n\r\n", 431),
        rq("101 header fields", get + (0..<100).map { "X-F\($0): v\r\n" }.joined() + "\r\n", 431),
        rq("body over --max-body-size", post + "Content-Length: 2000000\r\n\r\n" + String(repeating: "b", count: 1000), 413),
        rq("body over --max-body-size, 100-continue", post + "Expect: 100-continue\r\nContent-Length: 1048577\r\n\r\n", 413),
        chunked("chunked body over --max-body-size in one chunk", "100001\r\nhello", 413),
        chunked("chunked body over --max-body-size over several chunks",
                "80000\r\n" + String(repeating: "c", count: 0x80000) + "\r\n80001\r\nhello", 413),
        rq("admin body over the 64 KiB cap", "POST /add HTTP/1.1\r\nHost: lb\r\nContent-Type: application/json\r\n"
           + "Content-Length: 70000\r\n\r\n{\"n\": 1", 413),
    ]
}
