import DSSystem

#if canImport(Glibc)
import Glibc
#endif

/// Delivers signals as loop events through a signalfd. Create it on the main thread before any
/// other thread starts: the signals are blocked in the creating thread and every thread created
/// after it inherits that mask, so only the signalfd ever sees them.
package final class SignalWatcher: EventHandler {
    private let fd: Int32
    private let onSignal: (Int32) -> Void

    package init(signals: [Int32], loop: EventLoop, onSignal: @escaping (Int32) -> Void) throws {
        assert(loop.isInLoop)
        let descriptor = FileDescriptor(adopting: try SignalFD.open(signals))
        fd = descriptor.rawValue
        self.onSignal = onSignal
        // The loop owns the signalfd from here: it closes it with itself.
        try loop.register(descriptor, handler: self)
    }

    package func handle(_ events: IOEvents) {
        while true {
            let signal = SignalFD.read(fd)
            if signal <= 0 { return }
            onSignal(signal)
        }
    }
}
