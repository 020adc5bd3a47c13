import Histogram

/// What one load thread observed; threads' stats are merged at the end. Latencies are in
/// microseconds, measured from the intended send time (open loop) or the send time (closed loop).
struct LoadStats: Sendable {
    /// Every request that completed: answered (any status) or failed.
    var completed = 0
    /// Answered with a 2xx status.
    var succeeded = 0
    var latency = Histogram<UInt64>(
        lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000,
        numberOfSignificantValueDigits: .three)
    /// Answers by status code (an array indexed by the 3-digit code: no hashing per answer).
    var statusCounts = [Int](repeating: 0, count: 1000)
    var statuses: [Int: Int] {
        var result: [Int: Int] = [:]
        for (code, count) in statusCounts.enumerated() where count > 0 { result[code] = count }
        return result
    }
    /// Failures by kind: `connect`, `closed`, `timeout`, `bad_response`, `http_5xx`, `http_4xx`.
    var errors: [String: Int] = [:]
    /// Replies by the replica named in the body (`Hello from Server: X`), in first-seen order.
    var replicaNames: [String] = []
    var replicaCounts: [Int] = []
    /// Replica name → when it first answered a request sent after `LoadProgress.mark`.
    var firstReplyAfterMark: [String: UInt64] = [:]
    /// Answers without a replica name (an error body, a non-/home path).
    var unattributed = 0
    /// Per timeline bucket: successes, failures, and successes per replica (by index above).
    var timelineOK: [Int] = []
    var timelineErrors: [Int] = []
    var timelineReplicas: [[Int]] = []

    /// One answer: status, latency (µs), the replica named in the body, and its timeline bucket.
    /// One mutating call per answer, so the owner pays one exclusivity check, not one per field.
    /// Returns the replica's index.
    @discardableResult
    mutating func recordAnswer(status: Int, latencyMicros: UInt64, replica: UnsafeRawBufferPointer?, bucket: Int?) -> Int? {
        latency.record(max(1, latencyMicros))
        completed += 1
        statusCounts[status] += 1
        let ok = (200..<300).contains(status)
        if ok { succeeded += 1 } else { recordError(status >= 500 ? "http_5xx" : "http_4xx") }
        var index: Int?
        if let replica {
            let i = replicaIndex(replica)
            replicaCounts[i] += 1
            index = i
        } else {
            unattributed += 1
        }
        if let bucket { timelineRecord(bucket: bucket, ok: ok, replica: ok ? index : nil) }
        return index
    }

    mutating func recordError(_ kind: String) {
        errors[kind, default: 0] += 1
    }

    /// The index of a replica's name, adding it when new. Lookup is by bytes, without building
    /// a String per request (a handful of replicas, so a linear scan).
    mutating func replicaIndex(_ name: UnsafeRawBufferPointer) -> Int {
        for (i, known) in replicaNames.enumerated() where known.utf8.count == name.count {
            if known.utf8.elementsEqual(name) { return i }
        }
        replicaNames.append(String(decoding: name, as: UTF8.self))
        replicaCounts.append(0)
        for b in timelineReplicas.indices { timelineReplicas[b].append(0) }
        return replicaNames.count - 1
    }

    mutating func timelineRecord(bucket: Int, ok: Bool, replica: Int?) {
        if bucket >= timelineOK.count {
            let grow = bucket + 1 - timelineOK.count
            timelineOK += repeatElement(0, count: grow)
            timelineErrors += repeatElement(0, count: grow)
            timelineReplicas += repeatElement([Int](repeating: 0, count: replicaNames.count), count: grow)
        }
        if ok { timelineOK[bucket] += 1 } else { timelineErrors[bucket] += 1 }
        if let replica { timelineReplicas[bucket][replica] += 1 }
    }

    var failed: Int { errors.values.reduce(0, +) }

    var replicas: [String: Int] {
        Dictionary(uniqueKeysWithValues: zip(replicaNames, replicaCounts))
    }

    /// Folds `other` into this one (replica indexes are remapped by name).
    mutating func merge(_ other: LoadStats) {
        completed += other.completed
        succeeded += other.succeeded
        unattributed += other.unattributed
        latency.add(other.latency)
        for (code, count) in other.statusCounts.enumerated() where count > 0 { statusCounts[code] += count }
        for (k, v) in other.errors { errors[k, default: 0] += v }
        for (k, v) in other.firstReplyAfterMark { firstReplyAfterMark[k] = min(v, firstReplyAfterMark[k] ?? v) }
        var map: [Int] = []
        for (name, count) in zip(other.replicaNames, other.replicaCounts) {
            var utf8 = name
            let i = utf8.withUTF8 { replicaIndex(UnsafeRawBufferPointer($0)) }
            replicaCounts[i] += count
            map.append(i)
        }
        for b in other.timelineOK.indices {
            timelineRecordCounts(bucket: b, ok: other.timelineOK[b], errors: other.timelineErrors[b])
            for (j, count) in other.timelineReplicas[b].enumerated() where count > 0 {
                timelineReplicas[b][map[j]] += count
            }
        }
    }

    private mutating func timelineRecordCounts(bucket: Int, ok: Int, errors: Int) {
        if bucket >= timelineOK.count {
            let grow = bucket + 1 - timelineOK.count
            timelineOK += repeatElement(0, count: grow)
            timelineErrors += repeatElement(0, count: grow)
            timelineReplicas += repeatElement([Int](repeating: 0, count: replicaNames.count), count: grow)
        }
        timelineOK[bucket] += ok
        timelineErrors[bucket] += errors
    }
}
