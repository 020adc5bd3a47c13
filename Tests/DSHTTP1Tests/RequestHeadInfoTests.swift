import DSTestSupport
import XCTest

@testable import DSHTTP1

/// `parseRequestInfo` and the byte-range lookups the proxy routes with agree with the String
/// forms they replace, on random heads (property tests with a fixed seed) and on the corner
/// cases of each lookup.
final class RequestHeadInfoTests: XCTestCase {
    // MARK: reference implementations (the proxy's String-based rules before byte ranges)

    static func referenceHeader(_ head: RequestHead, _ raw: UnsafeRawBufferPointer, _ name: String) -> String? {
        head.fields.first(where: { $0.name(in: raw).lowercased() == name })?.value(in: raw)
    }

    static func referenceCookie(_ head: RequestHead, _ raw: UnsafeRawBufferPointer, _ name: String) -> String? {
        for field in head.fields where field.name(in: raw).lowercased() == "cookie" {
            for pair in field.value(in: raw).split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                if parts.count == 2, trimSpaces(parts[0]) == name { return String(parts[1]) }
            }
        }
        return nil
    }

    static func trimSpaces(_ s: Substring) -> String {
        var s = s
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }

    /// HopByHop before byte ranges: names lowercased into a set.
    static func referenceKept(_ head: RequestHead, _ raw: UnsafeRawBufferPointer, upgrading: Bool) -> [Range<Int>] {
        let always: Set<String> = ["connection", "keep-alive", "proxy-connection", "te"]
        let end = head.length - 2
        var listed: Set<String> = []
        for field in head.fields where field.name(in: raw).lowercased() == "connection" {
            for token in field.value(in: raw).split(separator: ",") {
                var t = Substring(token)
                while let f = t.first, f == " " || f == "\t" { t = t.dropFirst() }
                while let l = t.last, l == " " || l == "\t" { t = t.dropLast() }
                if !t.isEmpty { listed.insert(t.lowercased()) }
            }
        }
        var ranges: [Range<Int>] = []
        var segmentStart = 0
        for (i, field) in head.fields.enumerated() {
            let name = field.name(in: raw).lowercased()
            let drop =
                always.contains(name) || (name == "upgrade" && !upgrading)
                || (listed.contains(name) && !(upgrading && name == "upgrade"))
            guard drop else { continue }
            let lineStart = Int(field.nameStart)
            let lineEnd = i + 1 < head.fields.count ? Int(head.fields[i + 1].nameStart) : end
            if lineStart > segmentStart { ranges.append(segmentStart..<lineStart) }
            segmentStart = lineEnd
        }
        if end > segmentStart { ranges.append(segmentStart..<end) }
        return ranges
    }

    // MARK: random heads

    static let names = [
        "Host", "Accept", "X-User", "x-user", "Cookie", "cookie", "Connection", "Keep-Alive", "TE",
        "Upgrade", "Proxy-Connection", "X-Hop", "x-hop", "Content-Length", "User-Agent",
    ]
    static let pieces = ["id", "ID", "x", "", "=", "a=b", "id=", "=id", "7", "abc", " ", "  id ", ";", "==", "%41", "é"]

    static func randomValue(_ rng: inout SeededRandom, separator: String) -> String {
        (0..<Int(rng.next() % 5)).map { _ in pieces[Int(rng.next() % UInt64(pieces.count))] }.joined(separator: separator)
    }

    static func randomHead(_ rng: inout SeededRandom) -> String {
        let query = (0..<Int(rng.next() % 4)).map { _ in randomValue(&rng, separator: "=") }.joined(separator: "&")
            .replacingOccurrences(of: " ", with: "").replacingOccurrences(of: ";", with: "")
        let fragment = rng.next() % 5 == 0 ? "#frag" : ""
        let target = "/p\(rng.next() % 3)" + (rng.next() % 4 == 0 ? "" : "?" + query) + fragment
        var head = "GET \(target) HTTP/1.1\r\nHost: h\r\n"
        for _ in 0..<Int(rng.next() % 6) {
            var name = names[Int(rng.next() % UInt64(names.count))]
            if name == "Host" || name == "Content-Length" { name = "X-Other" }
            let value: String
            switch name.lowercased() {
            case "cookie": value = randomValue(&rng, separator: rng.next() % 2 == 0 ? ";" : "; ")
            case "connection":
                value = ["close", "keep-alive", "X-Hop", "upgrade", "x-user"].shuffled(using: &rng)
                    .prefix(Int(rng.next() % 3)).joined(separator: rng.next() % 2 == 0 ? "," : " , ")
            default: value = randomValue(&rng, separator: "")
            }
            head += "\(name): \(value)\r\n"
        }
        return head + "\r\n"
    }

    func testInfoLookupsMatchTheStringRulesOnRandomHeads() {
        var rng = SeededRandom(seed: 0xD5_1B)
        var checked = 0
        // The proxy's form, parsing into a head it keeps: the same head, whatever the last one
        // written into it held.
        var reused = RequestHeadInfo()
        for _ in 0..<3000 {
            let text = Self.randomHead(&rng)
            let raw = Array(text.utf8)
            raw.withUnsafeBytes { bytes in
                guard case .complete(let head) = HeadParser().parseRequest(bytes) else { return }
                guard case .complete(let info) = HeadParser().parseRequestInfo(bytes) else {
                    return XCTFail("parseRequestInfo refused what parseRequest accepted: \(text.debugDescription)")
                }
                XCTAssertEqual(info, head.info, text.debugDescription)
                guard case .complete = HeadParser().parseRequestInfo(bytes, into: &reused) else {
                    return XCTFail("parseRequestInfo(into:) refused what parseRequest accepted: \(text.debugDescription)")
                }
                XCTAssertEqual(reused, info, text.debugDescription)
                checked += 1
                func str(_ r: Range<Int>?) -> String? { r.map { String(decoding: bytes[$0], as: UTF8.self) } }
                XCTAssertEqual(str(info.pathRange), String(head.path), text.debugDescription)
                XCTAssertEqual(str(info.queryRange), head.query.map(String.init), text.debugDescription)
                for name in ["id", "ID", "x", "a", "é"] {
                    XCTAssertEqual(
                        str(info.queryParameter(name, in: bytes)), head.queryParameter(name).map(String.init),
                        "query \(name) in \(text.debugDescription)")
                    XCTAssertEqual(
                        str(info.cookie(name, in: bytes)), Self.referenceCookie(head, bytes, name),
                        "cookie \(name) in \(text.debugDescription)")
                }
                for name in ["x-user", "x-hop", "accept"] {
                    XCTAssertEqual(
                        str(info.firstField(named: name, in: bytes)?.valueRange), Self.referenceHeader(head, bytes, name),
                        "header \(name) in \(text.debugDescription)")
                }
                for upgrading in [false, true] {
                    XCTAssertEqual(
                        HopByHop.keptRanges(of: head, in: bytes, upgrading: upgrading),
                        Self.referenceKept(head, bytes, upgrading: upgrading), text.debugDescription)
                }
            }
        }
        XCTAssertGreaterThan(checked, 2500, "most random heads must parse")
    }

    func testMethodKindsAndFacts() throws {
        let raw = Array("HEAD /x?id=1 HTTP/1.0\r\nHost: a\r\nConnection: Keep-Alive\r\nKeep-Alive: 5\r\n\r\n".utf8)
        try raw.withUnsafeBytes { bytes in
            guard case .complete(let info) = HeadParser().parseRequestInfo(bytes) else { return XCTFail() }
            XCTAssertEqual(info.methodKind, .head)
            XCTAssertTrue(info.isHead)
            XCTAssertTrue(info.wantsKeepAlive)
            XCTAssertTrue(info.hasHopByHopField)
            XCTAssertEqual(info.fieldCount, 3)
            XCTAssertEqual(info.length, raw.count)
            XCTAssertEqual(String(decoding: bytes[info.target], as: UTF8.self), "/x?id=1")
            let kinds: [(String, HTTPMethodKind, Bool)] = [
                ("GET", .get, true), ("POST", .post, false), ("PUT", .put, true),
                ("DELETE", .delete, true), ("PATCH", .patch, false), ("get", .other, false),
            ]
            for (method, kind, idempotent) in kinds {
                let r = Array("\(method) / HTTP/1.1\r\nHost: a\r\n\r\n".utf8)
                let parsed = r.withUnsafeBytes { HeadParser().parseRequestInfo($0) }
                guard case .complete(let i) = parsed else { throw XCTSkip("unparsed \(method)") }
                XCTAssertEqual(i.methodKind, kind, method)
                XCTAssertEqual(i.methodKind.isIdempotent, idempotent, method)
            }
        }
    }

    func testTransferCodingSummaryDrivesFraming() {
        let cases: [(String, Result<BodyFraming, HTTPParseError>)] = [
            ("chunked", .success(.chunked)),
            ("gzip, chunked", .success(.chunked)),
            ("GZip,Chunked", .success(.chunked)),
            ("chunked, chunked", .failure(HTTPParseError(.badRequest, "chunked applied more than once"))),
            ("br, chunked", .failure(HTTPParseError(.notImplemented, "Unknown transfer coding"))),
            ("chunked, gzip", .failure(HTTPParseError(.badRequest, "Request transfer coding does not end in chunked"))),
        ]
        for (codings, want) in cases {
            let raw = Array("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \(codings)\r\n\r\n".utf8)
            raw.withUnsafeBytes { bytes in
                guard case .complete(let info) = HeadParser().parseRequestInfo(bytes) else { return XCTFail(codings) }
                XCTAssertEqual(Framing.request(info), want, codings)
            }
        }
    }
}
