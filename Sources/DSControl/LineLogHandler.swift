import Logging

#if canImport(Glibc)
import Glibc
#endif

/// One line per event on stderr, message first (`[!] Server 2 ...`), metadata as `KEY=value`.
/// journald (or the terminal) adds the timestamp; the message stays greppable. The `event` and
/// `backend` keys are fields for journald (`JournalLogHandler`); the line already says them.
package struct LineLogHandler: LogHandler {
    package var metadata: Logger.Metadata = [:]
    package var logLevel: Logger.Level = .info
    private let label: String

    static let journalOnly: Set<String> = ["event", "backend"]

    package init(label: String) {
        self.label = label
    }

    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    package func log(event: LogEvent) {
        var text = "\(event.message)"
        let all = event.metadata.map { self.metadata.merging($0) { $1 } } ?? self.metadata
        for (key, value) in all.sorted(by: { $0.key < $1.key }) where !Self.journalOnly.contains(key) {
            text += " \(key)=\(value)"
        }
        text += "\n"
        // One write per line, so lines from several threads never interleave.
        text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    }
}
