/// The messages of a streamed, newline-delimited body (Docker's `/events`, etcd's watch), each
/// handed on once its line is whole. A line that grows past `maxLine` without ending is the
/// caller's to refuse (`isOverlong`), so a peer that never sends a newline cannot fill memory.
package struct StreamLines {
    package let maxLine: Int
    private var pending: [UInt8] = []

    package init(maxLine: Int = 1024 * 1024) {
        self.maxLine = maxLine
    }

    package mutating func append(_ bytes: [UInt8]) {
        pending += bytes
    }

    /// The next whole line, without its newline; nil until one has arrived.
    package mutating func next() -> [UInt8]? {
        guard let newline = pending.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        let line = Array(pending[..<newline])
        pending.removeSubrange(...newline)
        return line
    }

    /// The unfinished line is longer than `maxLine` (checked after taking every whole line).
    package var isOverlong: Bool { pending.count > maxLine }

    package mutating func removeAll() {
        pending.removeAll()
    }
}
