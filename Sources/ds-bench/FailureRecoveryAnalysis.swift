import DSHashing
import DSSystem
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Failure recovery (A-3): every endpoint exercised (good and bad input), then a replica SIGKILLed
/// under a steady open-loop load: a timeline of answered and failed requests with the kill, DOWN,
/// restart and back-in-service moments, and the detection and recovery times.
enum FailureRecoveryAnalysis {
    struct Check {
        let method: String
        let target: String
        let body: String?
        let expect: Int
        let why: String
    }

    static let checks: [Check] = [
        Check(method: "GET", target: "/rep", body: nil, expect: 200, why: "the pool: N = 3"),
        Check(method: "GET", target: "/home?id=123456", body: nil, expect: 200, why: "a request routed by its id"),
        Check(
            method: "POST", target: "/add", body: #"{"n": 2, "hostnames": ["S5", "S4"]}"#, expect: 200,
            why: "add two named replicas"),
        Check(method: "GET", target: "/rep", body: nil, expect: 200, why: "N = 5 now"),
        Check(
            method: "DELETE", target: "/rm", body: #"{"n": 2, "hostnames": ["S5", "S4"]}"#, expect: 200, why: "remove them again"),
        Check(method: "POST", target: "/add", body: #"{"n": 1, "hostnames": ["a", "b"]}"#, expect: 400, why: "more names than n"),
        Check(method: "DELETE", target: "/rm", body: #"{"n": 9}"#, expect: 400, why: "more than the pool holds"),
        Check(method: "POST", target: "/add", body: "not json", expect: 400, why: "a body that is not JSON"),
        Check(method: "POST", target: "/add", body: #"{"n": "two"}"#, expect: 400, why: "n of the wrong type"),
        Check(method: "GET", target: "/add", body: nil, expect: 405, why: "the wrong method"),
        Check(method: "GET", target: "/other", body: nil, expect: 400, why: "an unknown path (answered by a replica)"),
        Check(method: "GET", target: "/status", body: nil, expect: 200, why: "health and counters per replica"),
    ]

    static func run(_ context: AnalysisContext, rate: Double, seconds: Double, killAfter: Double) throws -> String {
        try context.withBalancer(replicas: 3, algorithm: .default) { balancer in
            let endpoints = try exerciseEndpoints(context, balancer)
            let failure = try killUnderLoad(context, balancer, rate: rate, seconds: seconds, killAfter: killAfter)
            let summary = """
                # A-3: endpoints and failure recovery

                ## Endpoints

                \(endpoints)

                ## A replica killed under load

                \(failure)
                """
            try (summary + "\n").write(toFile: context.path("a3.md"), atomically: true, encoding: .utf8)
            return summary
        }
    }

    private static func timeline10(_ table: inout CSVTable, _ b: Int, _ ok: Int, _ errors: Int, _ victim: Int, _ bucket: UInt64) {
        let scale = 1e9 / Double(bucket)
        table.add(
            LoadReport.format(Double(b) * Double(bucket) / 1e9, 2), LoadReport.format(Double(ok) * scale, 0),
            LoadReport.format(Double(errors) * scale, 0), LoadReport.format(Double(victim) * scale, 0))
    }

    /// A ds-lb given by `--url` has no log to read: its `/status` is polled every 5 ms instead
    /// (DOWN: the victim's state leaves UP; restarted: UP again with one more restart).
    private static func pollStatus(_ balancer: Balancer, victim: String, restartsBefore: Int) -> (UInt64?, UInt64?) {
        var down: UInt64?
        let deadline = Clock.now() + 60_000_000_000
        while Clock.now() < deadline {
            let replicas = (try? balancer.status()["replicas"] as? [[String: Any]]) ?? nil
            if let r = replicas?.first(where: { $0["name"] as? String == victim }) {
                let state = r["state"] as? String ?? ""
                if down == nil && state != "UP" { down = Clock.now() }
                if down != nil && state == "UP" && (r["restarts"] as? Int ?? 0) > restartsBefore { return (down, Clock.now()) }
            }
            usleep(5_000)
        }
        return (down, nil)
    }

    private static func exerciseEndpoints(_ context: AnalysisContext, _ balancer: Balancer) throws -> String {
        var csv = CSVTable("method", "target", "body", "expected", "status", "ok", "answer")
        var table = ["| request | body | expected | got | answer |", "|---|---|---:|---:|---|"]
        var passed = 0
        for check in checks {
            let response = try balancer.request(check.method, check.target, body: check.body)
            let ok = response.status == check.expect
            if ok { passed += 1 }
            let answer = String(response.body.prefix(140)).replacingOccurrences(of: "\n", with: " ")
            csv.add(check.method, check.target, check.body ?? "", check.expect, response.status, ok, answer)
            let shown =
                check.target == "/status"
                ? "(per-replica JSON, see a3-endpoints.csv)" : "`\(answer.replacingOccurrences(of: "|", with: "\\|"))`"
            table.append(
                "| `\(check.method) \(check.target)` (\(check.why)) | \(check.body.map { "`\($0)`" } ?? "") | \(check.expect) | \(ok ? "" : "**")\(response.status)\(ok ? "" : "**") | \(shown) |"
            )
        }
        try csv.write(to: context.path("a3-endpoints.csv"))
        return "\(passed) of \(checks.count) requests answered with the expected status.\n\n" + table.joined(separator: "\n")
    }

    private static func killUnderLoad(
        _ context: AnalysisContext, _ balancer: Balancer, rate: Double, seconds: Double,
        killAfter: Double
    ) throws -> String {
        let victim = "server-2"
        let bucket: UInt64 = 10_000_000
        let start = Clock.now() + 50_000_000
        let outcome = Locked<Result<LoadResult, Error>?>(nil)
        let progress = LoadProgress()
        let target = TargetURL(address: balancer.address, authority: "127.0.0.1:\(balancer.port)", pathAndQuery: "/home")
        let plan = LoadPlan(
            target: target, requests: nil, durationNanoseconds: UInt64(seconds * 1e9), concurrency: context.concurrency,
            threads: 1, rate: rate, ids: .random6, seed: context.seed, timeoutNanoseconds: 5_000_000_000,
            timelineBucketNanoseconds: bucket)
        Thread.detachNewThread {
            let result = Result { try LoadRunner.run(plan, progressBar: false, start: start, progress: progress) }
            outcome.withLock { $0 = result }
        }
        while Clock.now() < start + UInt64(killAfter * 1e9) { usleep(1_000) }
        let replica = (try balancer.status()["replicas"] as? [[String: Any]] ?? []).first { $0["name"] as? String == victim }
        guard let pid = replica?["pid"] as? Int, let number = replica?["id"] as? Int else {
            throw Balancer.Failure(description: "A-3: /status has no pid for \(victim) (the kill needs the process driver)")
        }
        context.say("A-3: SIGKILL \(victim) (pid \(pid)) under \(Int(rate)) req/s")
        let killAt = Clock.now()
        progress.mark.store(killAt, ordering: .relaxed)
        kill(pid_t(pid), SIGKILL)
        let down: UInt64?, restarted: UInt64?
        if balancer.hasLog {
            down = balancer.waitForLine(containing: "[!] Server \(number) failed heartbeat", after: killAt, timeout: 30)
            restarted = balancer.waitForLine(containing: "[+] Server \(number) restarted", after: killAt, timeout: 60)
        } else {
            (down, restarted) = pollStatus(balancer, victim: victim, restartsBefore: replica?["restarts"] as? Int ?? 0)
        }
        while outcome.withLock({ $0 == nil }) { usleep(10_000) }
        let result = try outcome.withLock { $0! }.get()
        let stats = result.stats
        // Back in service: the victim's first answer to a request sent after the kill (only its
        // new process can have answered that one).
        let victimIndex = stats.replicaNames.firstIndex(of: String(number))
        let back = stats.firstReplyAfterMark[String(number)]
        // The chart: 100 ms bins as req/s.
        var timeline = CSVTable("t_s", "ok_rps", "error_rps", "victim_rps")
        let per = 10
        // Whole bins inside the run only: the last partial one would look like a drop in load.
        let buckets = min(stats.timelineOK.count, Int(seconds * 1e9) / Int(bucket) / per * per)
        for b in stride(from: 0, to: buckets, by: per) {
            let range = b..<(b + per)
            let ok = range.map { stats.timelineOK[$0] }.reduce(0, +)
            let err = range.map { stats.timelineErrors[$0] }.reduce(0, +)
            let vic = victimIndex.map { v in range.map { stats.timelineReplicas[$0][v] }.reduce(0, +) } ?? 0
            let scale = 1e9 / Double(bucket) / Double(range.count)
            timeline.add(
                LoadReport.format(Double(b) * Double(bucket) / 1e9, 2), LoadReport.format(Double(ok) * scale, 0),
                LoadReport.format(Double(err) * scale, 0), LoadReport.format(Double(vic) * scale, 0))
        }
        try timeline.write(to: context.path("a3-timeline.csv"))
        // The zoom: 10 ms bins from 300 ms before the kill to 400 ms after the last event.
        var zoom = CSVTable("t_s", "ok_rps", "error_rps", "victim_rps")
        let first = max(0, Int((killAt - start) / bucket) - 30)
        let lastEvent = [down, restarted, back].compactMap { $0 }.max() ?? killAt
        let last = min(buckets, Int((lastEvent - start) / bucket) + 40)
        for b in first..<max(first, last) {
            let vic = victimIndex.map { stats.timelineReplicas[b][$0] } ?? 0
            timeline10(&zoom, b, stats.timelineOK[b], stats.timelineErrors[b], vic, bucket)
        }
        try zoom.write(to: context.path("a3-zoom.csv"))
        func ms(_ t: UInt64?) -> String { t.map { "\(LoadReport.format(Double($0 - killAt) / 1e6, 0)) ms" } ?? "not seen" }
        func at(_ t: UInt64) -> String { LoadReport.format(Double(t - start) / 1e9, 3) }
        var events = CSVTable("kind", "label", "t_s")
        events.add("kill", "SIGKILL \(victim)", at(killAt))
        if let down { events.add("down", "DOWN detected (+\(ms(down)))", at(down)) }
        if let restarted { events.add("restarted", "restarted (+\(ms(restarted)))", at(restarted)) }
        if let back { events.add("back", "serving its keys again (+\(ms(back)))", at(back)) }
        try events.write(to: context.path("a3-events.csv"))
        try context.plotter.plot(
            "timeline", csv: context.path("a3-timeline.csv"), png: context.path("a3.png"),
            title: "A-3: \(victim) killed under \(Int(rate)) req/s (open loop, 100 ms bins)",
            extra: ["--events", context.path("a3-events.csv"), "--victim", victim, "--zoom", context.path("a3-zoom.csv")])
        let errors =
            stats.errors.isEmpty
            ? "none" : stats.errors.keys.sorted().map { "\($0) \(stats.errors[$0]!)" }.joined(separator: ", ")
        return """
            Open-loop load of \(Int(rate)) `GET /home` req/s with random ids for \(LoadReport.format(seconds, 0)) s over \(context.concurrency) connections; \(victim) (pid \(pid)) SIGKILLed after \(LoadReport.format(killAfter, 1)) s. \(balancer.hasLog ? "The DOWN and restarted times are when ds-bench read ds-lb's log lines (a loaded machine delays that, so they are upper bounds)" : "ds-bench did not start this ds-lb, so DOWN and restarted are when its `/status` (polled every 5 ms) first showed the replica out of UP and back UP with one more restart"); the recovery time is measured on the load itself.

            | event | after the kill |
            |---|---:|
            | DOWN: `[!] Server \(number) failed heartbeat. Restarting...` (detection) | \(ms(down)) |
            | `[+] Server \(number) restarted` | \(ms(restarted)) |
            | \(victim) answers again (recovery: its first answer to a request sent after the kill) | \(ms(back)) |

            Requests: \(stats.completed) completed, \(stats.succeeded) succeeded, \(stats.failed) failed (\(errors)); sent at \(LoadReport.format(result.sendRate, 1)) req/s; latency p50 \(LoadReport.format(Double(stats.latency.valueAtPercentile(50)) / 1000, 2)) ms, p99 \(LoadReport.format(Double(stats.latency.valueAtPercentile(99)) / 1000, 2)) ms, max \(LoadReport.format(Double(stats.latency.max) / 1000, 2)) ms (from the intended send times). \(stats.failed == 0 ? "While \(victim) is down its keys go to the next replica in their candidate order (a refused connection is retried there, `--retries`), so no client saw an error." : "Failed requests are those ds-lb could not fail over in time.") Chart: `a3.png`; numbers: `a3-timeline.csv` (100 ms bins), `a3-zoom.csv` (10 ms bins around the kill), `a3-events.csv`, `a3-endpoints.csv`.
            """
    }
}
