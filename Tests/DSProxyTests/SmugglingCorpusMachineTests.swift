import DSHTTP1
import Foundation
import SmugglingCorpus
import XCTest

@testable import DSProxy

/// Every request row of the framing and smuggling corpus (`RequestCorpus`, which
/// IntegrationTests.SmugglingCorpusTests sends to a real ds-lb) through what the connection decides before and while it
/// reads a request, without a socket: the worker's head parser with the proxy's limits,
/// `ClientMachine.admit`, the admin caps (`ClientMachine.admitAdmin`), and the chunked body's
/// scanner as the exchange sets it up (`--max-body-size 1M`, as the end-to-end run). Each row's
/// status is asserted; 200 stands for a request that goes on to the replica whole.
final class SmugglingCorpusMachineTests: XCTestCase {
    static let maxBody: UInt64 = 1 << 20
    static let adminPaths: Set<String> = ["/add", "/rm", "/rep"]

    static let corpus = RequestCorpus.rows

    /// The status the client gets for `bytes`: the parser's refusal, admission's, the admin
    /// caps', or the chunked scanner's on the body; 200 when the request reaches the replica.
    func status(of bytes: [UInt8]) -> Int {
        let parser = HeadParser(limits: ProxyConfig(adminAllow: []).limits)
        return bytes.withUnsafeBytes { buffer -> Int in
            let head: RequestHeadInfo
            switch parser.parseRequestInfo(buffer, from: 0) {
            case .incomplete: return 0
            case .failed(let error): return ProxyError.badRequest(error).status.code
            case .complete(let complete): head = complete
            }
            switch ClientMachine.admit(head, maxBodyBytes: Self.maxBody) {
            case .refuse(let error, _, _):
                return error.status.code
            case .proceed(let framing, let length):
                let path = String(decoding: UnsafeRawBufferPointer(rebasing: buffer[head.pathRange]), as: UTF8.self)
                if Self.adminPaths.contains(path) {
                    let refusal = ClientMachine.admitAdmin(
                        framing: framing, bodyLength: length, maxBody: ProxyConfig(adminAllow: []).maxAdminBody)
                    return refusal?.status.code ?? 200
                }
                guard length == .max else { return 200 }
                var scanner = ChunkedScanner(maxDataBytes: Self.maxBody)
                let body = UnsafeRawBufferPointer(rebasing: buffer[head.length...])
                do {
                    switch try scanner.scan(body) {
                    case .needMore: return 200 // the rest is still on its way; nothing was wrong
                    case .complete: return 200
                    }
                } catch let error as HTTPParseError {
                    return ProxyError.badRequest(error).status.code
                } catch {
                    return -1
                }
            }
        }
    }

    /// The rows here are the end-to-end corpus's, name for name and in its order: a row added
    /// there and not here fails this test.
    func testEveryRequestRowGetsItsStatus() {
        XCTAssertEqual(Self.corpus.count, 92, "the end-to-end corpus has 92 request rows")
        XCTAssertEqual(Set(Self.corpus.map(\.name)).count, Self.corpus.count, "row names must be unique")
        for row in Self.corpus {
            XCTAssertEqual(status(of: row.request), row.status, row.name, line: row.line)
        }
    }
}
