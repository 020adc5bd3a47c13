#if canImport(Glibc)
import Glibc
#endif

/// A value behind a pthread mutex. The standard library's `Mutex` is built on raw futex calls on
/// Linux, which the thread sanitizer cannot see, so every access through it is reported as a race;
/// pthread mutexes are intercepted by the sanitizer, so real races stay visible and false ones go.
///
/// Safety: `mutex` and `value` are allocated here, initialised once, and touched only while the
/// mutex is held (or in deinit, when no other reference exists).
package final class Locked<Value>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    package init(_ value: Value) {
        self.value = value
        mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        precondition(pthread_mutex_init(mutex, nil) == 0, "pthread_mutex_init failed")
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Any thread. Runs `body` with exclusive access to the value.
    @inline(__always)
    package func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
