import DSHTTP1
import DSReactor
import Synchronization

/// Counters the main thread reads while the load threads run (the progress bar).
final class LoadProgress: Sendable {
    let completed = Atomic<Int>(0)
    let failed = Atomic<Int>(0)
    /// A moment (monotonic ns) another thread marks, e.g. a replica kill: each replica's first
    /// answer to a request *sent* after it is recorded (`LoadStats.firstReplyAfterMark`). Sent
    /// after, not completed after, so answers delayed by scheduling do not count.
    let mark = Atomic<UInt64>(0)
}

/// One load thread: its epoll loop, its share of the connections and of the requests (or of the
/// rate), and its stats. Loop thread only, except `init`, which runs on that thread too.
///
/// Closed loop (no `--rate`): every idle connection sends its next request at once.
/// Open loop (`--rate`): a timer releases intended send times t₀ + k/rate into a queue; an idle
/// connection takes the oldest one. Latency counts from that intended time, so a stalled server
/// shows up as the queueing delay its clients would see, not as fewer, faster samples
/// (coordinated omission, Gil Tene; wrk2's design).
final class LoadWorker {
    let plan: LoadPlan
    let loop: EventLoop
    let parser = HeadParser()
    private(set) var stats = LoadStats()
    private let progress: LoadProgress
    private let runStart: UInt64
    private var connections: [LoadConnection] = []
    private var idle: [LoadConnection] = []
    private var ids: IDGenerator
    private let prefix: [UInt8]
    private let suffix: [UInt8]
    private let sendsID: Bool
    private var inFlight = 0
    /// Closed loop: requests this thread may still start (nil: until the deadline).
    private var budget: Int?
    private let deadline: UInt64?
    /// Open loop: intended send times released but not yet sent (a FIFO: `pending[pendingHead...]`).
    private var pending: [UInt64] = []
    private var pendingHead = 0
    private var generated = 0
    private var toGenerate = 0
    private var interval: Double = 0
    private var openStart: UInt64 = 0
    private var connectFailuresInARow = 0
    private(set) var firstSendAt: UInt64 = 0
    private(set) var lastSendAt: UInt64 = 0
    private(set) var sent = 0
    private(set) var finishedAt: UInt64 = 0
    private var done = false
    private let onDone: () -> Void

    init(
        plan: LoadPlan, thread: Int, runStart: UInt64, zipf: ZipfTable?, progress: LoadProgress,
        loop: EventLoop, onDone: @escaping () -> Void
    ) {
        self.plan = plan
        self.loop = loop
        self.progress = progress
        self.runStart = runStart
        self.onDone = onDone
        ids = IDGenerator(spec: plan.ids, seed: plan.seed, thread: thread, threads: plan.threads, zipf: zipf)
        sendsID = plan.ids != .fixed
        let template = plan.target.template(forID: sendsID)
        prefix = Array(template.prefix.utf8)
        suffix = Array(template.suffix.utf8)
        deadline = plan.durationNanoseconds.map { runStart + $0 }
        if let rate = plan.rate {
            let threadRate = rate / Double(plan.threads)
            interval = 1e9 / threadRate
            // Threads' schedules are offset by a fraction of the interval so that together they
            // send evenly spaced requests, not bursts of T at once.
            openStart = runStart + UInt64(interval * Double(thread) / Double(plan.threads))
            if let requests = plan.requests {
                toGenerate = plan.share(of: requests, thread: thread)
            } else {
                toGenerate = Int(Double(plan.durationNanoseconds!) / interval)
            }
        } else {
            budget = plan.requests.map { plan.share(of: $0, thread: thread) }
        }
        let count = plan.share(of: plan.concurrency, thread: thread)
        for _ in 0..<count { connections.append(LoadConnection(worker: self)) }
    }

    /// Opens the connections and starts the clock.
    func start() {
        assert(loop.isInLoop)
        for connection in connections { connection.connect() }
        if plan.rate != nil { tick() }
        sweep()
        checkDone()
    }

    // MARK: issuing

    private var isOpenLoop: Bool { plan.rate != nil }

    private func mayIssue(now: UInt64) -> Bool {
        if let budget, budget <= 0 { return false }
        if let deadline, now >= deadline { return false }
        return true
    }

    private var moreToCome: Bool {
        if isOpenLoop { return generated < toGenerate || pendingHead < pending.count }
        return mayIssue(now: Clock.now())
    }

    private func dispatch() {
        if isOpenLoop {
            while pendingHead < pending.count, let connection = idle.popLast() {
                let intended = pending[pendingHead]
                pendingHead += 1
                issue(on: connection, intendedAt: intended)
            }
            if pendingHead > 4096 && pendingHead * 2 > pending.count {
                pending.removeFirst(pendingHead)
                pendingHead = 0
            }
        } else {
            while !idle.isEmpty {
                let now = Clock.now()
                guard mayIssue(now: now) else { break }
                if budget != nil { budget! -= 1 }
                issue(on: idle.removeLast(), intendedAt: now)
            }
        }
        checkDone()
    }

    private func issue(on connection: LoadConnection, intendedAt: UInt64) {
        inFlight += 1
        sent += 1
        let now = Clock.now()
        if firstSendAt == 0 { firstSendAt = now }
        lastSendAt = now
        connection.send(prefix: prefix, id: sendsID ? ids.nextID() : nil, suffix: suffix, intendedAt: intendedAt)
    }

    /// Open loop: releases every intended send time that has come, then sleeps until the next.
    private func tick() {
        guard !done else { return }
        let now = Clock.now()
        if now >= openStart {
            let due = min(toGenerate, Int(Double(now - openStart) / interval) + 1)
            while generated < due {
                pending.append(openStart + UInt64(Double(generated) * interval))
                generated += 1
            }
        }
        dispatch()
        guard generated < toGenerate else { return }
        let next = openStart + UInt64(Double(generated) * interval)
        // At high rates several sends share one wake-up; their latency still starts at their own
        // intended time, so batching costs accuracy nothing.
        loop.schedule(afterNanoseconds: max(next > now ? next - now : 0, 20_000)) { [unowned self] in self.tick() }
    }

    /// Every 50 ms: requests and connects past the timeout fail as `timeout`; in open loop,
    /// queued sends older than the timeout fail too (no connection was free for that long).
    private func sweep() {
        guard !done else { return }
        let now = Clock.now()
        let limit = plan.timeoutNanoseconds
        for connection in connections {
            switch connection.state {
            case .busy where now - connection.sentAt > limit:
                connection.timeOut()
            case .connecting where now - connection.connectStartedAt > limit:
                connection.close()
                connectFailed(connection)
            default:
                break
            }
        }
        while pendingHead < pending.count && now > pending[pendingHead] && now - pending[pendingHead] > limit {
            pendingHead += 1
            recordFailure("timeout")
        }
        checkDone()
        if !done { loop.schedule(afterNanoseconds: 50_000_000) { [unowned self] in self.sweep() } }
    }

    private func checkDone() {
        guard !done, inFlight == 0, !moreToCome else { return }
        done = true
        finishedAt = Clock.now()
        for connection in connections { connection.close() }
        onDone()
    }

    // MARK: called by connections

    func connectionIdle(_ connection: LoadConnection) {
        assert(loop.isInLoop)
        connectFailuresInARow = 0
        idle.append(connection)
        dispatch()
    }

    func completed(_ connection: LoadConnection, status: Int, replica: UnsafeRawBufferPointer?) {
        assert(loop.isInLoop)
        inFlight -= 1
        let now = Clock.now()
        let bucket = plan.timelineBucketNanoseconds.map { Int((now - runStart) / $0) }
        let index = stats.recordAnswer(
            status: status, latencyMicros: (now - connection.intendedAt) / 1000,
            replica: replica, bucket: bucket)
        let ok = (200..<300).contains(status)
        if let index, ok {
            let mark = progress.mark.load(ordering: .relaxed)
            if mark > 0, connection.sentAt > mark, stats.firstReplyAfterMark[stats.replicaNames[index]] == nil {
                stats.firstReplyAfterMark[stats.replicaNames[index]] = now
            }
        }
        progress.completed.add(1, ordering: .relaxed)
        if !ok { progress.failed.add(1, ordering: .relaxed) }
    }

    func failed(_ connection: LoadConnection, kind: String, hadRequest: Bool) {
        assert(loop.isInLoop)
        idle.removeAll { $0 === connection }
        if hadRequest {
            inFlight -= 1
            recordFailure(kind)
        }
        reconnect(connection, after: 0)
    }

    func connectionLost(_ connection: LoadConnection) {
        assert(loop.isInLoop)
        idle.removeAll { $0 === connection }
        reconnect(connection, after: 0)
    }

    func connectFailed(_ connection: LoadConnection) {
        assert(loop.isInLoop)
        connectFailuresInARow += 1
        // The request that this connection would have carried fails as `connect`: closed loop
        // spends one of its budget, open loop the oldest queued send. So every error is a request.
        if isOpenLoop {
            if pendingHead < pending.count {
                pendingHead += 1
                recordFailure("connect")
            }
        } else if mayIssue(now: Clock.now()) {
            if budget != nil { budget! -= 1 }
            recordFailure("connect")
        }
        let backoff = UInt64(min(connectFailuresInARow, 10)) * 10_000_000
        reconnect(connection, after: backoff)
    }

    func recordError(_ kind: String) {
        stats.recordError(kind)
    }

    private func recordFailure(_ kind: String) {
        stats.completed += 1
        stats.recordError(kind)
        if let width = plan.timelineBucketNanoseconds {
            stats.timelineRecord(bucket: Int((Clock.now() - runStart) / width), ok: false, replica: nil)
        }
        progress.completed.add(1, ordering: .relaxed)
        progress.failed.add(1, ordering: .relaxed)
    }

    private func reconnect(_ connection: LoadConnection, after delay: UInt64) {
        guard !done else { return }
        if !moreToCome { checkDone(); return }
        if delay == 0 {
            connection.connect()
        } else {
            loop.schedule(afterNanoseconds: delay) { [unowned self, unowned connection] in
                if !self.done && connection.state == .closed { connection.connect() }
            }
        }
        checkDone()
    }
}
