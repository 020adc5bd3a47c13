import DSHTTP1
import SmugglingCorpus
import XCTest

@testable import DSProxy

/// Every response row of the framing and smuggling corpus (`ResponseCorpus`, which
/// IntegrationTests.SmugglingCorpusTests has a fake replica send to a real ds-lb) through what
/// the exchange decides on a replica's bytes, without a socket: the worker's response parser
/// with the proxy's limits, interim responses, the 101 rule (`ExchangeEnding.acceptsUpgrade`),
/// `Framing.response`, the exchange's machine and the chunked scanner on the body. Each row's
/// status is asserted: 502 is the `ProxyError.invalidResponse` the exchange fails with (it
/// closes the replica's connection with it), 200 a response that goes on to the client.
final class ResponseCorpusMachineTests: XCTestCase {
    static let corpus = ResponseCorpus.rows

    /// What the exchange makes of `bytes` as the answer to a plain GET: the invalid response it
    /// fails with, or nil when the response goes on to the client whole.
    func verdict(of bytes: [UInt8], thenClose: Bool) -> ProxyError.InvalidResponse? {
        let parser = HeadParser(limits: ProxyConfig(adminAllow: []).limits)
        var machine = ExchangeMachine()
        _ = machine.handle(.begin)
        _ = machine.handle(.attached(connected: true))
        _ = machine.handle(.headSent)
        return bytes.withUnsafeBytes { buffer -> ProxyError.InvalidResponse? in
            var start = 0
            while true {
                let head: ResponseHeadInfo
                switch parser.parseResponseInfo(UnsafeRawBufferPointer(rebasing: buffer[start...]), from: 0) {
                case .incomplete:
                    // Only a replica that closed leaves a head unfinished for good.
                    return thenClose ? .incompleteHead : .invalidHead("no complete head and no close")
                case .failed(let error):
                    return .invalidHead(error.message)
                case .complete(let complete):
                    head = complete
                }
                if head.status == 101 {
                    guard ExchangeEnding.acceptsUpgrade(requested: false, requestBodyLeft: false) else {
                        return .unrequestedUpgrade
                    }
                    return nil
                }
                if (100..<200).contains(head.status) {
                    start += head.length
                    continue
                }
                let framing: BodyFraming
                switch Framing.response(head, requestIsHead: false) {
                case .failure(let error): return .invalidHead(error.message)
                case .success(let decided): framing = decided
                }
                XCTAssertEqual(
                    machine.handle(.responseHead(framing: framing, keepsConnection: head.keepsConnection)), .clearDeadline)
                XCTAssertTrue(machine.responding)
                let body = UnsafeRawBufferPointer(rebasing: buffer[(start + head.length)...])
                guard case .chunked = framing else { return nil }
                var scanner = ChunkedScanner()
                do {
                    switch try scanner.scan(body) {
                    case .needMore: return .invalidChunkedFraming("the chunked body does not end")
                    case .complete: return nil
                    }
                } catch {
                    return .invalidChunkedFraming((error as? HTTPParseError)?.message ?? "\(error)")
                }
            }
        }
    }

    func testEveryResponseRowGetsItsStatus() {
        XCTAssertEqual(Self.corpus.count, 57, "rows added to the corpus are counted here too")
        XCTAssertEqual(Set(Self.corpus.map(\.name)).count, Self.corpus.count, "row names must be unique")
        for row in Self.corpus {
            let invalid = verdict(of: row.response, thenClose: row.thenClose)
            let status = invalid.map { ProxyError.invalidResponse(replica: "r", $0).status.code } ?? 200
            XCTAssertEqual(status, row.status, "\(row.name): \(invalid.map { "\($0)" } ?? "accepted")", line: row.line)
        }
    }
}
