import DSReactor
import DSSystem
import Dispatch

#if canImport(Glibc)
import Glibc
#endif

/// The shared `HTTPClient` for code that runs on no loop (a command-line tool, start-up, tests):
/// it owns an `EventLoop` on a thread of its own, and `send` blocks the calling thread until the
/// exchange ends. The exchange itself is the loop's, bounded by its deadline, so a silent server
/// costs the caller the timeout, never a hang.
///
/// Any thread but its loop's (waiting there would wait for itself). Dropping the last reference
/// stops the loop thread, closing the kept-alive connections.
package final class BlockingHTTPClient: Sendable {
    /// The client's loop: callers may run asynchronous work of their own on it.
    package let loop: EventLoop
    package let address: HTTPClientAddress
    private let slot: LoopLocal<HTTPClient>
    private let loopThread = Locked<pthread_t?>(nil)

    /// Starts the loop on a thread named `threadName` (visible in `top -H`; 15 characters at most).
    package init(address: HTTPClientAddress, options: HTTPClientOptions = HTTPClientOptions(), threadName: String) throws {
        let loop = try EventLoop()
        self.loop = loop
        self.address = address
        slot = LoopLocal(loop: loop) { HTTPClient(loop: loop, address: address, options: options) }
        let loopThread = self.loopThread
        LoopThread.start(name: threadName) {
            loopThread.withLock { $0 = pthread_self() }
            loop.run()
        }
    }

    deinit {
        // The client and its idle connections are the loop's: they are dropped there, on the
        // loop's last turn (`run` empties its inbox after a stop).
        let slot = self.slot
        loop.execute { slot.drop() }
        loop.stop()
    }

    /// Sends `request` and blocks until the whole response (body de-chunked) or the error.
    /// `timeout` bounds the exchange as `HTTPClient.send` says (connecting included unless the
    /// options' `connectTimeout` bounds that on its own).
    package func send(_ request: HTTPClientRequest, timeout: Duration) throws(HTTPClientError) -> HTTPClientResponse {
        let slot = self.slot
        return try wait { done in
            slot.loop.execute { slot.value().send(request, timeout: timeout, completion: done) }
        }.get()
    }

    /// Blocks the calling thread until the call `start` begins (on the calling thread) has called
    /// back, once, and returns what it passed: for calls of one's own on `loop` that end in a
    /// completion. Never on the loop thread.
    package func wait<T: Sendable>(_ start: (_ done: @escaping @Sendable (T) -> Void) -> Void) -> T {
        precondition(!isLoopThread, "BlockingHTTPClient: waiting on its own loop thread would never return")
        let finished = DispatchSemaphore(value: 0)
        let outcome = Locked<T?>(nil)
        start { value in
            outcome.withLock { $0 = value }
            finished.signal()
        }
        finished.wait()
        return outcome.withLock { $0! }
    }

    private var isLoopThread: Bool {
        loopThread.withLock { thread in thread.map { pthread_equal($0, pthread_self()) != 0 } ?? false }
    }
}

/// An object of a loop's that code on other threads reaches through `loop.execute`: made on
/// first use, on the loop, and dropped there (the `HTTPClient` of a `BlockingHTTPClient`, the
/// etcd client of a blocking one).
///
/// `@unchecked Sendable`: `current` is created, used and dropped on the loop thread only; the
/// other fields are immutable and Sendable.
package final class LoopLocal<Value: AnyObject>: @unchecked Sendable {
    package let loop: EventLoop
    private let make: @Sendable () -> Value
    private var current: Value?

    package init(loop: EventLoop, make: @escaping @Sendable () -> Value) {
        self.loop = loop
        self.make = make
    }

    /// Loop thread only.
    package func value() -> Value {
        assert(loop.isInLoop)
        if let current { return current }
        let made = make()
        current = made
        return made
    }

    /// Loop thread only.
    package func drop() { current = nil }
}
