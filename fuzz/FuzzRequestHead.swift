// libFuzzer target: the request-head parser and the request framing decision (issue #9.1).
// Properties checked for every input:
//  1. no crash, no out-of-bounds read (ASan), no hang;
//  2. the allocating form (`parseRequest`) and the proxy's form (`parseRequestInfo`) agree;
//  3. resuming: a prefix parsed first, then the whole from its `resumeAt`, gives the same outcome;
//  4. a tighter limit never turns a refusal into an acceptance, and accepts identically;
//  5. differential: an accepted head re-serialised canonically is accepted again with the same
//     method, target, version, fields and the same framing decision.

import DSHTTP1

private let parser = HeadParser()
private let tight = HeadParser(limits: HTTPLimits(maxHeadBytes: 512, maxHeaderCount: 8))

/// What must match between two parses of (possibly different bytes of) one request.
private struct Facts: Equatable {
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

    init(_ head: RequestHead, _ bytes: UnsafeRawBufferPointer) {
        method = head.method
        target = head.target
        version = head.version
        fields = head.fields.map { "\($0.name(in: bytes).lowercased()):\($0.value(in: bytes))" }
        contentLength = head.contentLength
        codings = head.transferCodings
        framing = describe(Framing.request(head))
        keepAlive = head.wantsKeepAlive
        expectContinue = head.expectContinue
        hostCount = head.hostCount
    }
}

private func describe(_ framing: Result<BodyFraming, HTTPParseError>) -> String {
    switch framing {
    case .success(let f): return "\(f)"
    case .failure(let e): return "refused \(e.status)"
    }
}

private func outcome(_ result: HeadParseResult<RequestHead>) -> String {
    switch result {
    case .incomplete: return "incomplete"
    case .failed(let e): return "failed \(e.status)"
    case .complete(let h): return "complete \(h.length)"
    }
}

/// Canonical bytes of an accepted head: one SP, `name: value`, CRLF everywhere.
private func serialise(_ head: RequestHead, _ bytes: UnsafeRawBufferPointer) -> [UInt8] {
    var out = Array("\(head.method) \(head.target) \(head.version == .http11 ? "HTTP/1.1" : "HTTP/1.0")\r\n".utf8)
    for field in head.fields {
        out += Array(UnsafeRawBufferPointer(rebasing: bytes[Int(field.nameStart)..<Int(field.nameEnd)]))
        out += [58, 32]
        out += Array(UnsafeRawBufferPointer(rebasing: bytes[Int(field.valueStart)..<Int(field.valueEnd)]))
        out += [13, 10]
    }
    return out + [13, 10]
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRequestHead(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    let whole = parser.parseRequest(bytes)

    // 2. The two forms agree.
    switch (whole, parser.parseRequestInfo(bytes)) {
    case (.incomplete(let a), .incomplete(let b)):
        require(a == b, "resumeAt differs: \(a) vs \(b)")
    case (.failed(let a), .failed(let b)):
        require(a.status == b.status, "refusal differs: \(a) vs \(b)")
    case (.complete(let head), .complete(let info)):
        require(head.length == info.length, "length differs: \(head.length) vs \(info.length)")
        require(head.info == info, "facts differ")
        require(describe(Framing.request(head)) == describe(Framing.request(info)), "framing differs")
        require(head.fields.count == info.fieldCount, "field count differs")
    case (let a, let b):
        violated("parseRequest \(outcome(a)) but parseRequestInfo \(b)")
    }

    // 3. Resuming after a prefix.
    let cut = splitPoint(bytes)
    if cut > 0 {
        let prefix = UnsafeRawBufferPointer(rebasing: bytes[0..<cut])
        switch parser.parseRequest(prefix) {
        case .incomplete(let resume):
            require(resume >= 0 && resume <= cut, "resumeAt \(resume) outside 0...\(cut)")
            let again = parser.parseRequest(bytes, from: resume)
            require(outcome(again) == outcome(whole), "resumed \(outcome(again)) vs whole \(outcome(whole))")
            if case .complete(let a) = again, case .complete(let b) = whole {
                require(Facts(a, bytes) == Facts(b, bytes), "resumed head differs")
            }
        case .failed(let e):
            if case .failed(let w) = whole {
                require(e.status == w.status, "prefix refused \(e.status), whole \(w.status)")
            } else {
                violated("prefix of \(cut) bytes refused (\(e)) but the whole is \(outcome(whole))")
            }
        case .complete(let head):
            guard case .complete(let w) = whole else { violated("prefix complete, whole \(outcome(whole))") }
            require(Facts(head, prefix) == Facts(w, bytes), "prefix head differs from whole")
        }
    }

    // 4. Tighter limits only refuse more.
    if case .complete(let t) = tight.parseRequest(bytes) {
        guard case .complete(let w) = whole else { violated("tight limits accept, default \(outcome(whole))") }
        require(Facts(t, bytes) == Facts(w, bytes), "tight and default heads differ")
    }

    // 5. Differential: accepted → canonical bytes → accepted with the same meaning and framing.
    if case .complete(let head) = whole {
        let canonical = serialise(head, bytes)
        canonical.withUnsafeBytes { again in
            switch parser.parseRequest(again) {
            case .complete(let reparsed):
                require(reparsed.length == again.count, "re-serialised head length \(reparsed.length) of \(again.count)")
                require(Facts(reparsed, again) == Facts(head, bytes),
                        "re-serialised head means something else: \(Facts(reparsed, again)) vs \(Facts(head, bytes))")
            case let other:
                violated("re-serialised head not accepted: \(outcome(other)) \(String(decoding: again, as: UTF8.self).debugDescription)")
            }
        }
    }
    return 0
}
