import DSHTTP1
import XCTest

@testable import DSProxy

/// Every transition of `ClientMachine.State` and `ExchangeMachine.State` as one table each:
/// the state a row starts in (reached by the events that lead there), the event, and the state
/// it must end in. A transition added to a machine without a row here is a gap in this table,
/// not in a scattered test; the behaviour around each (deadlines, slots, actions) is asserted by
/// ClientMachineTests and ExchangeMachineTests.
final class MachineTransitionTests: XCTestCase {
    typealias Client = ClientMachine
    typealias ClientState = ClientMachine.State

    /// The states a client row starts from, each with the events that lead there.
    enum Start: String, CaseIterable {
        case fresh, afterRequest, queued, readingAdminBody, awaitingAdmin, proxying, drainingProxying
        case tunneling, streaming, closing

        var events: [Client.Event] {
            switch self {
            case .fresh: return []
            case .afterRequest: return Start.proxying.events + [.exchangeEnded(close: false)]
            case .queued: return Start.afterRequest.events + [.headWanted(buffered: true, pipelineOn: true)]
            case .readingAdminBody: return [.headParsed, .adminRequest(length: 10)]
            case .awaitingAdmin: return Start.readingAdminBody.events + [.adminSubmitted]
            case .proxying: return [.headParsed, .proxyStarted]
            case .drainingProxying: return Start.proxying.events + [.drain(buffered: false)]
            case .tunneling: return Start.proxying.events + [.upgraded]
            case .streaming: return Start.awaitingAdmin.events + [.adminAnswered(stream: true, close: false)]
            case .closing: return Start.proxying.events + [.exchangeEnded(close: true)]
            }
        }

        func machine() -> Client {
            var machine = Client()
            for event in events { _ = machine.handle(event) }
            return machine
        }
    }

    struct ClientRow {
        let from: Start
        let event: Client.Event
        let to: ClientState
        let line: UInt
    }

    static func row(_ from: Start, _ event: Client.Event, _ to: ClientState, line: UInt = #line) -> ClientRow {
        ClientRow(from: from, event: event, to: to, line: line)
    }

    static let fresh = ClientState.readingHead(afterRequest: false, queued: false)
    static let pipelined = ClientState.readingHead(afterRequest: true, queued: false)

    // One row per transition, laid out by hand; swift-format would break each call apart.
    // swift-format-ignore
    static let clientRows: [ClientRow] = [
        // readingHead
        row(.fresh, .headWanted(buffered: false, pipelineOn: true), fresh),
        row(.afterRequest, .headWanted(buffered: true, pipelineOn: true), .readingHead(afterRequest: true, queued: true)),
        row(.afterRequest, .headWanted(buffered: false, pipelineOn: true), fresh),
        row(.afterRequest, .headWanted(buffered: true, pipelineOn: false), fresh),
        row(.queued, .headWanted(buffered: true, pipelineOn: true), .readingHead(afterRequest: true, queued: true)),
        row(.queued, .pipelineTurn, fresh),
        row(.fresh, .headQuiet(buffered: true), fresh),
        row(.fresh, .headParsed, fresh),
        row(.fresh, .adminRequest(length: 1), .readingAdminBody(length: 1)),
        row(.fresh, .proxyStarted, .proxying),
        row(.fresh, .answered(close: false), fresh),
        row(.fresh, .answered(close: true), .closing),
        row(.fresh, .deadlineExpired(exchangeAnswerable: false), fresh),
        row(.afterRequest, .drain(buffered: false), .closing),
        row(.afterRequest, .drain(buffered: true), pipelined),
        row(.fresh, .closed, .closed),
        // readingAdminBody
        row(.readingAdminBody, .bodyBytes, .readingAdminBody(length: 10)),
        row(.readingAdminBody, .adminSubmitted, .awaitingAdmin),
        row(.readingAdminBody, .closed, .closed),
        // awaitingAdmin
        row(.awaitingAdmin, .adminAnswered(stream: false, close: false), pipelined),
        row(.awaitingAdmin, .adminAnswered(stream: false, close: true), .closing),
        row(.awaitingAdmin, .adminAnswered(stream: true, close: false), .streaming),
        row(.awaitingAdmin, .closed, .closed),
        // proxying
        row(.proxying, .bodyBytes, .proxying),
        row(.proxying, .bodyQuiet, .proxying),
        row(.proxying, .bodyComplete, .proxying),
        row(.proxying, .exchangeEnded(close: false), pipelined),
        row(.proxying, .exchangeEnded(close: true), .closing),
        row(.proxying, .answered(close: false), pipelined),
        row(.proxying, .answered(close: true), .closing),
        row(.proxying, .upgraded, .tunneling),
        row(.proxying, .drain(buffered: false), .proxying),
        row(.drainingProxying, .exchangeEnded(close: false), .closing),
        row(.proxying, .writeBlocked, .proxying),
        row(.proxying, .closed, .closed),
        // tunneling, streaming, closing
        row(.tunneling, .drain(buffered: false), .tunneling),
        row(.tunneling, .closed, .closed),
        row(.streaming, .drain(buffered: false), .streaming),
        row(.streaming, .adminAnswered(stream: true, close: false), .streaming),
        row(.streaming, .closed, .closed),
        row(.closing, .closed, .closed),
    ]

    func testEveryClientTransition() {
        for row in Self.clientRows {
            var machine = row.from.machine()
            _ = machine.handle(row.event)
            XCTAssertEqual(machine.state, row.to, "\(row.from) --\(row.event)-->", line: row.line)
        }
    }

    /// The deadlines that move a client to another state (the wait is set up by the event
    /// that arms it, as the shell's reads do).
    func testEveryClientDeadlineTransition() {
        // A head that trickles: 408, closing.
        var head = Start.fresh.machine()
        _ = head.handle(.headQuiet(buffered: true))
        _ = head.handle(.deadlineExpired(exchangeAnswerable: false))
        XCTAssertEqual(head.state, .closing)
        // Idle keep-alive: closed without an answer (the shell closes; the state stays until it does).
        var idle = Start.afterRequest.machine()
        XCTAssertEqual(idle.handle(.headQuiet(buffered: false)).arm, .idle)
        XCTAssertTrue(idle.handle(.deadlineExpired(exchangeAnswerable: false)).contains(.close))
        // A body that stalls before the response began: 408, closing.
        var stalled = Start.proxying.machine()
        _ = stalled.handle(.bodyQuiet)
        _ = stalled.handle(.deadlineExpired(exchangeAnswerable: true))
        XCTAssertEqual(stalled.state, .closing)
        // After the response began: cut (close), no state change of its own.
        var cut = Start.proxying.machine()
        _ = cut.handle(.bodyQuiet)
        XCTAssertTrue(cut.handle(.deadlineExpired(exchangeAnswerable: false)).contains(.close))
        XCTAssertEqual(cut.state, .proxying)
    }

    /// Every start state is reached by its events (the table's premises hold).
    func testEveryStartStateIsWhatItsName() {
        let expected: [Start: ClientState] = [
            .fresh: Self.fresh, .afterRequest: Self.pipelined, .queued: .readingHead(afterRequest: true, queued: true),
            .readingAdminBody: .readingAdminBody(length: 10), .awaitingAdmin: .awaitingAdmin, .proxying: .proxying,
            .drainingProxying: .proxying, .tunneling: .tunneling, .streaming: .streaming, .closing: .closing,
        ]
        for start in Start.allCases {
            XCTAssertEqual(start.machine().state, expected[start], start.rawValue)
        }
    }

    // MARK: the exchange

    typealias Exchange = ExchangeMachine

    func exchange(_ events: [Exchange.Event]) -> Exchange {
        var machine = Exchange()
        for event in events { _ = machine.handle(event) }
        return machine
    }

    func testEveryExchangeTransition() {
        let cl = BodyFraming.contentLength(5)
        let streaming = Exchange.State.streaming(framing: cl, remaining: 5, keepsConnection: true)
        let connecting: [Exchange.Event] = [.begin, .attached(connected: false)]
        let sending: [Exchange.Event] = [.begin, .attached(connected: true)]
        let awaiting = sending + [.headSent]
        let responding = awaiting + [.responseHead(framing: cl, keepsConnection: true)]
        let rows: [(from: [Exchange.Event], event: Exchange.Event, to: Exchange.State, line: UInt)] = [
            ([], .begin, .idle, #line),
            ([.begin], .attached(connected: false), .connecting, #line),
            ([.begin], .attached(connected: true), .sending, #line),
            (connecting, .connected, .sending, #line),
            (connecting, .headSent, .connecting, #line),
            (connecting, .attached(connected: true), .sending, #line),
            (sending, .connected, .sending, #line),
            (sending, .headSent, .awaitingResponse, #line),
            (sending, .attached(connected: false), .connecting, #line),
            (sending, .responseHead(framing: cl, keepsConnection: true), streaming, #line),
            (awaiting, .headSent, .awaitingResponse, #line),
            (awaiting, .attached(connected: true), .sending, #line),
            (awaiting, .responseHead(framing: cl, keepsConnection: true), streaming, #line),
            (awaiting, .deadlineExpired, .awaitingResponse, #line),
            (responding, .deadlineExpired, streaming, #line),
            (responding, .end, .ended, #line),
            ([.begin], .end, .ended, #line),
            (connecting, .end, .ended, #line),
            (sending, .end, .ended, #line),
            (awaiting, .end, .ended, #line),
            (responding + [.end], .begin, .idle, #line),
            (responding + [.end], .deadlineExpired, .ended, #line),
        ]
        for row in rows {
            var machine = exchange(row.from)
            _ = machine.handle(row.event)
            XCTAssertEqual(machine.state, row.to, "\(row.from) --\(row.event)-->", line: row.line)
        }
        // A Content-Length body counted down stays in streaming.
        var body = exchange(responding)
        body.responseBodyMoved(5)
        XCTAssertEqual(body.state, .streaming(framing: cl, remaining: 0, keepsConnection: true))
    }
}
