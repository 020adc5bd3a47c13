import DSBalancer
import DSHTTP1
import DSHashing
import DSProxy
import DSReactor
import DSSystem
import Logging
import Prometheus

#if canImport(Glibc)
import Glibc
#endif

/// Owns membership (docs/ARCHITECTURE.md §5): heartbeats, driver, admin commands, snapshots.
/// It runs on the control loop; workers reach it only through its `admin` router (whose
/// commands post to that loop) and `reportUnreachable`, and read what it publishes: the
/// routing snapshot, the `view` behind `/rep` and `/status`, and the metrics. The driver reports
/// to it through `DriverEvent`s and the desired pool is read and written through a `PoolStore`.
///
/// `@unchecked Sendable`: every mutable property is touched only on `loop`'s thread; the
/// cross-thread entry points only read immutable state or post to the loop.
package final class Supervisor: @unchecked Sendable {
    package let loop: EventLoop
    package let publisher: SnapshotPublisher
    let driver: ReplicaDriver
    /// Decides every replica's lifecycle; the supervisor carries out its actions.
    var reconciler: Reconciler
    /// Control thread only; a reload replaces it (`reconfigure`).
    var config: SupervisorConfig {
        get { reconciler.config }
        set { reconciler.config = newValue }
    }
    private let algorithm: HashAlgorithm
    let logger: Logger
    private let startedAt = monotonicNanoseconds()
    /// Replicas in the pool, in order of addition (the order `/rep` lists them in).
    var members: [Replica] = []
    private var generation: UInt64 = 0
    private var publishedHealth: [String: Bool] = [:]
    /// Admin commands run one at a time; the others wait here in arrival order.
    private var queue: [(AdminCommand, @Sendable (AdminAnswer) -> Void)] = []
    private var busy = false
    private var onInitialPoolReady: (() -> Void)?
    /// Cluster mode (`joinCluster`): the pool is etcd's and placed over the live nodes; `members`
    /// are the replicas this node runs.
    var cluster: ClusterMode?
    /// Where the pool comes from and admin commands go: `cluster` once joined, else this node's own.
    var poolSource: any PoolSource { cluster ?? localPool }
    private let localPool = LocalPool()
    /// Cluster mode: the node cannot be part of the cluster (its name is another live node's);
    /// ds-lb is to stop with this reason.
    package var onClusterRefused: ((String) -> Void)?

    /// What `/rep` and `/status` read: republished after every change of the pool or of a
    /// replica's state (`publishView`), never read back by the control loop.
    package let view: PublishedView
    /// A change is waiting to be published in the view at the end of this turn of the loop.
    private var viewChanged = false
    /// The admin API for a worker: it reads `view` and `metrics` and hands commands to `perform`.
    package var admin: AdminRouter {
        AdminRouter(view: view, metrics: metrics, logger: logger, dashboard: dashboard) { [weak self] command, reply in
            guard let self else { return reply(.failure(.serviceUnavailable, "<Error> ds-lb is stopping")) }
            perform(command, reply: reply)
        }
    }

    /// Shared with the workers: they count requests, the supervisor health and restarts.
    package let metrics: ProxyMetrics
    /// The dashboard's event stream and key space shares; every `logEvent` goes to its subscribers.
    package let dashboard: Dashboard
    private let generationGauge: Gauge
    private let poolGauge: Gauge
    private var healthGauges: [String: Gauge] = [:]
    private var restartCounters: [String: Counter] = [:]

    package init(
        loop: EventLoop, driver: ReplicaDriver, algorithm: HashAlgorithm, config: SupervisorConfig,
        workers: Int, logger: Logger
    ) {
        self.loop = loop
        self.driver = driver
        self.algorithm = algorithm
        self.reconciler = Reconciler(config: config, canCreate: driver.canCreate)
        self.logger = logger
        self.publisher = SnapshotPublisher(initial: .empty(algorithm: algorithm), workers: workers)
        self.metrics = ProxyMetrics()
        generationGauge = metrics.registry.makeGauge(
            descriptor: ProxyMetrics.name("ring", unit: "generation", help: "Generation of the published snapshot"))
        poolGauge = metrics.registry.makeGauge(
            descriptor: ProxyMetrics.name("pool", unit: "replicas", help: "Replicas in the pool"))
        view = PublishedView(
            SupervisorView(
                generation: 0, algorithm: algorithm.rawValue, driver: driver.name, startedAt: startedAt,
                heartbeatInterval: config.heartbeatInterval, replicas: []))
        dashboard = Dashboard(loop: loop, view: view, publisher: publisher, metrics: metrics)
        driver.attach(to: loop) { [unowned self] event in
            self.driverReported(event)
            self.noteViewChanged()
        }
    }

    private func healthGauge(_ name: String) -> Gauge {
        if let gauge = healthGauges[name] { return gauge }
        let gauge = metrics.registry.makeGauge(
            descriptor: ProxyMetrics.name("replica", unit: "up", help: "1 when the replica passes its heartbeats, else 0"),
            labels: [("replica", name)])
        healthGauges[name] = gauge
        return gauge
    }

    func countRestart(_ name: String) {
        let counter =
            restartCounters[name]
            ?? metrics.registry.makeCounter(
                descriptor: ProxyMetrics.name("replica_restarts", unit: "total", help: "Successful restarts of the replica"),
                labels: [("replica", name)])
        restartCounters[name] = counter
        counter.increment()
    }

    /// Writes a replica event's line with its structured fields (`EVENT=restarted`,
    /// `BACKEND=server-2` in journald), publishing the view first: whoever reads the line and
    /// then asks `/status` sees the replica as the line describes it.
    func logEvent(_ level: Logger.Level, _ line: String, _ name: String, _ backend: Backend) {
        publishView()
        logger.log(level: level, "\(line)", metadata: ["event": .string(name), "backend": .string(backend.name)])
        dashboard.publish(event: name, line: line, backend: backend.name)
    }

    /// One line for systemd's `STATUS=`: "3/3 replicas up, ring generation 7".
    package var statusLine: String {
        assert(loop.isInLoop)
        return poolSource.statusLine(self, generation: generation)
    }

    /// Where the desired pool is kept across restarts (nil: nowhere). Set before `bootstrap`.
    package var poolStore: PoolStore? {
        didSet { poolStore?.watch { [unowned self] event in self.storeReported(event) } }
    }
    /// Decides the pool-level policies (names, refusals, bootstrap, store writes); the
    /// supervisor carries out its answers.
    var poolReconciler = PoolReconciler()
    /// The store's revision as this ds-lb last read or wrote it.
    var poolRevision: UInt64 { poolReconciler.revision }
    /// Writes to the store run one at a time, in order; each computes its pool when it starts.
    private var storeWrites: [(pool: () -> [Backend], purpose: PoolWritePurpose, then: ([PoolWriteAction]) -> Void)] = []
    private var storeWriting = false

    /// Set by `beginStopping`: from then on a replica that exits or stops answering is expected
    /// to (a terminal's Ctrl-C reaches every process of its foreground group, and the replicas
    /// are stopped next anyway), so nothing is restarted, replaced or reported as a failure.
    var stopping: Bool { reconciler.stopping }

    /// ds-lb is stopping: no more heartbeats, restarts or replacements. The replicas keep
    /// serving the requests in flight until `stopAll`.
    package func beginStopping() {
        assert(loop.isInLoop)
        reconciler.beginStopping()
        for replica in members + (pendingAdd?.replicas ?? []) { cancelTimers(of: replica) }
    }

    /// Before the loop runs: launches the initial pool — the saved one when there is one, else
    /// `replicas` new ones. `ready` runs on the loop once every initial replica has passed its
    /// first checks (or the start timeout passed).
    package func bootstrap(replicas: Int, ready: @escaping () -> Void) throws {
        assert(loop.isInLoop)
        onInitialPoolReady = ready
        try poolSource.bootstrap(self, replicas: replicas)
    }

    /// Cluster mode's bootstrap: placement launches what the view gives this node.
    func bootstrapCluster(_ cluster: ClusterMode, replicas: Int) throws {
        try clusterBootstrap(cluster, replicas: replicas)
        publish()
        loop.schedule(after: config.startTimeout) { [unowned self] in self.initialPoolSettled(force: true) }
        samplePassiveHealth()
        schedulePassiveHealth()
    }

    /// One ds-lb's bootstrap: adopts, restores or launches its replicas.
    func bootstrapLocalPool(replicas: Int) throws {
        // Replicas run by someone else start UP, as HAProxy's servers do: they are presumed to
        // serve until checks say otherwise. Replicas we launch must first pass `rise` checks.
        var firstActions: [ObjectIdentifier: [ReconcilerAction]] = [:]
        func add(_ backend: Backend, _ made: (ReplicaRecord, [ReconcilerAction])) {
            let replica = Replica(backend: backend, record: made.0, inPool: true)
            members.append(replica)
            firstActions[ObjectIdentifier(replica)] = made.1
        }
        let now = monotonicNanoseconds()
        let adopted = driver.initialBackends()
        let stored = driver.canCreate ? try poolStore?.load() : nil
        poolReconciler.loaded(stored)
        let steps = PoolReconciler.bootstrap(
            adopted: adopted, stored: stored, canCreate: driver.canCreate, replicas: replicas)
        if let stored, let poolStore, steps.contains(where: { if case .restore = $0 { true } else { false } }) {
            logger.info("[i] Restoring \(stored.replicas.count) replicas from \(poolStore.location)")
        }
        for step in steps {
            switch step {
            case .adopt(let backend):
                add(backend, reconciler.adopted(backend.name, number: backend.number, address: backend.address, now: now))
            case .restore(let previous):
                var backend = try driver.launch(ReplicaSpec(name: previous.name, number: previous.number), previous: previous)
                backend.weight = previous.weight
                add(
                    backend,
                    reconciler.launched(backend.name, number: backend.number, address: backend.address, forAdd: false, now: now))
            case .launch(let spec):
                let backend = try driver.launch(spec, previous: nil)
                add(
                    backend,
                    reconciler.launched(backend.name, number: backend.number, address: backend.address, forAdd: false, now: now))
            }
        }
        for replica in members {
            logEvent(
                .info, "[+] Server \(replica.backend.number) started: \(replica.backend.name) at \(replica.backend.address)",
                "started", replica.backend)
            perform(firstActions[ObjectIdentifier(replica)] ?? [], for: replica, now: now)
        }
        publish()
        try saveInitialPool()
        driver.initialPoolLaunched()
        loop.schedule(after: config.startTimeout) { [unowned self] in self.initialPoolSettled(force: true) }
        initialPoolSettled(force: false)
        samplePassiveHealth()
        schedulePassiveHealth()
    }

    func initialPoolSettled(force: Bool) {
        guard let ready = onInitialPoolReady else { return }
        let waiting = members.filter { $0.health.status == .starting }
        guard force || (waiting.isEmpty && poolSource.initialPoolSettled(self)) else { return }
        if !waiting.isEmpty {
            logger.warning(
                "[!] Not yet healthy after \(DurationText.format(config.startTimeout)): \(waiting.map(\.backend.name).joined(separator: ", "))"
            )
        }
        onInitialPoolReady = nil
        ready()
    }

    // MARK: admin commands

    /// Any thread. Runs `command` on the control loop after the ones before it; `reply` gets
    /// the answer once the view shows what the command did.
    func perform(_ command: AdminCommand, reply: @escaping @Sendable (AdminAnswer) -> Void) {
        loop.execute { [self] in poolSource.perform(command, on: self, reply: reply) }
    }

    /// One ds-lb's commands run one at a time, in order.
    func enqueue(_ command: AdminCommand, reply: @escaping @Sendable (AdminAnswer) -> Void) {
        queue.append((command, reply))
        runNextCommand()
    }

    /// A cluster's commands are not queued: each one's write is atomic in etcd.
    func clusterPerform(_ command: AdminCommand, cluster: ClusterMode, reply: @escaping @Sendable (AdminAnswer) -> Void) {
        clusterExecute(command, cluster: cluster) { [unowned self] answer in
            publishView()
            whenWorkersRouteByTheLatestSnapshot { reply(answer) }
        }
    }

    /// Any thread. Passive signal from a worker: a replica refused or dropped a connection on
    /// live traffic. It is checked now instead of at the next interval.
    package func reportUnreachable(_ backend: Backend) {
        loop.execute { [self] in
            // Only the first sign of trouble triggers a check: after that the quick re-checks
            // run on their own timer, so a burst of failing requests is not a burst of probes.
            guard let replica = members.first(where: { $0.backend == backend }) else {
                return poolSource.unreachableElsewhere(backend, supervisor: self)
            }
            guard !heartbeats.isChecking(replica), replica.isUp, replica.health.consecutiveFailures == 0 else { return }
            scheduleCheck(replica, after: .zero)
        }
    }

    // MARK: commands (control thread)

    private func runNextCommand() {
        guard !busy, !queue.isEmpty else { return }
        let (command, reply) = queue.removeFirst()
        busy = true
        execute(command) { [unowned self] answer in
            // A client that reads `/rep` or `/status` after this answer sees what it did.
            publishView()
            whenWorkersRouteByTheLatestSnapshot { [unowned self] in
                reply(answer)
                busy = false
                runNextCommand()
            }
        }
    }

    /// Runs `answer` once every worker runs a snapshot of the pool as it is now, so a request its
    /// client sends after a command's answer is routed by the new pool (never to a replica it
    /// removed). It waits on the loop, never blocking it; a stuck worker only delays it, for at
    /// most `commandSwitchTimeout`. Publishes first: in cluster mode a write can be answered from
    /// the membership's view before the change of that view reached the supervisor.
    private func whenWorkersRouteByTheLatestSnapshot(_ answer: @escaping () -> Void) {
        let target = publish()
        whenWorkersReach(target, deadline: monotonicNanoseconds() + Self.commandSwitchTimeout) { [unowned self] in
            if !publisher.allWorkersReached(target) {
                logger.warning(
                    "[!] Not every worker switched to ring generation \(target) within \(Self.commandSwitchTimeout / 1_000_000_000) s; answering the command anyway"
                )
            }
            answer()
        }
    }

    /// How long an admin command's answer waits for the workers to take its snapshot. A worker
    /// switches within one turn of its loop, so this only bounds a stuck one.
    static let commandSwitchTimeout: UInt64 = 5_000_000_000

    /// How long a replica that left the pool (removed, replaced, or gone from the cluster's pool)
    /// waits for the workers to take the snapshot without it before it is stopped and its
    /// `/metrics` series are dropped: like `commandSwitchTimeout`, it only bounds a stuck worker.
    static let removalSwitchTimeout: UInt64 = 2_000_000_000

    private func execute(_ command: AdminCommand, done: @escaping (AdminAnswer) -> Void) {
        switch command {
        case .add(let scale): add(scale, done: done)
        case .removeNumber(let number): remove(number: number, done: done)
        case .remove(let scale): remove(scale, done: done)
        case .reweight(let scale): reweight(scale, done: done)
        }
    }

    /// The pool's names, in order (the body of the answer to `/add` and `/rm`).
    func poolNames() -> [String] {
        poolSource.poolNames(self)
    }

    /// Publishes the view now (before an answer, or with a new snapshot).
    func publishView() {
        assert(loop.isInLoop)
        viewChanged = false
        view.publish(
            SupervisorView(
                generation: generation, algorithm: algorithm.rawValue, driver: driver.name, startedAt: startedAt,
                heartbeatInterval: config.heartbeatInterval,
                replicas: poolSource.replicaViews(self), cluster: poolSource.clusterStatus(self)))
    }

    /// A replica this ds-lb runs, as `/status` shows it.
    func replicaView(_ replica: Replica, node: String? = nil) -> SupervisorView.ReplicaView {
        SupervisorView.ReplicaView(
            name: replica.backend.name, id: replica.backend.number, address: replica.backend.address,
            state: replica.health.status.rawValue, details: driver.details(of: replica.backend),
            lastCheck: replica.health.last?.description, lastCheckCode: replica.health.last?.code,
            lastCheckNanoseconds: replica.lastLatency, checks: replica.checks,
            consecutiveFailures: replica.health.consecutiveFailures, restarts: replica.restarts,
            failedRestarts: replica.failedRestarts, markedDown: replica.passiveDown, weight: replica.weight,
            counters: metrics.replica(replica.backend.name), node: node)
    }

    /// A replica's state changed: the view is published once at the end of this turn of the
    /// loop, however many changes the turn makes.
    func noteViewChanged() {
        scheduleReport()
        guard !viewChanged else { return }
        viewChanged = true
        loop.schedule(after: .zero) { [unowned self] in
            if viewChanged { publishView() }
        }
    }

    // MARK: membership

    /// Publishes the pool with its current health, when either changed.
    @discardableResult
    func publish(force: Bool = false) -> UInt64 {
        let (backends, health) = poolSource.routing(self)
        let current = publisher.latest()
        let sorted = backends.sorted(by: { $0.name < $1.name })
        // Backend's == leaves weights out (it names an instance): a weight change is a change too.
        if !force && current.backends == sorted && current.backends.map(\.weight) == sorted.map(\.weight)
            && health == publishedHealth && generation > 0
        {
            noteViewChanged()
            return generation
        }
        generation += 1
        publishedHealth = health
        generationGauge.set(Int64(generation))
        poolGauge.set(Int64(backends.count))
        for (name, up) in health { healthGauge(name).set(Int64(up ? 1 : 0)) }
        publisher.publish(
            Snapshot(generation: generation, backends: backends, healthy: health, algorithm: algorithm, previous: current))
        publishView()
        return generation
    }

    // MARK: the desired pool

    /// The pool as it runs: what the store must hold.
    private func runningPool() -> [Backend] { members.filter(\.inPool).map(\.backend) }

    /// Writes the pool `pool()` names (evaluated when the write starts, after the writes queued
    /// before it) as a compare-and-swap against the revision this ds-lb knows, and hands `then`
    /// what the pool reconciler makes of the outcome for `purpose`. Without a store, or with a
    /// driver that creates nothing, there is nothing to write and `then` proceeds at once.
    func writePool(
        _ pool: @escaping () -> [Backend], for purpose: PoolWritePurpose, then: @escaping ([PoolWriteAction]) -> Void
    ) {
        guard poolStore != nil, driver.canCreate else { return then([.proceed]) }
        storeWrites.append((pool, purpose, then))
        startNextWrite()
    }

    private func startNextWrite() {
        guard !storeWriting, !storeWrites.isEmpty, let poolStore else { return }
        let (pool, purpose, then) = storeWrites.removeFirst()
        storeWriting = true
        poolStore.write(pool(), ifRevision: poolRevision) { [unowned self] result in
            let actions = poolReconciler.written(result, for: purpose)
            storeWriting = false
            then(actions)
            startNextWrite()
        }
    }

    /// Writes the log lines among `actions`.
    private func log(_ actions: [PoolWriteAction]) {
        for case .log(let level, let line) in actions { logger.log(level: level, "\(line)") }
    }

    /// Bootstrap: saves the initial pool. A store that answers at once (the file) fails the
    /// start when it cannot; one that answers later has its failure logged.
    private func saveInitialPool() throws(PoolStoreError) {
        var returned = false
        var failure: PoolStoreError?
        let running = { [unowned self] in runningPool() }
        writePool(running, for: .initialPool) { [unowned self] actions in
            for case .failStart(let error) in actions {
                if returned { log(actions) } else { failure = error }
            }
        }
        returned = true
        if let failure { throw failure }
    }

    /// For an admin command: saves the pool it would make, before anything changes, and hands
    /// `then` the answer refusing the command when that fails (nil when saved).
    func saveOrRefuse(_ pool: @escaping () -> [Backend], change: String, then: @escaping (AdminAnswer?) -> Void) {
        writePool(pool, for: .command(change: change)) { [unowned self] actions in
            log(actions)
            for case .refuse(let refusal) in actions { return then(refusal.answer) }
            then(nil)
        }
    }

    /// Saves a change the supervisor made on its own (a replacement, a new address). It cannot
    /// be refused: a lost race is retried once over the store's new revision (the running pool
    /// is the one to keep), and a failure is logged.
    func persist(after change: String, retried: Bool = false) {
        guard poolSource.savesOwnChanges else { return }
        let running = { [unowned self] in runningPool() }
        writePool(running, for: .ownChange(change: change, retried: retried)) { [unowned self] actions in
            log(actions)
            if actions.contains(.retry) { persist(after: change, retried: true) }
        }
    }

    /// A change committed to the store (another writer's is logged).
    private func storeReported(_ event: PoolStoreEvent) {
        log(poolReconciler.storeChanged(event, location: poolStore?.location ?? "the store"))
    }

    // MARK: heartbeats

    /// Keeps each replica's next check and probe; its results come back to the reconciler.
    lazy var heartbeats = HeartbeatScheduler(
        loop: loop, timeout: { [unowned self] in config.heartbeatTimeout },
        shouldCheck: { [unowned self] replica in !replica.removed && !stopping },
        report: { [unowned self] replica, result, latency in apply(.checked(result, latency: latency), to: replica) })

    func scheduleCheck(_ replica: Replica, after delay: Duration) { heartbeats.schedule(replica, after: delay) }

    // MARK: the reconciler's actions

    /// Hands `event` to the reconciler and carries out what it decides.
    func apply(_ event: ReconcilerEvent, to replica: Replica) {
        let now = monotonicNanoseconds()
        perform(reconciler.handle(event, for: &replica.record, now: now), for: replica, now: now)
        noteViewChanged()
    }

    func perform(_ actions: [ReconcilerAction], for replica: Replica, now: UInt64) {
        func delay(until at: UInt64) -> Duration { .nanoseconds(at > now ? at - now : 0) }
        for action in actions {
            switch action {
            case .scheduleCheck(let at):
                scheduleCheck(replica, after: delay(until: at))
            case .cancelCheck:
                heartbeats.cancelNext(replica)
            case .startDeadline(let at):
                arm(\.startTimer, of: replica, after: delay(until: at), reporting: .startDeadlinePassed(at: at))
            case .cancelStartDeadline:
                cancel(\.startTimer, of: replica)
            case .scheduleRepair(let at):
                arm(\.repairTimer, of: replica, after: delay(until: at), reporting: .repairDue(at: at))
            case .cancelRepair:
                cancel(\.repairTimer, of: replica)
            case .restart:
                restart(replica)
            case .replace:
                replace(replica)
            case .retire:
                retire(replica, graceful: false)
            case .publish:
                publish()
            case .cameUp:
                restartFailureWindow(replica)
                pendingAdd?.replicaCameUp(replica, supervisor: self)
                initialPoolSettled(force: false)
            case .countRestart:
                countRestart(replica.backend.name)
            case .failAdd(let reason):
                pendingAdd?.fail(reason, supervisor: self)
            case .log(let level, let line, let name):
                if let name { logEvent(level, line, name, replica.backend) } else { logger.log(level: level, "\(line)") }
            }
        }
    }

    /// Arms the replica's timer at `timer` (replacing one armed before), which reports `event`.
    private func arm(
        _ timer: ReferenceWritableKeyPath<Replica, TimerID?>, of replica: Replica, after delay: Duration,
        reporting event: ReconcilerEvent
    ) {
        cancel(timer, of: replica)
        replica[keyPath: timer] = loop.schedule(after: delay) { [unowned self, weak replica] in
            guard let replica else { return }
            replica[keyPath: timer] = nil
            self.apply(event, to: replica)
        }
    }

    private func cancel(_ timer: ReferenceWritableKeyPath<Replica, TimerID?>, of replica: Replica) {
        if let id = replica[keyPath: timer] { loop.cancel(id); replica[keyPath: timer] = nil }
    }

    // MARK: repair

    /// Kills the failed instance and launches it again under its name.
    private func restart(_ replica: Replica) {
        driver.kill(replica.backend)
        do {
            replica.backend = try driver.launch(replica.spec, previous: replica.backend)
        } catch {
            apply(.relaunchFailed(reason: "\(error)"), to: replica)
            return
        }
        apply(.relaunched, to: replica)
    }

    /// `--on-failure replace`: gives up on a replica and starts a new one in its place under a
    /// new generated name (never one replaced before), so the pool keeps its size while the
    /// failed name leaves `/rep` at once. A launch that fails keeps the failed replica for
    /// another attempt after the backoff.
    private func replace(_ replica: Replica) {
        let old = replica.backend
        let spec = PoolReconciler.nextGeneratedSpec(
            taken: members.map(\.backend) + [old], avoiding: replacedNames.union([old.name]))
        let backend: Backend
        do {
            backend = try driver.launch(spec, previous: nil)
        } catch {
            apply(.replacementFailed(successor: spec.name, reason: "\(error)"), to: replica)
            return
        }
        let position = members.firstIndex { $0 === replica } ?? members.count
        apply(.replaced(by: spec.name), to: replica)
        replacedNames.insert(old.name)
        let now = monotonicNanoseconds()
        let (record, actions) = reconciler.replacement(
            spec.name, number: spec.number, address: backend.address, of: replica.record, now: now)
        let fresh = Replica(backend: backend, record: record, inPool: true, weight: replica.weight)
        members.insert(fresh, at: min(position, members.count))
        let target = publish()
        persist(after: "replacing \(old.name) with \(spec.name)")
        perform(actions, for: fresh, now: now)
        whenWorkersReach(target, deadline: monotonicNanoseconds() + Self.removalSwitchTimeout) { [unowned self] in
            forgetSeries(of: [old.name])
        }
    }

    /// Names given up by `replace` in this run: a replacement never takes one, so a name that
    /// leaves `/rep` because it failed does not come back as someone else.
    private var replacedNames: Set<String> = []

    /// Runs `body` on the control loop once every worker runs snapshot `target` or a later one
    /// (or once `deadline` passed, should a worker be stuck).
    func whenWorkersReach(_ target: UInt64, deadline: UInt64, _ body: @escaping () -> Void) {
        if publisher.allWorkersReached(target) || monotonicNanoseconds() > deadline {
            body()
            return
        }
        loop.schedule(after: .milliseconds(2)) { [unowned self] in whenWorkersReach(target, deadline: deadline, body) }
    }

    /// Takes the `/metrics` series of replicas that left the pool off the registry, as
    /// Prometheus expects of targets that are gone. Called once no worker routes to them any
    /// more, so no late request registers them again; a name back in the pool by then (a quick
    /// re-add) keeps its series. A restarted replica never leaves the pool and keeps them.
    func forgetSeries(of names: [String]) {
        let current = Set(
            members.filter { !$0.removed }.map(\.backend.name) + (pendingAdd?.replicas.map(\.backend.name) ?? [])
                + poolSource.namesRoutedElsewhere(self))
        for name in names where !current.contains(name) {
            metrics.forget(name)
            if let gauge = healthGauges.removeValue(forKey: name) { metrics.registry.unregisterGauge(gauge) }
            if let counter = restartCounters.removeValue(forKey: name) { metrics.registry.unregisterCounter(counter) }
        }
    }

    /// Takes a replica out of the supervisor's care: timers cancelled, removed from the list.
    func retire(_ replica: Replica, graceful: Bool) {
        _ = reconciler.handle(.retired, for: &replica.record, now: monotonicNanoseconds())
        cancelTimers(of: replica)
        members.removeAll { $0 === replica }
        if graceful { driver.stop(replica.backend) } else { driver.kill(replica.backend) }
    }

    func cancelTimers(of replica: Replica) {
        for timer in [\Replica.repairTimer, \.startTimer] { cancel(timer, of: replica) }
        heartbeats.stop(replica)
    }

    /// What the driver reports, as it happens (on the control loop).
    private func driverReported(_ event: DriverEvent) {
        switch event {
        case .started:
            // Readiness is judged by heartbeats, not by the driver.
            break
        case .addressChanged(let old, let new):
            guard let replica = member(at: old) else { return }
            replica.backend = new
            logger.info("[i] Server \(new.number) (\(new.name)) is at \(new.address)")
            if replica.inPool { publish(); persist(after: "\(new.name) moved to \(new.address)") }
        case .exited(let backend, let reason), .failed(let backend, let reason):
            replicaExited(backend, reason: reason)
        }
    }

    private func member(at backend: Backend) -> Replica? {
        members.first(where: { $0.backend == backend }) ?? pendingAdd?.replicas.first(where: { $0.backend == backend })
    }

    private func replicaExited(_ backend: Backend, reason: String) {
        guard let replica = member(at: backend) else { return }
        let duringAdd = pendingAdd?.replicas.contains(where: { $0 === replica }) == true
        apply(.exited(reason: reason, duringAdd: duringAdd), to: replica)
    }

    // MARK: scaling (see Supervisor+Scaling.swift)

    var pendingAdd: PendingAdd?

    /// At shutdown.
    package func stopAll() {
        assert(loop.isInLoop)
        driver.stopAll()
    }
}
