import XCTest

@testable import DSProxy

/// The client connection's lifecycle without a socket: every state of `ClientMachine`, the
/// events that move it, and the actions it asks its shell for (deadlines, the pipeline queue,
/// closing, the drain).
final class ClientMachineTests: XCTestCase {
    typealias Machine = ClientMachine
    typealias Actions = ClientMachine.Actions

    /// A connection that has served one keep-alive request and waits for the next.
    func served() -> Machine {
        var machine = Machine()
        _ = machine.handle(.headWanted(buffered: true, pipelineOn: true))
        _ = machine.handle(.headParsed)
        _ = machine.handle(.proxyStarted)
        XCTAssertEqual(machine.handle(.exchangeEnded(close: false)), .none)
        return machine
    }

    /// `machine` with a request head parsed and sent to a replica.
    func proxying(_ machine: Machine = Machine()) -> Machine {
        var machine = machine
        _ = machine.handle(.headParsed)
        _ = machine.handle(.proxyStarted)
        return machine
    }

    func isReadingHead(_ machine: Machine, afterRequest: Bool? = nil) -> Bool {
        guard case .readingHead(let after, _) = machine.state else { return false }
        return afterRequest.map { $0 == after } ?? true
    }

    func isClosing(_ machine: Machine) -> Bool {
        if case .closing = machine.state { return true }
        return false
    }

    // MARK: one request after another

    func testAKeepAliveRequestGoesBackToReadingHeads() {
        var machine = Machine()
        XCTAssertTrue(isReadingHead(machine, afterRequest: false))
        XCTAssertEqual(machine.handle(.headWanted(buffered: false, pipelineOn: true)), Actions(.readHead))
        XCTAssertEqual(machine.handle(.headParsed), .none)
        XCTAssertTrue(machine.begun)
        XCTAssertEqual(machine.handle(.proxyStarted), .none)
        guard case .proxying = machine.state else { return XCTFail("\(machine.state)") }
        XCTAssertEqual(machine.handle(.exchangeEnded(close: false)), .none)
        XCTAssertTrue(isReadingHead(machine, afterRequest: true))
        // Nothing buffered: the next head is read at once, and nothing is pipelined any more.
        XCTAssertEqual(machine.handle(.headWanted(buffered: false, pipelineOn: true)), Actions(.readHead))
        XCTAssertTrue(isReadingHead(machine, afterRequest: false))
    }

    func testAResponseThatEndsTheConnectionClosesItOnceFlushed() {
        var machine = proxying()
        XCTAssertEqual(machine.handle(.exchangeEnded(close: true)), Actions(.closeWhenFlushed))
        XCTAssertTrue(isClosing(machine))
    }

    func testOurOwnAnswerEitherKeepsTheConnectionOrClosesItAndDropsTheUnreadBytes() {
        var keep = Machine()
        _ = keep.handle(.headParsed)
        XCTAssertEqual(keep.handle(.answered(close: false)), .none)
        // Refused while reading its head: not a pipelined request's end, nothing queued after it.
        XCTAssertTrue(isReadingHead(keep, afterRequest: false))

        var close = Machine()
        _ = close.handle(.headParsed)
        XCTAssertEqual(close.handle(.answered(close: true)), Actions([.closeWhenFlushed, .clearInput]))
        XCTAssertTrue(isClosing(close))
    }

    func testTheEndOfTheClientsStreamClosesTheConnection() {
        var machine = Machine()
        XCTAssertEqual(machine.handle(.clientEOF), Actions(.close))
    }

    func testAnUpgradeMakesATunnelWithoutAClientDeadline() {
        var machine = proxying()
        _ = machine.handle(.bodyQuiet)
        XCTAssertEqual(machine.wait, .body)
        XCTAssertEqual(machine.handle(.upgraded), .none)
        guard case .tunneling = machine.state else { return XCTFail("\(machine.state)") }
        XCTAssertEqual(machine.wait, .none)
    }

    // MARK: admin requests

    func testAnAdminRequestReadsItsBodyWaitsForTheSupervisorAndAnswers() {
        var machine = Machine()
        _ = machine.handle(.headParsed)
        XCTAssertEqual(machine.handle(.adminRequest(length: 5)), .none)
        guard case .readingAdminBody(let length) = machine.state else { return XCTFail("\(machine.state)") }
        XCTAssertEqual(length, 5)
        XCTAssertEqual(machine.handle(.bodyQuiet), Actions(arm: .body))
        XCTAssertEqual(machine.handle(.adminSubmitted), .none)
        guard case .awaitingAdmin = machine.state else { return XCTFail("\(machine.state)") }
        XCTAssertEqual(machine.wait, .none, "the supervisor's answer has no client deadline")
        XCTAssertEqual(machine.handle(.adminAnswered(stream: false, close: false)), .none)
        XCTAssertTrue(isReadingHead(machine, afterRequest: true))
        // A late answer (the connection moved on) is ignored.
        XCTAssertEqual(machine.handle(.adminAnswered(stream: false, close: true)), .none)
        XCTAssertTrue(isReadingHead(machine))
    }

    func testAnAdminAnswerThatClosesAndAStreamedOne() {
        var closing = Machine()
        _ = closing.handle(.headParsed)
        _ = closing.handle(.adminSubmitted)
        XCTAssertEqual(closing.handle(.adminAnswered(stream: false, close: true)), Actions(.closeWhenFlushed))
        XCTAssertTrue(isClosing(closing))

        var streaming = Machine()
        _ = streaming.handle(.headParsed)
        _ = streaming.handle(.adminSubmitted)
        XCTAssertEqual(streaming.handle(.adminAnswered(stream: true, close: false)), .none)
        guard case .streaming = streaming.state else { return XCTFail("\(streaming.state)") }
        // SIGTERM: what was sent goes out, then the stream ends.
        XCTAssertEqual(streaming.handle(.drain(buffered: false)), Actions(.endStream))
    }

    func testAStreamStartedWhileDrainingEndsAtOnce() {
        var machine = Machine()
        _ = machine.handle(.headParsed)
        _ = machine.handle(.adminSubmitted)
        _ = machine.handle(.drain(buffered: false))
        XCTAssertEqual(machine.handle(.adminAnswered(stream: true, close: false)), Actions(.endStream))
    }

    // MARK: the pipeline queue

    func testAPipelinedRequestQueuesOnceWaitsForItsTurnAndHoldsASlotUntilItEnds() {
        var machine = served()
        XCTAssertEqual(machine.handle(.headWanted(buffered: true, pipelineOn: true)), Actions(.queueForTurn))
        XCTAssertEqual(machine.handle(.headWanted(buffered: true, pipelineOn: true)), .none, "queued once")
        guard case .readingHead(true, true) = machine.state else { return XCTFail("\(machine.state)") }
        XCTAssertEqual(machine.handle(.pipelineTurn), .none)
        XCTAssertTrue(machine.holdsSlot)
        XCTAssertEqual(machine.handle(.headWanted(buffered: true, pipelineOn: true)), Actions(.readHead))
        _ = machine.handle(.headParsed)
        _ = machine.handle(.proxyStarted)
        XCTAssertEqual(machine.handle(.exchangeEnded(close: false)), Actions(.releaseSlot))
        XCTAssertFalse(machine.holdsSlot)
        XCTAssertTrue(isReadingHead(machine, afterRequest: true))
    }

    func testWithoutAQueuePipelinedRequestsAreServedAsTheyCame() {
        var machine = served()
        XCTAssertEqual(machine.handle(.headWanted(buffered: true, pipelineOn: false)), Actions(.readHead))
        XCTAssertTrue(isReadingHead(machine, afterRequest: false))
    }

    func testAnIncompletePipelinedHeadGivesItsSlotBack() {
        var machine = served()
        _ = machine.handle(.headWanted(buffered: true, pipelineOn: true))
        _ = machine.handle(.pipelineTurn)
        XCTAssertEqual(machine.handle(.headQuiet(buffered: true)), Actions(.releaseSlot, arm: .head))
        XCTAssertFalse(machine.holdsSlot)
    }

    func testAClientThatStopsReadingGivesItsSlotBack() {
        var machine = served()
        _ = machine.handle(.headWanted(buffered: true, pipelineOn: true))
        _ = machine.handle(.pipelineTurn)
        _ = machine.handle(.headParsed)
        _ = machine.handle(.proxyStarted)
        XCTAssertEqual(machine.handle(.writeBlocked), Actions(.releaseSlot))
        XCTAssertEqual(machine.handle(.writeBlocked), .none, "given back once")
        XCTAssertEqual(machine.handle(.exchangeEnded(close: false)), .none)
    }

    func testClosingGivesTheSlotBack() {
        var machine = served()
        _ = machine.handle(.pipelineTurn)
        XCTAssertEqual(machine.handle(.closed), Actions(.releaseSlot))
        XCTAssertTrue(machine.isClosed)
    }

    func testATunnelOrAStreamEndsTheRequestAndItsSlot() {
        var tunnel = served()
        _ = tunnel.handle(.pipelineTurn)
        _ = tunnel.handle(.proxyStarted)
        XCTAssertEqual(tunnel.handle(.upgraded), Actions(.releaseSlot))

        var stream = served()
        _ = stream.handle(.pipelineTurn)
        _ = stream.handle(.adminSubmitted)
        XCTAssertEqual(stream.handle(.adminAnswered(stream: true, close: false)), Actions(.releaseSlot))
    }

    // MARK: client deadlines

    func testASilentNewConnectionGetsTheHeadDeadlineAndIsClosedWithoutAnAnswer() {
        var machine = Machine()
        XCTAssertEqual(machine.handle(.headQuiet(buffered: false)), Actions(.releaseInput, arm: .firstByte))
        XCTAssertEqual(machine.handle(.headQuiet(buffered: false)), Actions(.releaseInput), "not moved")
        XCTAssertEqual(machine.handle(.deadlineExpired(exchangeAnswerable: false)), Actions(.close))
    }

    func testAnIdleKeepAliveConnectionIsClosedWithoutAnAnswer() {
        var machine = served()
        XCTAssertEqual(machine.handle(.headQuiet(buffered: false)), Actions(.releaseInput, arm: .idle))
        XCTAssertEqual(machine.wait, .idle)
        XCTAssertEqual(machine.handle(.deadlineExpired(exchangeAnswerable: false)), Actions(.close))
    }

    func testAHeadThatTricklesGetsOneDeadlineAnd408() {
        var machine = served()
        _ = machine.handle(.headQuiet(buffered: false))
        // The first bytes of a head: the (earlier) head deadline replaces the idle one, once.
        XCTAssertEqual(machine.handle(.headQuiet(buffered: true)), Actions(arm: .head))
        XCTAssertEqual(machine.handle(.headQuiet(buffered: true)), .none)
        XCTAssertEqual(
            machine.handle(.deadlineExpired(exchangeAnswerable: false)),
            Actions([.closeWhenFlushed, .clearInput], refuse: .headTimeout))
        XCTAssertTrue(isClosing(machine))
        XCTAssertEqual(machine.wait, .none)
    }

    func testEveryBodyByteMovesTheBodyDeadlineAndTheWholeBodyEndsIt() {
        var machine = proxying()
        XCTAssertEqual(machine.handle(.bodyQuiet), Actions(arm: .body))
        XCTAssertEqual(machine.handle(.bodyQuiet), .none, "a read that would block does not move it")
        XCTAssertEqual(machine.handle(.bodyBytes), Actions(arm: .body))
        XCTAssertEqual(machine.handle(.bodyBytes), Actions(arm: .body))
        XCTAssertEqual(machine.handle(.bodyComplete), .none)
        XCTAssertEqual(machine.wait, .none)
    }

    func testAStalledBodyIs408WhileTheResponseHasNotBegun() {
        var machine = served()
        _ = machine.handle(.pipelineTurn)
        machine = proxying(machine)
        _ = machine.handle(.bodyQuiet)
        XCTAssertEqual(
            machine.handle(.deadlineExpired(exchangeAnswerable: true)),
            Actions([.releaseSlot, .abandonExchange, .closeWhenFlushed, .clearInput], refuse: .bodyStalled))
        XCTAssertTrue(isClosing(machine))
    }

    func testAStalledBodyAfterTheResponseBeganCutsTheConnection() {
        var machine = proxying()
        _ = machine.handle(.bodyQuiet)
        XCTAssertEqual(machine.handle(.deadlineExpired(exchangeAnswerable: false)), Actions(.close))
    }

    func testAnAdminBodyThatStallsCutsTheConnection() {
        var machine = Machine()
        _ = machine.handle(.headParsed)
        _ = machine.handle(.adminRequest(length: 9))
        _ = machine.handle(.bodyBytes)
        XCTAssertEqual(machine.handle(.deadlineExpired(exchangeAnswerable: true)), Actions(.close))
    }

    func testADeadlineWithNothingAwaitedDoesNothing() {
        var machine = Machine()
        XCTAssertEqual(machine.handle(.deadlineExpired(exchangeAnswerable: false)), .none)
    }

    // MARK: drain (SIGTERM)

    func testDrainClosesAnIdleConnectionAtOnce() {
        var machine = served()
        XCTAssertEqual(machine.handle(.drain(buffered: false)), Actions(.closeWhenFlushed))
        XCTAssertTrue(isClosing(machine))
    }

    func testDrainLetsAFreshConnectionsFirstRequestBeAnsweredWithClose() {
        var machine = Machine()
        XCTAssertEqual(machine.handle(.drain(buffered: false)), .none, "its request may still be on its way")
        _ = machine.handle(.headParsed)
        // Our own answer, as the replica's, says Connection: close and ends the connection.
        XCTAssertEqual(machine.handle(.answered(close: false)), Actions([.closeWhenFlushed, .clearInput]))
    }

    func testDrainLetsTheRequestInProgressFinishThenCloses() {
        var machine = served()
        XCTAssertEqual(machine.handle(.drain(buffered: true)), .none, "a buffered request is answered")
        _ = machine.handle(.headParsed)
        _ = machine.handle(.proxyStarted)
        XCTAssertEqual(machine.handle(.drain(buffered: false)), .none)
        XCTAssertEqual(machine.handle(.exchangeEnded(close: false)), Actions(.closeWhenFlushed))
        XCTAssertTrue(isClosing(machine))
    }

    func testDrainLeavesATunnelToItsEnds() {
        var machine = proxying()
        _ = machine.handle(.upgraded)
        XCTAssertEqual(machine.handle(.drain(buffered: false)), .none)
        guard case .tunneling = machine.state else { return XCTFail("\(machine.state)") }
    }

    // MARK: bookkeeping

    func testEveryStateChangeIsCountedForTheDriveLoop() {
        var machine = Machine()
        let start = machine.transitions
        _ = machine.handle(.headParsed)
        XCTAssertEqual(machine.transitions, start, "no state change")
        _ = machine.handle(.proxyStarted)
        _ = machine.handle(.exchangeEnded(close: false))
        XCTAssertEqual(machine.transitions, start + 2)
    }
}
