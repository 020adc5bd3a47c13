import DSSystem

/// Durations as people write them on a command line or in a config: `500ms`, `5s`, `1m`, `2h`,
/// also `1.5s` and `250us`. A bare number is refused: `5` could mean seconds or milliseconds.
package enum DurationText {
    package struct ParseError: Error, CustomStringConvertible, Sendable {
        package let description: String
    }

    /// Parses `text` into nanoseconds; `name` is the flag or key, for the error message.
    static func nanoseconds(_ text: String, name: String) throws -> UInt64 {
        let trimmed = text.trimmingCharacters(inSet: " ")
        let units: [(String, Double)] = [("ms", 1e6), ("us", 1e3), ("ns", 1), ("s", 1e9), ("m", 60e9), ("h", 3600e9)]
        for (suffix, scale) in units where trimmed.hasSuffix(suffix) {
            let number = trimmed.dropLast(suffix.count)
            guard !number.isEmpty, number.allSatisfy({ $0.isNumber || $0 == "." }), let value = Double(number), value >= 0 else {
                break
            }
            let ns = value * scale
            guard ns < 1e18 else { throw ParseError(description: "\(name): '\(text)' is too long") }
            return UInt64(ns.rounded())
        }
        throw ParseError(description: "\(name): invalid duration '\(text)' (use e.g. 500ms, 5s, 1m)")
    }

    /// Parses `text` like `nanoseconds(_:name:)`, for a setting another module keeps as a
    /// `Duration`.
    package static func duration(_ text: String, name: String) throws -> Duration {
        .nanoseconds(try nanoseconds(text, name: name))
    }

    /// `.milliseconds(1500)` → `1.5s`, for logs and /status.
    package static func format(_ duration: Duration) -> String {
        format(DSSystem.nanoseconds(of: duration))
    }

    /// `1500000000` → `1.5s`, for logs and /status.
    static func format(_ nanoseconds: UInt64) -> String {
        if nanoseconds % 60_000_000_000 == 0 && nanoseconds > 0 { return "\(nanoseconds / 60_000_000_000)m" }
        if nanoseconds >= 1_000_000_000 {
            let seconds = Double(nanoseconds) / 1e9
            return seconds == seconds.rounded() ? "\(Int(seconds))s" : "\(seconds)s"
        }
        return "\(nanoseconds / 1_000_000)ms"
    }
}

extension String {
    func trimmingCharacters(inSet character: Character) -> String {
        var s = Substring(self)
        while s.first == character { s = s.dropFirst() }
        while s.last == character { s = s.dropLast() }
        return String(s)
    }
}
