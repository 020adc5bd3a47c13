/// Pipelined requests wait behind fresh ones (clients that pipeline thousands of GETs
/// and never read the answers must not take the turn of the normal load).
///
/// A request that was already in the client's buffer when the previous one ended is pipelined:
/// its client did not wait for the answer before asking again. Such a connection does not go on
/// at once; it queues here, and each loop iteration, after every I/O event of that iteration,
/// starts waiting connections while fewer than `maxInProgress` pipelined requests are in progress
/// on this worker. A fresh request is never queued, so under a pipelining flood it still costs
/// one loop iteration plus at most `maxInProgress` pipelined requests ahead of it on the replica,
/// where serving the flood in arrival order would put thousands ahead of it. (HAProxy gets the
/// same from its run-queue classes and per-class budgets.) Alone, a pipelining client loses
/// little: its requests are answered one at a time in order anyway.
///
/// `maxInProgress` is `--pipeline-slots` and follows a reload. 0 turns the queue off: a
/// connection does not queue (`isOn`) and pipelined requests are served as they arrive
/// (the best pipelined throughput, no protection). Connections still waiting when
/// a reload turns it off are all started by the next `run`.
///
/// Loop thread only.
final class PipelineQueue<Connection: PipelinedConnection> {
    var maxInProgress: Int
    /// FIFO: `waiting[head...]`; the storage is kept between bursts, so queueing allocates
    /// nothing once it has grown.
    private var waiting: [Connection] = []
    private var head = 0
    private(set) var inProgress = 0

    init(maxInProgress: Int) {
        self.maxInProgress = maxInProgress
        waiting.reserveCapacity(64)
    }

    var waitingCount: Int { waiting.count - head }

    /// Whether pipelined requests queue at all (`maxInProgress` > 0).
    var isOn: Bool { maxInProgress > 0 }

    func hold(_ connection: Connection) {
        waiting.append(connection)
    }

    /// A pipelined request started by `run` has ended (or stopped to wait for its client).
    func slotReleased() {
        inProgress -= 1
    }

    /// Starts waiting connections while slots are free; only those queued before this call, so a
    /// connection that finishes at once and queues again waits for the next iteration. True when
    /// some still wait with a slot free: the loop should come back without blocking.
    func run() -> Bool {
        let end = waiting.count
        let limit = isOn ? maxInProgress : Int.max
        while inProgress < limit && head < end {
            let connection = waiting[head]
            head += 1
            guard !connection.closed else { continue }
            inProgress += 1
            connection.resumePipelined()
        }
        if head == waiting.count {
            waiting.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 1024 && head * 2 >= waiting.count {
            waiting.removeFirst(head)
            head = 0
        }
        return head < waiting.count && inProgress < limit
    }
}

/// What `PipelineQueue` needs of a connection (a protocol so the queue is tested on its own).
protocol PipelinedConnection: AnyObject {
    var closed: Bool { get }
    /// Its turn: go on with the pipelined request, holding one of the queue's slots until
    /// `slotReleased()`.
    func resumePipelined()
}
