import DSReactor

/// A running worker as its starter sees it, for a reload (ds-lb's SIGHUP): new settings travel
/// to the worker's own loop, so `Worker.config` stays loop-thread-only and the request path reads
/// it without a lock or an atomic.
///
/// `@unchecked Sendable`: `loop` is set by `Worker.launch` on the starting thread, which is the
/// thread that calls `reconfigure`; `worker` is set and read only on the worker's loop thread.
package final class WorkerHandle: @unchecked Sendable {
    var loop: EventLoop?
    var worker: Worker?

    package init() {}

    /// The starting thread only. The worker takes `config` on its next loop iteration; a handle
    /// whose worker has not started yet ignores it (pass the new settings to `start` instead).
    package func reconfigure(_ config: ProxyConfig) {
        loop?.execute { [self] in worker?.config = config }
    }
}
