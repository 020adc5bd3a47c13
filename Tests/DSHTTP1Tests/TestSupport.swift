import DSHTTP1
import XCTest

func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

func parseRequest(_ raw: [UInt8], limits: HTTPLimits = HTTPLimits(), from: Int = 0) -> HeadParseResult<RequestHead> {
    raw.withUnsafeBytes { HeadParser(limits: limits).parseRequest($0, from: from) }
}

func parseRequest(_ text: String, limits: HTTPLimits = HTTPLimits()) -> HeadParseResult<RequestHead> {
    parseRequest(bytes(text), limits: limits)
}

func parseResponse(_ raw: [UInt8], limits: HTTPLimits = HTTPLimits(), from: Int = 0) -> HeadParseResult<ResponseHead> {
    raw.withUnsafeBytes { HeadParser(limits: limits).parseResponse($0, from: from) }
}

func parseResponse(_ text: String) -> HeadParseResult<ResponseHead> {
    parseResponse(bytes(text))
}

/// A comparable summary of a parse result, so whole-buffer and incremental runs can be compared.
enum Summary: Equatable, CustomStringConvertible {
    case incomplete
    case complete(method: String, target: String, length: Int, contentLength: UInt64?, codings: [String], fields: Int)
    case failed(Int)

    init(_ result: HeadParseResult<RequestHead>) {
        switch result {
        case .incomplete: self = .incomplete
        case .failed(let error): self = .failed(error.status.code)
        case .complete(let h):
            self = .complete(
                method: h.method, target: h.target, length: h.length, contentLength: h.contentLength,
                codings: h.transferCodings, fields: h.fields.count)
        }
    }

    var description: String {
        switch self {
        case .incomplete: return "incomplete"
        case .failed(let s): return "failed(\(s))"
        case .complete(let m, let t, let l, let cl, let te, let f):
            return "complete(\(m) \(t) len=\(l) cl=\(cl.map(String.init) ?? "nil") te=\(te) fields=\(f))"
        }
    }
}

/// Feeds `raw` one byte at a time into a growing buffer, resuming where the parser said, and
/// returns the first non-incomplete result together with how many bytes had been offered.
func parseIncrementally(_ raw: [UInt8], limits: HTTPLimits = HTTPLimits()) -> (HeadParseResult<RequestHead>, offered: Int) {
    var resume = 0
    for n in 1...raw.count {
        let result = parseRequest(Array(raw[0..<n]), limits: limits, from: resume)
        switch result {
        case .incomplete(let r):
            XCTAssertLessThanOrEqual(r, n, "resumeAt past the buffered bytes")
            resume = r
        default:
            return (result, n)
        }
    }
    return (.incomplete(resumeAt: resume), raw.count)
}
