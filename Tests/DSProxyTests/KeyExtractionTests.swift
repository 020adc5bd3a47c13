import DSBalancer
import DSHTTP1
import DSHashing
import DSSystem
import XCTest

@testable import DSProxy

/// The key chain as the proxy applies it: `hashedKey` (hot path) and `key` (logs) agree, the
/// chain uses only the sources it names, and `random` is a 6-digit id hashed like `?id=`.
final class KeyExtractionTests: XCTestCase {
    private let peer = try! SocketAddress.parse("127.0.0.7:40000")
    private let snapshots = HashAlgorithm.allCases.map { algorithm in
        Snapshot(
            generation: 1, backends: (1...3).map { Backend(name: "server-\($0)", number: $0, host: "127.0.0.1", port: 9000) },
            algorithm: algorithm)
    }

    /// Parses `head` and hands `body` the head and its bytes.
    private func withHead<R>(_ head: String, _ body: (RequestHeadInfo, UnsafeRawBufferPointer) throws -> R) throws -> R {
        let bytes = Array(head.utf8)
        return try bytes.withUnsafeBytes { raw in
            guard case .complete(let info) = HeadParser().parseRequestInfo(raw) else {
                throw XCTSkip("test head does not parse: \(head.debugDescription)")
            }
            return try body(info, raw)
        }
    }

    private func hash(_ text: String, _ snapshot: Snapshot) -> UInt64 {
        Array(text.utf8).withUnsafeBytes { snapshot.key($0) }
    }

    /// The text `key` gives and the hash `hashedKey` gives, drawing the same random ids.
    private func keys(
        _ chain: String, _ head: String, peer: SocketAddress?, snapshot: Snapshot,
        seed: UInt64 = 7
    ) throws -> (text: String, hashed: UInt64) {
        let extractor = try KeyExtractor(parsing: chain)
        return try withHead(head) { info, raw in
            var forText = RandomRequestIDs(seed: seed)
            var forHash = RandomRequestIDs(seed: seed)
            let text = extractor.key(for: info, headBytes: raw, peer: peer, random: &forText)
            let clientKey = Array((peer?.host ?? "").utf8)
            let hashed = extractor.hashedKey(
                for: info, headBytes: raw, clientKey: clientKey[...], random: &forHash,
                snapshot: snapshot)
            return (text, hashed)
        }
    }

    func testBothExtractorsAgreeAndUseOnlyTheNamedSources() throws {
        let get = "GET /home HTTP/1.1\r\nHost: a\r\n\r\n"
        let withID = "GET /home?id=123456&x=1 HTTP/1.1\r\nHost: a\r\n\r\n"
        let withHeaderAndCookie =
            "GET /p/q?id=&z HTTP/1.1\r\nHost: a\r\nX-User: alice\r\nCookie: a=1; s=xyz\r\nCookie: t=\r\n\r\n"
        // (chain, head, peer, expected key text; nil: a random 6-digit id)
        let cases: [(String, String, SocketAddress?, String?)] = [
            ("query:id,random", withID, peer, "123456"),
            ("query:id,random", get, peer, nil),
            ("query:id,client-ip", get, peer, "127.0.0.7"),
            ("query:id,client-ip", withID, peer, "123456"),
            // Misses everywhere: the last source named decides, and a miss is the empty value.
            // The client address is not consulted when the chain does not name it.
            ("query:id", get, peer, ""),
            ("header:x-user", get, peer, ""),
            ("cookie:s", get, peer, ""),
            ("query:id,header:x-user", get, peer, ""),
            ("query:id,client-ip", get, nil, ""),
            // An empty value falls through, to the next source or, at the end, to the empty key.
            ("query:id,header:x-user", withHeaderAndCookie, peer, "alice"),
            ("query:id", withHeaderAndCookie, peer, ""),
            ("cookie:t,cookie:s", withHeaderAndCookie, peer, "xyz"),
            ("header:X-User,random", withHeaderAndCookie, peer, "alice"),
            ("path,random", withHeaderAndCookie, peer, "/p/q"),
            ("random,query:id", withID, peer, nil),
        ]
        for snapshot in snapshots {
            for (chain, head, peer, expected) in cases {
                let (text, hashed) = try keys(chain, head, peer: peer, snapshot: snapshot)
                let what = "\(chain) on \(head.prefix(while: { $0 != "\r" })) (\(snapshot.algorithm))"
                if let expected {
                    XCTAssertEqual(text, expected, what)
                } else {
                    XCTAssertEqual(text.utf8.count, 6, what)
                    XCTAssertTrue((100_000...999_999).contains(Int(text) ?? 0), "\(what): \(text)")
                }
                XCTAssertEqual(hashed, hash(text, snapshot), "\(what): hashedKey and key disagree")
            }
        }
    }

    /// `random` hashes its id exactly as a request carrying that id as `?id=` is hashed, and
    /// draws a fresh one per request.
    func testRandomIsHashedLikeAnIDParameter() throws {
        let extractor = try KeyExtractor(parsing: "query:id,random")
        let snapshot = snapshots.first { $0.algorithm == .assignment }!
        var random = RandomRequestIDs(seed: 42)
        var seen: Set<String> = []
        for _ in 0..<1_000 {
            var replay = random
            let id = try withHead("GET /home HTTP/1.1\r\nHost: a\r\n\r\n") { info, raw in
                extractor.key(for: info, headBytes: raw, peer: peer, random: &replay)
            }
            let keyless = try withHead("GET /home HTTP/1.1\r\nHost: a\r\n\r\n") { info, raw in
                extractor.hashedKey(for: info, headBytes: raw, clientKey: [], random: &random, snapshot: snapshot)
            }
            let withID = try withHead("GET /home?id=\(id) HTTP/1.1\r\nHost: a\r\n\r\n") { info, raw in
                extractor.hashedKey(for: info, headBytes: raw, clientKey: [], random: &random, snapshot: snapshot)
            }
            XCTAssertEqual(keyless, withID, "id \(id)")
            seen.insert(id)
        }
        XCTAssertGreaterThan(seen.count, 990, "ids repeat far more than 1,000 draws from 900,000 would")
    }

    /// `header:host` routes an absolute-form request by its target's authority: the Host field
    /// the replica gets (the client's own Host field is replaced by it on the way).
    func testHostKeyOfAnAbsoluteFormRequestIsItsAuthority() throws {
        let snapshot = snapshots[0]
        let absolute = try keys(
            "header:host", "GET http://b.test:81/x HTTP/1.1\r\nHost: a.test\r\n\r\n", peer: nil, snapshot: snapshot)
        let origin = try keys("header:host", "GET /x HTTP/1.1\r\nHost: b.test:81\r\n\r\n", peer: nil, snapshot: snapshot)
        XCTAssertEqual(absolute.text, "b.test:81")
        XCTAssertEqual(absolute.hashed, origin.hashed)
        XCTAssertEqual(
            try keys("header:host", "GET /x HTTP/1.1\r\nHost: a.test\r\n\r\n", peer: nil, snapshot: snapshot).text, "a.test")
    }
}
