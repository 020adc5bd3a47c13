import Foundation
import Logging

/// Keeps every message logged through `logger`, for tests of what the log says.
package final class CapturedLog: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    private var eventNames: [String] = []

    package init() {}

    package var messages: [String] { lock.withLock { lines } }

    /// The `event` metadata of the messages that had one (`node_joined`, …), in order.
    package var events: [String] { lock.withLock { eventNames } }

    package var logger: Logger { Logger(label: "test") { _ in Handler(log: self) } }

    /// Waits (up to `seconds`) for a message containing `text`.
    package func waitFor(_ text: String, seconds: Double = 10) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if messages.contains(where: { $0.contains(text) }) { return true }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return false
    }

    private struct Handler: LogHandler {
        let log: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            log.lock.withLock {
                log.lines.append("\(event.message)")
                if case .string(let name)? = event.metadata?["event"] { log.eventNames.append(name) }
            }
        }
    }
}
