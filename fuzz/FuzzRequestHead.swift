// libFuzzer target: the request-head parser and the request framing decision.
// Besides the properties every head parser has (FuzzHeadSupport.swift: no crash, the two forms
// agree, resuming, the differential re-serialisation), tighter limits never turn a refusal into
// an acceptance, and accept identically.

import DSHTTP1

private let parser = HeadParser()
private let tight = HeadParser(limits: HTTPLimits(maxHeadBytes: 512, maxHeaderCount: 8))

extension RequestHead: FuzzedHead {
    struct Facts: Equatable {
        var method: String
        var target: String
        var version: HTTPVersion
        var fields: [String]
        var contentLength: UInt64?
        var codings: [String]
        var framing: String
        var keepAlive: Bool
        var expectContinue: Bool
        var hostCount: Int
    }

    static func parse(_ parser: HeadParser, _ bytes: UnsafeRawBufferPointer, from: Int) -> HeadParseResult<RequestHead> {
        parser.parseRequest(bytes, from: from)
    }

    static func parseInfo(_ parser: HeadParser, _ bytes: UnsafeRawBufferPointer) -> HeadParseResult<RequestHeadInfo> {
        parser.parseRequestInfo(bytes)
    }

    func requireAgrees(with info: RequestHeadInfo) {
        require(length == info.length, "length differs: \(length) vs \(info.length)")
        require(self.info == info, "facts differ")
        require(describe(Framing.request(self)) == describe(Framing.request(info)), "framing differs")
        require(fields.count == info.fieldCount, "field count differs")
    }

    func facts(in bytes: UnsafeRawBufferPointer) -> Facts {
        Facts(method: method, target: target, version: version, fields: fieldFacts(in: bytes),
              contentLength: contentLength, codings: transferCodings, framing: describe(Framing.request(self)),
              keepAlive: wantsKeepAlive, expectContinue: expectContinue, hostCount: hostCount)
    }

    var canonicalStartLine: String { "\(method) \(target) \(version == .http11 ? "HTTP/1.1" : "HTTP/1.0")" }
}

func fuzz(_ bytes: UnsafeRawBufferPointer) {
    let whole = checkHeadProperties(RequestHead.self, bytes, parser: parser)
    if case .complete(let t) = tight.parseRequest(bytes) {
        guard case .complete(let w) = whole else { violated("tight limits accept, default \(outcome(whole))") }
        require(t.facts(in: bytes) == w.facts(in: bytes), "tight and default heads differ")
    }
}
