// libFuzzer target: the response-head parser and the response framing decision:
// the properties every head parser has (FuzzHeadSupport.swift), with the framing decided for
// both a GET and a HEAD request.

import DSHTTP1

private let parser = HeadParser()

extension ResponseHead: FuzzedHead {
    struct Facts: Equatable {
        var version: HTTPVersion
        var status: Int
        var fields: [String]
        var contentLength: UInt64?
        var codings: [String]
        var framingGET: String
        var framingHEAD: String
        var keeps: Bool
    }

    static func parse(_ parser: HeadParser, _ bytes: UnsafeRawBufferPointer, from: Int) -> HeadParseResult<ResponseHead> {
        parser.parseResponse(bytes, from: from)
    }

    static func parseInfo(_ parser: HeadParser, _ bytes: UnsafeRawBufferPointer) -> HeadParseResult<ResponseHeadInfo> {
        parser.parseResponseInfo(bytes)
    }

    func requireAgrees(with info: ResponseHeadInfo) {
        require(self.info == info, "facts differ")
        for method in ["GET", "HEAD"] {
            require(describe(Framing.response(self, requestMethod: method))
                    == describe(Framing.response(info, requestIsHead: method == "HEAD")), "framing differs")
        }
    }

    func facts(in bytes: UnsafeRawBufferPointer) -> Facts {
        Facts(version: version, status: status, fields: fieldFacts(in: bytes), contentLength: contentLength,
              codings: transferCodings,
              framingGET: describe(Framing.response(self, requestMethod: "GET")),
              framingHEAD: describe(Framing.response(self, requestMethod: "HEAD")),
              keeps: keepsConnection)
    }

    /// Any reason phrase: it carries no meaning (RFC 9112 §4).
    var canonicalStartLine: String { "\(version == .http11 ? "HTTP/1.1" : "HTTP/1.0") \(status) Reason" }
}

func fuzz(_ bytes: UnsafeRawBufferPointer) {
    checkHeadProperties(ResponseHead.self, bytes, parser: parser)
}
