// libFuzzer target: the response-head parser and the response framing decision (issue #9.1).
// Properties: no crash; `parseResponse` and `parseResponseInfo` agree; resuming after a prefix
// gives the same outcome; an accepted head re-serialised canonically is accepted again with
// the same status, fields and framing (for GET and HEAD).

import DSHTTP1

private let parser = HeadParser()

private struct Facts: Equatable {
    var version: HTTPVersion
    var status: Int
    var fields: [String]
    var contentLength: UInt64?
    var codings: [String]
    var framingGET: String
    var framingHEAD: String
    var keeps: Bool

    init(_ head: ResponseHead, _ bytes: UnsafeRawBufferPointer) {
        version = head.version
        status = head.status
        fields = head.fields.map { "\($0.name(in: bytes).lowercased()):\($0.value(in: bytes))" }
        contentLength = head.contentLength
        codings = head.transferCodings
        framingGET = describe(Framing.response(head, requestMethod: "GET"))
        framingHEAD = describe(Framing.response(head, requestMethod: "HEAD"))
        keeps = head.keepsConnection
    }
}

private func describe(_ framing: Result<BodyFraming, HTTPParseError>) -> String {
    switch framing {
    case .success(let f): return "\(f)"
    case .failure(let e): return "refused \(e.status)"
    }
}

private func outcome(_ result: HeadParseResult<ResponseHead>) -> String {
    switch result {
    case .incomplete: return "incomplete"
    case .failed(let e): return "failed \(e.status)"
    case .complete(let h): return "complete \(h.length)"
    }
}

private func serialise(_ head: ResponseHead, _ bytes: UnsafeRawBufferPointer) -> [UInt8] {
    let status = String(head.status)
    var out = Array("\(head.version == .http11 ? "HTTP/1.1" : "HTTP/1.0") \(status) Reason\r\n".utf8)
    for field in head.fields {
        out += Array(UnsafeRawBufferPointer(rebasing: bytes[Int(field.nameStart)..<Int(field.nameEnd)]))
        out += [58, 32]
        out += Array(UnsafeRawBufferPointer(rebasing: bytes[Int(field.valueStart)..<Int(field.valueEnd)]))
        out += [13, 10]
    }
    return out + [13, 10]
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzResponseHead(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    let whole = parser.parseResponse(bytes)

    switch (whole, parser.parseResponseInfo(bytes)) {
    case (.incomplete(let a), .incomplete(let b)):
        require(a == b, "resumeAt differs: \(a) vs \(b)")
    case (.failed(let a), .failed(let b)):
        require(a.status == b.status, "refusal differs: \(a) vs \(b)")
    case (.complete(let head), .complete(let info)):
        require(head.info == info, "facts differ")
        for method in ["GET", "HEAD"] {
            require(describe(Framing.response(head, requestMethod: method))
                    == describe(Framing.response(info, requestIsHead: method == "HEAD")), "framing differs")
        }
    case (let a, let b):
        violated("parseResponse \(outcome(a)) but parseResponseInfo \(b)")
    }

    let cut = splitPoint(bytes)
    if cut > 0 {
        let prefix = UnsafeRawBufferPointer(rebasing: bytes[0..<cut])
        switch parser.parseResponse(prefix) {
        case .incomplete(let resume):
            require(resume >= 0 && resume <= cut, "resumeAt \(resume) outside 0...\(cut)")
            let again = parser.parseResponse(bytes, from: resume)
            require(outcome(again) == outcome(whole), "resumed \(outcome(again)) vs whole \(outcome(whole))")
        case .failed(let e):
            guard case .failed(let w) = whole else {
                violated("prefix of \(cut) bytes refused (\(e)) but the whole is \(outcome(whole))")
            }
            require(e.status == w.status, "prefix refused \(e.status), whole \(w.status)")
        case .complete(let head):
            guard case .complete(let w) = whole else { violated("prefix complete, whole \(outcome(whole))") }
            require(Facts(head, prefix) == Facts(w, bytes), "prefix head differs from whole")
        }
    }

    if case .complete(let head) = whole {
        let canonical = serialise(head, bytes)
        canonical.withUnsafeBytes { again in
            switch parser.parseResponse(again) {
            case .complete(let reparsed):
                require(reparsed.length == again.count, "re-serialised head length")
                require(Facts(reparsed, again) == Facts(head, bytes),
                        "re-serialised head means something else: \(Facts(reparsed, again)) vs \(Facts(head, bytes))")
            case let other:
                violated("re-serialised head not accepted: \(outcome(other))")
            }
        }
    }
    return 0
}
