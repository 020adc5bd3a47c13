import DSSystem
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What a registered descriptor is told about. Registrations are edge-triggered and always ask
/// for both directions, so a connection never pays an epoll_ctl to change interest: it keeps its
/// own "may read / may write" state and acts on the edges (as nginx and HAProxy's ev_epoll do).
///
/// Usable from inline, with an inlinable `init(rawValue:)`: every event a worker handles is tested
/// with `contains`, and only then can the proxy's module specialize the OptionSet operations
/// instead of calling them through the conformance. The events are inlinable constants, not
/// stored statics: another module reached a `static let` through its addressor and a
/// `swift_once` check, several times per event handled.
@usableFromInline package struct IOEvents: OptionSet, Sendable {
    @usableFromInline package let rawValue: UInt32
    @inlinable package init(rawValue: UInt32) { self.rawValue = rawValue }

    @inlinable package static var readable: IOEvents { IOEvents(rawValue: Epoll.readable) }
    @inlinable package static var writable: IOEvents { IOEvents(rawValue: Epoll.writable) }
    @inlinable package static var readHangup: IOEvents { IOEvents(rawValue: Epoll.readHangup) }
    @inlinable package static var hangup: IOEvents { IOEvents(rawValue: Epoll.hangup) }
    @inlinable package static var error: IOEvents { IOEvents(rawValue: Epoll.error) }
}

/// Something that owns a descriptor registered with a loop. Loop thread only.
package protocol EventHandler: AnyObject {
    func handle(_ events: IOEvents)
}

/// An object a timer calls back without a closure (`EventLoop.schedule(afterNanoseconds:target:tag:)`).
package protocol TimerTarget: AnyObject {
    /// Loop thread only. `tag` is the value given when scheduling.
    func timerFired(_ tag: Int)
}

/// An identifier for a scheduled timer, used to cancel it.
package struct TimerID: Hashable, Sendable {
    /// Unique per scheduling; the slot holds it while the timer is pending.
    fileprivate let value: UInt64
    fileprivate let slot: Int32
}

/// One epoll loop on one thread (docs/ARCHITECTURE.md §2). Registration, timers and `run` are
/// loop-thread only (`assertInLoop`); `execute` and `stop` may be called from any thread and
/// wake the loop through an eventfd.
///
/// `@unchecked Sendable`: the only state touched off the loop thread is `inbox` (a Mutex), the
/// eventfd (a kernel object) and `runningThread` (an atomic); everything else is confined to the
/// thread that calls `run`.
package final class EventLoop: @unchecked Sendable {
    private struct Registration {
        let handler: EventHandler
        let generation: UInt32
        /// The loop closes the descriptor when the registration ends.
        let owned: Bool
    }

    /// A pending timer in the heap. Its action lives in `timerSlots[slot]`, which still holds
    /// `id` only while the timer is pending: a cancelled entry is told by that check (no
    /// hashing per schedule, as a dictionary keyed by id would cost).
    private struct TimerEntry {
        let deadline: UInt64
        let id: UInt64
        let slot: Int32
    }

    private enum TimerAction {
        case none
        case closure(() -> Void)
        case target(TimerTarget, Int)
    }

    private struct TimerSlot {
        /// The pending timer's id; 0 when the slot is free.
        var id: UInt64
        var action: TimerAction
    }

    private let epfd: FileDescriptor
    /// The loop's eventfd, in an object of its own that the loop alone holds strongly: a
    /// thread that may outlive the loop (`SnapshotPublisher`'s wakers) keeps a weak reference
    /// to it rather than to the loop. A weak reference gives its object a side table, which
    /// makes every retain and release of that object take the slow path (several times the
    /// instructions); the loop is retained and released on the request path, the waker never.
    package let waker: LoopWaker
    private var registrations: [Registration?] = []
    private var nextGeneration: UInt32 = 1
    private var timerHeap = BinaryHeap<TimerEntry>(areInOrder: {
        $0.deadline < $1.deadline || ($0.deadline == $1.deadline && $0.id < $1.id)
    })
    /// Actions of pending timers, indexed by `TimerEntry.slot`; freed slots are reused, so the
    /// array is as long as the most timers ever pending at once.
    private var timerSlots: [TimerSlot] = []
    private var freeTimerSlots: [Int32] = []
    /// Heap entries whose timer was cancelled (lazy deletion); compacted when they outnumber
    /// the live ones, so a timer armed and cancelled per request does not grow the heap for
    /// as long as its deadline.
    private var cancelledInHeap = 0
    private var nextTimerID: UInt64 = 1
    private let inbox = Locked<[@Sendable () -> Void]>([])
    private let stopRequested = Atomic<Bool>(false)
    private var iterationHooks: [() -> Void] = []
    private var pollHooks: [() -> Void] = []
    /// Set by `requestImmediateIteration`: the next epoll_wait does not block.
    private var pollOnly = false
    /// The thread inside `run` (its pthread_t), 0 while none is. Recorded by `run` rather than
    /// at `init`: a loop is often made on one thread and run on another (`Worker.start`).
    private let runningThread = Atomic<UInt>(0)

    /// Reserved epoll data value for the loop's own eventfd.
    private static let wakeToken: UInt64 = UInt64.max

    package init() throws {
        epfd = FileDescriptor(adopting: try syscall("epoll_create1") { Epoll.create() })
        let waker = LoopWaker(FileDescriptor(adopting: try syscall("eventfd") { EventFD.create() }))
        self.waker = waker
        _ = try syscall("epoll_ctl(eventfd)") {
            Epoll.add(epfd.rawValue, waker.fd.rawValue, events: Epoll.readable | Epoll.edgeTriggered, data: Self.wakeToken)
        }
    }

    deinit {
        // Descriptors still registered to their owner, the loop, die with it; `epfd` and
        // the waker's eventfd close themselves.
        for (index, registration) in registrations.enumerated() where registration?.owned == true {
            Socket.close(Int32(index))
        }
    }

    // MARK: descriptors (loop thread only)

    /// Registers `descriptor` edge-triggered for reads, writes and peer half-close, and takes it
    /// over: `close(_:of:)` unregisters and closes it in one step, and the loop's deinit closes
    /// it if it is still registered then. When registering fails, the descriptor is closed.
    /// Returns its number, for the handler's system calls until it closes.
    @discardableResult
    package func register(_ descriptor: consuming FileDescriptor, handler: EventHandler) throws -> Int32 {
        try add(descriptor.rawValue, handler: handler, exclusive: false, owned: true)
        return descriptor.release()
    }

    /// Registers `fd`, which stays the caller's to close (after `unregister`): only a listening
    /// socket shared by several loops (and owned by systemd under socket activation) needs this;
    /// every other descriptor is handed over as a `FileDescriptor`. `exclusive` sets
    /// EPOLLEXCLUSIVE (one wake-up per connection); without it, edge-triggered reads, writes and
    /// peer half-close.
    package func register(_ fd: Int32, handler: EventHandler, exclusive: Bool = false) throws {
        try add(fd, handler: handler, exclusive: exclusive, owned: false)
    }

    private func add(_ fd: Int32, handler: EventHandler, exclusive: Bool, owned: Bool) throws {
        assertInLoop()
        let generation = nextGeneration
        nextGeneration = nextGeneration &+ 1 == 0 ? 1 : nextGeneration &+ 1
        let index = Int(fd)
        if index >= registrations.count {
            registrations.append(contentsOf: repeatElement(nil, count: index - registrations.count + 1))
        }
        registrations[index] = Registration(handler: handler, generation: generation, owned: owned)
        // EPOLLEXCLUSIVE may only be combined with EPOLLIN/EPOLLOUT/EPOLLET (epoll_ctl(2)).
        let events =
            exclusive
            ? Epoll.readable | Epoll.edgeTriggered | Epoll.exclusive
            : Epoll.readable | Epoll.writable | Epoll.readHangup | Epoll.edgeTriggered
        let data = UInt64(generation) << 32 | UInt64(UInt32(bitPattern: fd))
        do {
            _ = try syscall("epoll_ctl(add)") { Epoll.add(epfd.rawValue, fd, events: events, data: data) }
        } catch {
            registrations[index] = nil
            throw error
        }
    }

    /// Forgets `fd`. Call before closing it: events already fetched for it are dropped because
    /// the generation in their data no longer matches. A descriptor the loop owns is closed too
    /// (nobody else could).
    package func unregister(_ fd: Int32) {
        assertInLoop()
        let index = Int(fd)
        guard index < registrations.count, let registration = registrations[index] else { return }
        registrations[index] = nil
        _ = Epoll.remove(epfd.rawValue, fd)
        if registration.owned { Socket.close(fd) }
    }

    /// Unregisters and closes `fd`, a descriptor the loop took over from `handler`
    /// (`register(_:handler:)`). Only while `handler` still holds that registration: a second
    /// close, even one after the kernel reused the number for another connection, does nothing.
    package func close(_ fd: Int32, of handler: EventHandler) {
        let index = Int(fd)
        guard index < registrations.count, let registration = registrations[index],
            registration.owned, registration.handler === handler
        else { return }
        unregister(fd)
    }

    /// Hands `fd`'s registration from `old` to `new`: the descriptor stays registered (and the
    /// loop's to close), and its events go to `new` from now on. For a connection that changes
    /// hands without a new epoll registration (a finished TLS handshake becomes a client
    /// connection). False, and nothing changes, unless `old` holds the registration.
    package func transfer(_ fd: Int32, from old: EventHandler, to new: EventHandler) -> Bool {
        assertInLoop()
        let index = Int(fd)
        guard index < registrations.count, let registration = registrations[index], registration.handler === old else {
            return false
        }
        registrations[index] = Registration(handler: new, generation: registration.generation, owned: registration.owned)
        return true
    }

    // MARK: timers (loop thread only)

    /// Runs `callback` on this loop after `delay`.
    @discardableResult
    package func schedule(after delay: Duration, _ callback: @escaping () -> Void) -> TimerID {
        addTimer(at: monotonicNanoseconds() &+ nanoseconds(of: delay), .closure(callback))
    }

    /// Runs `callback` on this loop after `nanoseconds`: the integer form, for callers whose own
    /// deadline arithmetic is in monotonic nanoseconds (no 128-bit Duration division per call).
    @discardableResult
    package func schedule(afterNanoseconds nanoseconds: UInt64, _ callback: @escaping () -> Void) -> TimerID {
        addTimer(at: monotonicNanoseconds() &+ nanoseconds, .closure(callback))
    }

    /// Calls `target.timerFired(tag)` on this loop after `nanoseconds`. Unlike a closure, this
    /// allocates nothing (a per-request deadline costs no heap allocation); the loop holds
    /// `target` until the timer fires or is cancelled. In nanoseconds because it runs per
    /// request: callers convert their configured `Duration`s once, at set-up.
    @discardableResult
    package func schedule(afterNanoseconds nanoseconds: UInt64, target: TimerTarget, tag: Int = 0) -> TimerID {
        addTimer(at: monotonicNanoseconds() &+ nanoseconds, .target(target, tag))
    }

    /// Calls `target.timerFired(tag)` on this loop once the monotonic clock
    /// (`monotonicNanoseconds()`) reaches `deadline`; at once (next iteration) if it has.
    @discardableResult
    package func schedule(atNanoseconds deadline: UInt64, target: TimerTarget, tag: Int = 0) -> TimerID {
        addTimer(at: deadline, .target(target, tag))
    }

    private func addTimer(at deadline: UInt64, _ action: TimerAction) -> TimerID {
        assertInLoop()
        let id = nextTimerID
        nextTimerID += 1
        let slot: Int32
        if let free = freeTimerSlots.popLast() {
            slot = free
            timerSlots[Int(slot)] = TimerSlot(id: id, action: action)
        } else {
            slot = Int32(timerSlots.count)
            timerSlots.append(TimerSlot(id: id, action: action))
            // The free list never holds more than there are slots: given their capacity now, it
            // never reallocates when a dip in pending timers frees more slots than ever before
            // (which would be an allocation on the request path long after warm-up).
            if freeTimerSlots.capacity < timerSlots.capacity { freeTimerSlots.reserveCapacity(timerSlots.capacity) }
        }
        timerHeap.push(TimerEntry(deadline: deadline, id: id, slot: slot))
        return TimerID(value: id, slot: slot)
    }

    /// Empties a pending timer's slot for reuse and returns its action.
    private func releaseTimerSlot(_ slot: Int32) -> TimerAction {
        let action = timerSlots[Int(slot)].action
        timerSlots[Int(slot)] = TimerSlot(id: 0, action: .none)
        freeTimerSlots.append(slot)
        return action
    }

    private func isPending(_ entry: TimerEntry) -> Bool {
        timerSlots[Int(entry.slot)].id == entry.id
    }

    /// Entries in the timer heap, live and cancelled (for tests). Loop thread only.
    var timerHeapCount: Int { timerHeap.count }

    /// For tests: false makes every loop wait with epoll_wait and a millisecond timeout (the
    /// fallback for kernels without epoll_pwait2); true tries epoll_pwait2 again.
    static func useEpollPwait2(_ enabled: Bool) { Epoll.usePwait2(enabled) }

    package func cancel(_ timer: TimerID) {
        assertInLoop()
        // Lazy deletion: the heap entry stays until it reaches the top and finds its slot moved
        // on, or until cancelled entries are the majority and are swept out in one pass.
        guard timer.slot >= 0, Int(timer.slot) < timerSlots.count,
            timerSlots[Int(timer.slot)].id == timer.value
        else { return }
        _ = releaseTimerSlot(timer.slot)
        cancelledInHeap += 1
        if cancelledInHeap > 64 && cancelledInHeap * 2 > timerHeap.count {
            timerHeap.removeAll { !isPending($0) }
            cancelledInHeap = 0
        }
    }

    // MARK: cross-thread

    /// Any thread. Runs `task` on the loop thread soon.
    package func execute(_ task: @escaping @Sendable () -> Void) {
        inbox.withLock { $0.append(task) }
        waker.wakeUp()
    }

    /// Any thread. Makes the loop run one more iteration (its iteration hooks included) soon.
    package func wakeUp() {
        waker.wakeUp()
    }

    /// Any thread. Makes `run` return after the current iteration.
    package func stop() {
        stopRequested.store(true, ordering: .releasing)
        waker.wakeUp()
    }

    /// `hook` runs once per loop iteration, after the events, the timers and the inbox.
    package func onEachIteration(_ hook: @escaping () -> Void) {
        assertInLoop()
        iterationHooks.append(hook)
    }

    /// `hook` runs each time the wait returns, before the events it returned are handled. The
    /// worker's snapshot refresh hangs here (docs/ARCHITECTURE.md §4): whatever another thread
    /// stored before the data of an event was sent is seen by that event's handler, so a request
    /// sent after a snapshot was published is routed by it even when the wake-up and the request
    /// come back from the same wait.
    package func onEachPoll(_ hook: @escaping () -> Void) {
        assertInLoop()
        pollHooks.append(hook)
    }

    /// The next iteration polls without blocking: work is pending that no descriptor or timer
    /// will announce (requests held back for later, say).
    package func requestImmediateIteration() {
        assertInLoop()
        pollOnly = true
    }

    // MARK: thread confinement

    /// Whether the calling thread may touch this loop's loop-thread-only state: it is the thread
    /// inside `run`, or no thread is (setting up before `run`, tearing down after it, a test
    /// driving the loop's objects by hand). For debug-build checks at the entry points of
    /// loop-confined types: `assert(loop.isInLoop)`, which a release build drops without even
    /// loading `loop` (a method for it would stay a call in other modules: members of package
    /// types are not inlined across modules, `@inlinable` or not).
    package var isInLoop: Bool {
        let running = runningThread.load(ordering: .relaxed)
        return running == 0 || running == UInt(pthread_self())
    }

    /// `assert(isInLoop)`: traps in debug builds when called off the loop's thread while the
    /// loop runs (as swift-nio's `assertInEventLoop`); nothing in release builds.
    @inline(__always)
    package func assertInLoop(file: StaticString = #fileID, line: UInt = #line) {
        assert(isInLoop, "called off the loop's thread", file: file, line: line)
    }

    // MARK: running

    /// Runs the loop on the calling thread until `stop()`.
    package func run() {
        let wasRunning = runningThread.exchange(UInt(pthread_self()), ordering: .relaxed)
        precondition(wasRunning == 0, "EventLoop.run: the loop is already running on another thread")
        defer { runningThread.store(0, ordering: .relaxed) }
        let capacity = 256
        let events = UnsafeMutablePointer<Epoll.Event>.allocate(capacity: capacity)
        defer { events.deallocate() }
        while !stopRequested.load(ordering: .acquiring) {
            let count = Epoll.wait(epfd.rawValue, events, max: Int32(capacity), timeoutNanoseconds: waitTimeout())
            pollOnly = false
            if count < 0 {
                if errno == EINTR { continue }
                fatalError("epoll_wait: \(SyscallError(errno: errno, function: "epoll_wait"))")
            }
            for hook in pollHooks { hook() }
            for i in 0..<Int(count) {
                let event = events[i]
                switch event.data {
                case Self.wakeToken:
                    _ = EventFD.drain(waker.fd.rawValue)
                default:
                    let fd = Int(UInt32(truncatingIfNeeded: event.data))
                    let generation = UInt32(truncatingIfNeeded: event.data >> 32)
                    guard fd < registrations.count, let registration = registrations[fd],
                        registration.generation == generation
                    else { continue }
                    registration.handler.handle(IOEvents(rawValue: event.events))
                }
            }
            runExpiredTimers()
            runInbox()
            for hook in iterationHooks { hook() }
        }
        stopRequested.store(false, ordering: .relaxed)
        runInbox()
    }

    private func runExpiredTimers() {
        let now = monotonicNanoseconds()
        while let top = timerHeap.peek, top.deadline <= now {
            _ = timerHeap.pop()
            guard isPending(top) else {
                cancelledInHeap -= 1
                continue
            }
            switch releaseTimerSlot(top.slot) {
            case .closure(let callback): callback()
            case .target(let target, let tag): target.timerFired(tag)
            case .none: break
            }
        }
    }

    /// The inbox's other half: tasks are swapped out of the lock into this array, run, and the
    /// emptied storage is kept for the next swap, so an iteration allocates nothing (a copy
    /// emptied with `removeAll(keepingCapacity:)` while shared would allocate every time).
    private var inboxSpare: [@Sendable () -> Void] = []

    private func runInbox() {
        var tasks: [@Sendable () -> Void] = []
        swap(&tasks, &inboxSpare)
        inbox.withLock { queued in
            guard !queued.isEmpty else { return }
            swap(&queued, &tasks)
        }
        for task in tasks { task() }
        tasks.removeAll(keepingCapacity: true)
        swap(&tasks, &inboxSpare)
    }

    /// How long the next wait may block, in nanoseconds (negative: until an event): until the
    /// earliest pending deadline, so the wait's own timeout replaces a timerfd and its
    /// timerfd_settime each time that deadline changed (once per request when a request's timer
    /// is cancelled). Cancelled entries on top are dropped first so they do not cut the wait
    /// short. A wait that ends early fires nothing: `runExpiredTimers` checks the clock.
    private func waitTimeout() -> Int64 {
        if pollOnly { return 0 }
        while let top = timerHeap.peek, !isPending(top) {
            _ = timerHeap.pop()
            cancelledInHeap -= 1
        }
        guard let top = timerHeap.peek else { return -1 }
        let now = monotonicNanoseconds()
        return top.deadline > now ? Int64(clamping: top.deadline - now) : 0
    }
}

/// A loop's eventfd (`EventLoop.waker`): signalled to make the loop run one more iteration soon,
/// from any thread; closed when the loop lets go of it.
package final class LoopWaker: Sendable {
    let fd: FileDescriptor

    init(_ fd: consuming FileDescriptor) {
        self.fd = fd
    }

    /// Any thread. Makes the loop run one more iteration (its iteration hooks included) soon.
    package func wakeUp() {
        _ = EventFD.signal(fd.rawValue)
    }
}
