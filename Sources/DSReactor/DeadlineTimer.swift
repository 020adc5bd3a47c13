import DSSystem

/// One owner's deadline, backed by at most one loop timer that is moved lazily: setting a
/// deadline later than the armed timer, or clearing it, touches no timer at all; the timer, when
/// it fires, re-arms for the deadline if that moved later, and reports only a deadline that has
/// really passed. A per-request deadline (set when the request starts, cleared when it ends)
/// thus costs two stores, and the loop's timer heap sees one entry per owner per deadline
/// period rather than a push and a cancellation per request. Loop thread only.
///
/// The owner (a `TimerTarget`) calls `fired(tag:)` from its `timerFired(_:)` and acts only on
/// true, and calls `cancel()` when it goes away, so the loop does not hold it until the timer's
/// deadline.
///
/// Usable from inline with an inlinable `clear()`: the proxy clears deadlines on every request from
/// another module, where a call would cost more than the store.
@usableFromInline package struct DeadlineTimer {
    /// The deadline in monotonic nanoseconds (`monotonicNanoseconds()`); 0: none.
    @usableFromInline package internal(set) var deadline: UInt64 = 0
    private var timer: TimerID?
    /// When the armed timer fires; never after `deadline` while one is set.
    private var armedAt: UInt64 = 0

    package init() {}

    /// Whether a loop timer is armed (for tests: one per owner at most).
    package var isArmed: Bool { timer != nil }

    /// Sets the deadline `nanoseconds` from now. A timer is scheduled only when none is armed or
    /// the armed one would fire after the new deadline (then it is moved).
    package mutating func set(within nanoseconds: UInt64, on loop: EventLoop, target: TimerTarget, tag: Int = 0) {
        deadline = monotonicNanoseconds() &+ nanoseconds
        if let armed = timer, deadline < armedAt {
            loop.cancel(armed)
            timer = nil
        }
        if timer == nil { arm(on: loop, target: target, tag: tag) }
    }

    /// No deadline for now; the armed timer stays and finds nothing due when it fires.
    @inlinable package mutating func clear() {
        deadline = 0
    }

    /// To be called from the target's `timerFired` for this timer's tag. True when the deadline
    /// has passed (it is then cleared); false when there is none, or when it moved later (the
    /// timer is then armed again for it).
    package mutating func fired(on loop: EventLoop, target: TimerTarget, tag: Int = 0) -> Bool {
        timer = nil
        guard deadline != 0 else { return false }
        if monotonicNanoseconds() < deadline {
            arm(on: loop, target: target, tag: tag)
            return false
        }
        deadline = 0
        return true
    }

    /// Clears the deadline and cancels the armed timer: the loop lets go of the target.
    package mutating func cancel(on loop: EventLoop) {
        deadline = 0
        if let armed = timer { loop.cancel(armed) }
        timer = nil
    }

    private mutating func arm(on loop: EventLoop, target: TimerTarget, tag: Int) {
        armedAt = deadline
        timer = loop.schedule(atNanoseconds: deadline, target: target, tag: tag)
    }
}
