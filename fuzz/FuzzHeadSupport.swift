// Shared by the two head targets (compiled into fuzz-request-head and fuzz-response-head): the
// properties every head parser has, written once over `FuzzedHead`. Each target
// says how its kind of head is parsed, what two parses of it must share and its start line.
//  1. the allocating form and the facts-only form (the one the proxy uses) agree;
//  2. resuming: a prefix parsed first, then the whole from its `resumeAt`, gives the same
//     outcome and the same head;
//  3. differential: an accepted head re-serialised canonically (one SP, `name: value`, CRLF
//     everywhere) is accepted again, to its last byte, with the same facts and framing.

import DSHTTP1

/// A kind of head (request or response) as the shared properties see it.
protocol FuzzedHead: Sendable {
    associatedtype Info: Sendable
    associatedtype Facts: Equatable
    associatedtype Fields: Sequence<HeaderField>

    static func parse(_ parser: HeadParser, _ bytes: UnsafeRawBufferPointer, from: Int) -> HeadParseResult<Self>
    static func parseInfo(_ parser: HeadParser, _ bytes: UnsafeRawBufferPointer) -> HeadParseResult<Info>
    /// Requires what the two forms of one accepted head must share.
    func requireAgrees(with info: Info)
    /// What must match between two parses of (possibly different bytes of) one head.
    func facts(in bytes: UnsafeRawBufferPointer) -> Facts
    /// The start line as it is re-serialised, without its CRLF.
    var canonicalStartLine: String { get }
    var fields: Fields { get }
    var length: Int { get }
}

extension FuzzedHead {
    /// Every field as `name:value`, names lower-cased (their case carries no meaning).
    func fieldFacts(in bytes: UnsafeRawBufferPointer) -> [String] {
        fields.map { "\($0.name(in: bytes).lowercased()):\($0.value(in: bytes))" }
    }

    /// Canonical bytes of this head, parsed from `bytes`: the fields are copied as they came.
    func serialised(from bytes: UnsafeRawBufferPointer) -> [UInt8] {
        var out = Array("\(canonicalStartLine)\r\n".utf8)
        for field in fields {
            out += Array(UnsafeRawBufferPointer(rebasing: bytes[Int(field.nameStart)..<Int(field.nameEnd)]))
            out += [58, 32]
            out += Array(UnsafeRawBufferPointer(rebasing: bytes[Int(field.valueStart)..<Int(field.valueEnd)]))
            out += [13, 10]
        }
        return out + [13, 10]
    }
}

func describe(_ framing: Result<BodyFraming, HTTPParseError>) -> String {
    switch framing {
    case .success(let f): return "\(f)"
    case .failure(let e): return "refused \(e.status)"
    }
}

func outcome<Head: FuzzedHead>(_ result: HeadParseResult<Head>) -> String {
    switch result {
    case .incomplete: return "incomplete"
    case .failed(let e): return "failed \(e.status)"
    case .complete(let h): return "complete \(h.length)"
    }
}

/// Checks properties 1–3 on one input; returns the parse of the whole for the target's own checks.
@discardableResult
func checkHeadProperties<Head: FuzzedHead>(
    _: Head.Type, _ bytes: UnsafeRawBufferPointer, parser: HeadParser
) -> HeadParseResult<Head> {
    let whole = Head.parse(parser, bytes, from: 0)

    // 1. The two forms agree.
    switch (whole, Head.parseInfo(parser, bytes)) {
    case (.incomplete(let a), .incomplete(let b)):
        require(a == b, "resumeAt differs: \(a) vs \(b)")
    case (.failed(let a), .failed(let b)):
        require(a.status == b.status, "refusal differs: \(a) vs \(b)")
    case (.complete(let head), .complete(let info)):
        head.requireAgrees(with: info)
    case (let a, let b):
        violated("the allocating form \(outcome(a)) but the facts-only form \(b)")
    }

    // 2. Resuming after a prefix.
    let cut = splitPoint(bytes)
    if cut > 0 {
        let prefix = UnsafeRawBufferPointer(rebasing: bytes[0..<cut])
        switch Head.parse(parser, prefix, from: 0) {
        case .incomplete(let resume):
            require(resume >= 0 && resume <= cut, "resumeAt \(resume) outside 0...\(cut)")
            let again = Head.parse(parser, bytes, from: resume)
            require(outcome(again) == outcome(whole), "resumed \(outcome(again)) vs whole \(outcome(whole))")
            if case .complete(let a) = again, case .complete(let b) = whole {
                require(a.facts(in: bytes) == b.facts(in: bytes), "resumed head differs")
            }
        case .failed(let e):
            guard case .failed(let w) = whole else {
                violated("prefix of \(cut) bytes refused (\(e)) but the whole is \(outcome(whole))")
            }
            require(e.status == w.status, "prefix refused \(e.status), whole \(w.status)")
        case .complete(let head):
            guard case .complete(let w) = whole else { violated("prefix complete, whole \(outcome(whole))") }
            require(head.facts(in: prefix) == w.facts(in: bytes), "prefix head differs from whole")
        }
    }

    // 3. Differential: accepted → canonical bytes → accepted with the same meaning and framing.
    if case .complete(let head) = whole {
        let canonical = head.serialised(from: bytes)
        canonical.withUnsafeBytes { again in
            switch Head.parse(parser, again, from: 0) {
            case .complete(let reparsed):
                require(reparsed.length == again.count, "re-serialised head length \(reparsed.length) of \(again.count)")
                require(reparsed.facts(in: again) == head.facts(in: bytes),
                        "re-serialised head means something else: \(reparsed.facts(in: again)) vs \(head.facts(in: bytes))")
            case let other:
                violated("re-serialised head not accepted: \(outcome(other)) \(String(decoding: again, as: UTF8.self).debugDescription)")
            }
        }
    }
    return whole
}
